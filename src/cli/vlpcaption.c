/* vlpcaption: captions for every image of a dataset with a trained BLIP.
 *   vlpcaption MODEL DATA [-o OUT.tsv|OUT.json|-] [--prompt TEXT] [--score]
 *              [--method greedy|beam|nucleus ...] [--nearest TRAIN] [--seed N] [--batch N] [--workers N]
 * MODEL is a checkpoint or a run folder; DATA a manifest, folder or shard
 * (samples of one image file are one image). --score rates the captions
 * against DATA's own captions (BLEU-1..4, CIDEr-D). --nearest TRAIN is the
 * retrieval baseline: each image gets the caption of TRAIN's image most
 * similar to it by the ITC image features. Argument parsing and printing
 * only; the work is apps/caption.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
#include "base/mem.h"
#include "apps/caption.h"
#include "args.h"
#include "decode_args.h"

static const char *const VALUE_OPTIONS[] = {"-o", "--prompt", "--nearest", "--seed", "--batch", "--workers",
                                             "--method", "--beams", "--max-length", "--min-length",
                                             "--length-penalty", "--top-p", "--top-k", "--temperature",
                                             "--repetition-penalty", NULL};

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlpcaption MODEL DATA [-o OUT.tsv|OUT.json|-] [--prompt TEXT] [--score]\n"
            "                  [decoding options] [--seed N] [--batch N] [--workers N]\n"
            "MODEL: a BLIP checkpoint (.h5) or run folder; DATA: a manifest, folder or shard.\n"
            "-o: .json writes JSON, anything else TSV (image, caption, score); default -, TSV on stdout.\n"
            "--prompt: text before each caption (default: the model's [blip] prompt).\n"
            "--score: BLEU-1..4 and CIDEr-D against DATA's captions (an image's references:\n"
            "all captions of its file).\n"
            "--nearest TRAIN: instead of decoding, the caption of TRAIN's image most similar\n"
            "by the ITC image features (the nearest-neighbour baseline).\n"
            "Decoding options:\n%s",
            VLP_DECODE_ARGS_USAGE);
}

int main(int argc, char **argv) {
    vlp_caption_run_opts o = {.out = "-", .batch = 16, .workers = 1};
    long seed = 0;
    bool *used = vlp_calloc((size_t)argc + 1, sizeof *used);
    if (!vlp_arg_decode("vlpcaption", argc, argv, VLP_BLIP_DECODE_BEAM, &o.decode, used, &o.max_length_set))
        return usage(stderr), 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (used[i]) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "-o") && has) o.out = argv[++i];
        else if (!strcmp(a, "--prompt") && has) o.prompt = argv[++i];
        else if (!strcmp(a, "--score")) o.score = true;
        else if (!strcmp(a, "--nearest") && has) o.nearest = argv[++i];
        else if (!strcmp(a, "--seed") && has) {
            if (!vlp_arg_long("vlpcaption", a, argv[++i], 0, 1000000000000000, &seed)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpcaption", a, argv[++i], 1, 65536, &o.batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpcaption", a, argv[++i], 1, 64, &o.workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !o.model) o.model = a;
        else if (a[0] != '-' && !o.data) o.data = a;
        else return vlp_arg_reject("vlpcaption", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    free(used);
    if (!o.model || !o.data) return usage(stderr), 2;
    const char *inputs[] = {o.model, o.data, o.nearest};
    if (vlp_output_check("-o", o.out, inputs, 3)) return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 2;
    o.seed = (uint64_t)seed;
    vlp_caption_run_result r;
    if (vlp_caption_run(&o, &r)) return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 1;
    bool to_stdout = !strcmp(o.out, "-");
    FILE *say = to_stdout ? stderr : stdout; /* stdout may hold the captions */
    fprintf(say, "vlpcaption: %ld images of %s captioned (%s)%s%s\n", r.images, o.data,
            o.nearest ? "nearest training image by ITC" : o.decode.method == VLP_BLIP_DECODE_BEAM ? "beam search"
            : o.decode.method == VLP_BLIP_DECODE_GREEDY ? "greedy" : "nucleus sampling",
            to_stdout ? "" : " into ", to_stdout ? "" : o.out);
    if (o.score)
        fprintf(say, "vlpcaption: against %ld references of %d images: BLEU-1 %.4f, BLEU-2 %.4f, "
                     "BLEU-3 %.4f, BLEU-4 %.4f, CIDEr-D %.4f\n",
                r.references, r.scored, r.bleu[0], r.bleu[1], r.bleu[2], r.bleu[3], r.cider);
    return 0;
}
