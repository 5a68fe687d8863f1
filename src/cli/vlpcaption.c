/* vlpcaption: captions for every image of a dataset with a trained BLIP.
 *   vlpcaption MODEL DATA [-o OUT.tsv|OUT.json|-] [--prompt TEXT] [--score]
 *              [--method greedy|beam|nucleus ...] [--nearest TRAIN] [--seed N] [--batch N] [--workers N]
 * MODEL is a checkpoint or a run folder; DATA a manifest, folder or shard
 * (samples of one image file are one image). --score rates the captions
 * against DATA's own captions (BLEU-1..4, CIDEr-D). --nearest TRAIN is the
 * retrieval baseline: each image gets the caption of TRAIN's image most
 * similar to it by the ITC image features. Argument parsing and printing
 * only. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "apps/caption.h"
#include "eval/caption_metrics.h"
#include "train/checkpoint.h"
#include "eval/eval.h"
#include "eval/eval_blip.h"
#include "args.h"

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
            VLP_CAPTION_DECODE_USAGE);
}

/* Image i's name: its file, or the dataset and sample number for a shard. */
static void image_name(const vlp_dataset *view, long i, char *buf, size_t size) {
    if (view->samples[i].path) snprintf(buf, size, "%s", view->samples[i].path);
    else snprintf(buf, size, "%s#%ld", view->source, i);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *data_path = NULL, *out_path = "-", *prompt = NULL, *nearest = NULL;
    bool score = false, max_length_set;
    int batch = 16, workers = 1;
    long seed = 0;
    bool *used = calloc((size_t)argc + 1, sizeof *used);
    vlp_blip_decode_options o;
    if (vlp_caption_decode_args(argc, argv, &o, used, &max_length_set))
        return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (used[i]) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "-o") && has) out_path = argv[++i];
        else if (!strcmp(a, "--prompt") && has) prompt = argv[++i];
        else if (!strcmp(a, "--score")) score = true;
        else if (!strcmp(a, "--nearest") && has) nearest = argv[++i];
        else if (!strcmp(a, "--seed") && has) {
            if (!vlp_arg_long("vlpcaption", a, argv[++i], 0, 1000000000000000, &seed)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--batch") && has) {
            if (!vlp_arg_int("vlpcaption", a, argv[++i], 1, 65536, &batch)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--workers") && has) {
            if (!vlp_arg_int("vlpcaption", a, argv[++i], 1, 64, &workers)) return usage(stderr), 2;
        }
        else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !data_path) data_path = a;
        else return fprintf(stderr, "vlpcaption: unexpected argument '%s'\n", a), usage(stderr), 2;
    }
    free(used);
    if (!model_path || !data_path || batch < 1 || workers < 1) return usage(stderr), 2;

    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    vlp_caption_images g;
    if (vlp_model_load(model_path, &m, &tok))
        return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 1;
    if (!prompt) prompt = m.cfg.blip.prompt;
    if (!max_length_set && o.max_length > m.context_length) o.max_length = m.context_length;
    if (vlp_dataset_open(&ds, data_path, NULL) || vlp_caption_images_group(&g, &ds))
        return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 1;
    long n = g.view.n;
    char **captions = calloc((size_t)n + 1, sizeof *captions);
    float *scores = calloc((size_t)n + 1, sizeof *scores);
    int rc;
    if (nearest) { /* the captions of the nearest training images by ITC */
        rc = vlp_caption_nearest(&m, tok, &g.view, nearest, batch, workers, captions, scores);
    } else {
        rc = vlp_caption_dataset(&m, tok, &g.view, prompt, &o, (uint64_t)seed, batch, workers,
                                 captions, scores);
    }
    if (rc) return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 1;

    /* The captioned images against their references. */
    double bleu[4] = {0}, cider = 0;
    int scored = 0;
    if (score) {
        const char **cands = malloc((size_t)n * sizeof *cands);
        const char **refs = malloc((size_t)ds.n * sizeof *refs);
        int *start = malloc((size_t)(n + 1) * sizeof *start), n_refs = 0;
        start[0] = 0;
        for (long i = 0; i < n; i++) {
            if (!captions[i]) continue;
            cands[scored] = captions[i];
            for (int r = g.ref_start[i]; r < g.ref_start[i + 1]; r++) refs[n_refs++] = g.refs[r];
            start[++scored] = n_refs;
        }
        vlp_caption_corpus c = {scored, cands, refs, start};
        rc = vlp_caption_bleu(&c, bleu);
        if (!rc) rc = vlp_caption_cider_d(&c, &cider, NULL);
        free(cands), free(refs), free(start);
        if (rc) return fprintf(stderr, "vlpcaption: %s\n", vlp_error_message()), 1;
    }
    FILE *f = strcmp(out_path, "-") ? fopen(out_path, "w") : stdout;
    if (!f) return fprintf(stderr, "vlpcaption: cannot write %s\n", out_path), 1;
    size_t len = strlen(out_path);
    bool json = len >= 5 && !strcmp(out_path + len - 5, ".json");
    char name[4096];
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model_path);
        cJSON_AddStringToObject(root, "data", data_path);
        cJSON_AddStringToObject(root, "prompt", prompt);
        if (score) {
            cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
            cJSON_AddNumberToObject(metrics, "images", scored);
            static const char *const names[] = {"bleu1", "bleu2", "bleu3", "bleu4"};
            for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(metrics, names[k], bleu[k]);
            cJSON_AddNumberToObject(metrics, "cider_d", cider);
        }
        cJSON *list = cJSON_AddArrayToObject(root, "captions");
        for (long i = 0; i < n; i++) {
            if (!captions[i]) continue;
            cJSON *item = cJSON_CreateObject();
            image_name(&g.view, i, name, sizeof name);
            cJSON_AddStringToObject(item, "image", name);
            cJSON_AddStringToObject(item, "caption", captions[i]);
            cJSON_AddNumberToObject(item, "score", scores[i]);
            cJSON_AddItemToArray(list, item);
        }
        char *text = cJSON_Print(root);
        fprintf(f, "%s\n", text);
        free(text);
        cJSON_Delete(root);
    } else {
        fprintf(f, "image\tcaption\tscore\n");
        for (long i = 0; i < n; i++) {
            if (!captions[i]) continue;
            image_name(&g.view, i, name, sizeof name);
            fprintf(f, "%s\t%s\t%.6f\n", name, captions[i], scores[i]);
        }
    }
    if (f != stdout && fclose(f)) return fprintf(stderr, "vlpcaption: cannot write %s\n", out_path), 1;
    FILE *say = f == stdout ? stderr : stdout;
    fprintf(say, "vlpcaption: %ld images of %s captioned (%s)%s%s\n", n, data_path,
            nearest ? "nearest training image by ITC" : o.method == VLP_BLIP_DECODE_BEAM ? "beam search"
            : o.method == VLP_BLIP_DECODE_GREEDY ? "greedy" : "nucleus sampling",
            f == stdout ? "" : " into ", f == stdout ? "" : out_path);
    if (score)
        fprintf(say, "vlpcaption: against %ld references of %d images: BLEU-1 %.4f, BLEU-2 %.4f, "
                     "BLEU-3 %.4f, BLEU-4 %.4f, CIDEr-D %.4f\n",
                ds.n, scored, bleu[0], bleu[1], bleu[2], bleu[3], cider);
    for (long i = 0; i < n; i++) free(captions[i]);
    free(captions), free(scores);
    vlp_caption_images_free(&g);
    vlp_dataset_free(&ds);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return 0;
}
