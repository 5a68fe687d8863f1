/* vlpvqa: answers questions about an image with a trained BLIP, the
 * decoder conditioned on the question (the prompt) and the image.
 *   vlpvqa MODEL IMAGE QUESTION... [--template TEXT] [decoding options] [--seed N]
 * Each question is answered on its own; the template's {} is replaced by
 * it ("{}" by default). Argument parsing and printing only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/image.h"
#include "apps/caption.h"
#include "train/checkpoint.h"
#include "args.h"
#include "decode_args.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vlpvqa MODEL IMAGE QUESTION... [--template TEXT] [decoding options] [--seed N]\n"
            "MODEL: a BLIP checkpoint (.h5) or run folder; IMAGE: an image file.\n"
            "--template: the prompt, {} standing for the question (default \"{}\").\n"
            "Decoding options (here greedy, min length 0 and max length the model's context\n"
            "unless given):\n%s",
            VLP_DECODE_ARGS_USAGE);
}

static const char *const VALUE_OPTIONS[] = {"--template", "--seed", "--method", "--beams", "--max-length",
                                             "--min-length", "--length-penalty", "--top-p", "--top-k",
                                             "--temperature", "--repetition-penalty", NULL};

int main(int argc, char **argv) {
    const char *model_path = NULL, *image_path = NULL, *template = "{}";
    const char **questions = vlp_calloc((size_t)argc + 1, sizeof *questions);
    bool *used = vlp_calloc((size_t)argc + 1, sizeof *used), max_length_set, method_set = false;
    int n_questions = 0;
    long seed = 0;
    vlp_blip_decode_options o;
    if (!vlp_arg_decode("vlpvqa", argc, argv, VLP_BLIP_DECODE_BEAM, &o, used, &max_length_set))
        return usage(stderr), 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (used[i]) {
            method_set |= !strcmp(a, "--method");
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--template") && has) template = argv[++i];
        else if (!strcmp(a, "--seed") && has) {
            if (!vlp_arg_long("vlpvqa", a, argv[++i], 0, 1000000000000000, &seed)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !image_path) image_path = a;
        else if (a[0] != '-') questions[n_questions++] = a;
        else return vlp_arg_reject("vlpvqa", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    if (!model_path || !image_path || n_questions == 0) return usage(stderr), 2;
    if (!method_set) { /* short answers: greedy, no length floor */
        vlp_blip_decode_options g = vlp_blip_decode_defaults(VLP_BLIP_DECODE_GREEDY, 0);
        g.max_length = o.max_length;
        o = g;
        o.min_length = 0;
    }

    vlp_model m;
    vlp_tokenizer *tok;
    if (vlp_model_load(model_path, &m, &tok))
        return fprintf(stderr, "vlpvqa: %s\n", vlp_error_message()), 1;
    int S = m.image_size;
    if (!max_length_set) o.max_length = m.context_length; /* the question counts in it */
    vlp_image img = {0}, crop = {0};
    float *pixels = vlp_malloc(sizeof(float) * 3 * S * S);
    vlp_loader_opts po = vlp_model_eval_loader(&m, 1, 1); /* the model's [preprocess] */
    if (vlp_image_load(&img, image_path, &po.image) ||
        vlp_image_eval_transform(&crop, &img, S, po.interpolation, po.resize_mode))
        return fprintf(stderr, "vlpvqa: %s\n", vlp_error_message()), 1;
    vlp_image_normalize(pixels, crop.rgb, S, po.mean, po.std);
    vlp_rng root, rng;
    vlp_rng_init(&root, (uint64_t)seed);
    rng = vlp_rng_split(&root, VLP_RNG_STREAM_SAMPLE);
    int rc = 0;
    for (int q = 0; q < n_questions && !rc; q++) {
        char prompt[4096], *answer = NULL;
        const char *hole = strstr(template, "{}");
        if (hole) snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(hole - template), template,
                           questions[q], hole + 2);
        else snprintf(prompt, sizeof prompt, "%s %s", template, questions[q]);
        float score;
        rc = vlp_caption_generate(&m, tok, pixels, 1, prompt, &o, &rng, &answer, &score);
        if (rc) fprintf(stderr, "vlpvqa: %s\n", vlp_error_message());
        else printf("Q: %s\nA: %s\t(score %.4f)\n", questions[q], answer, score);
        free(answer);
    }
    vlp_image_free(&img), vlp_image_free(&crop);
    free(pixels), free(questions), free(used);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc ? 1 : 0;
}
