/* vlpsegment: zero-shot segmentation by a GroupViT, from class names alone.
 *   vlpsegment MODEL IMAGES --classes FILE [--templates FILE] [--topk N] [--threshold T]
 *              [--naming groups|masked] [--out DIR] [--clip CLIPMODEL [--dense-threshold T]]
 *              [--json OUT] [--overlays N] [--limit N]
 * A model given as CONFIG.ini (either one) is built from that config and
 * randomly initialised (seed 1), its tokenizer --tokenizer's or the config's:
 * to try the program without a trained model.
 * MODEL is a GroupViT run folder or checkpoint; IMAGES a manifest, a dataset
 * folder or shard, or a plain folder of images.
 * A manifest with a `mask` column (vlpdata scenes) adds the mIoU of the
 * model and of the baselines: the oracle foreground always, dense CLIP with
 * --clip; and of the oracle groups (the model's groups, each named by its
 * majority true label), which bounds what any naming of those groups
 * could reach. Writes DIR/labels/NNNNNN.png (8-bit label maps, 0 background,
 * k + 1 class k), DIR/overlays/NNNNNN.png for the first N images,
 * DIR/index.tsv (which input each number is) and DIR/miou.json.
 * Argument parsing and printing only; the work is apps/segmentation.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/segmentation.h"
#include "base/error.h"
#include "base/output.h"
#include "args.h"

static const char *const VALUE_OPTIONS[] = {"--classes", "--templates", "--threshold", "--topk", "--naming",
                                             "--dense-threshold", "--out", "--json", "--clip", "--limit",
                                             "--overlays", "--tokenizer", NULL};

static void usage(FILE *f) {
    fputs("usage: vlpsegment MODEL IMAGES --classes FILE [--templates FILE] [--topk N] [--threshold T]\n"
          "                  [--naming groups|masked] [--out DIR] [--clip CLIPMODEL [--dense-threshold T]]\n"
          "                  [--json OUT] [--overlays N] [--limit N]\n"
          "MODEL or CLIPMODEL as CONFIG.ini: that config randomly initialised (seed 1), with\n"
          "--tokenizer MERGES or the config's tokenizer, to try the program without a trained model.\n"
          "MODEL: a GroupViT run folder or checkpoint. IMAGES: a manifest or folder; a manifest\n"
          "with a 'mask' column (vlpdata scenes) is evaluated: mIoU of the model, the oracle\n"
          "foreground, the oracle groups and, with --clip, dense CLIP. CLASSNAMES and TEMPLATES:\n"
          "one per line, templates with {} (default \"" VLP_DEFAULT_TEMPLATE "\").\n"
          "Groups are named as GroupViT does: among the image's N best classes (--topk, default\n"
          "5), background where the class probability is under --threshold (default 0.95).\n"
          "--topk 0: the nearest of all classes, background under a cosine --threshold (default\n"
          "0.2). --naming groups (default, GroupViT's): each group by its own token's embedding;\n"
          "masked: by the embedding of the image with only that group's pixels (the rest grey),\n"
          "one more pass of the image tower per group. Dense CLIP: background under the cosine\n"
          "--dense-threshold (default 0.2).\n"
          "Writes DIR (default segment_out)/labels/*.png, overlays/*.png (first N, default 16)\n"
          "and miou.json (or --json OUT; - for stdout).\n",
          f);
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *images_path = NULL, *classes_path = NULL, *templates_path = NULL;
    const char *out_dir = "segment_out", *json_path = NULL, *clip_path = NULL, *tokenizer_path = NULL;
    float threshold = NAN, dense_threshold = 0.2f;
    long limit = -1, n_overlays = 16, topk = 5;
    bool masked = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--classes") && has) classes_path = argv[++i];
        else if (!strcmp(a, "--templates") && has) templates_path = argv[++i];
        else if (!strcmp(a, "--threshold") && has) {
            if (!vlp_arg_float("vlpsegment", a, argv[++i], -1, 1, &threshold)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--topk") && has) {
            if (!vlp_arg_long("vlpsegment", a, argv[++i], 0, 1000000, &topk)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--naming") && has) {
            const char *v = argv[++i];
            if (strcmp(v, "groups") && strcmp(v, "masked"))
                return fprintf(stderr, "vlpsegment: --naming is groups or masked\n"), usage(stderr), 2;
            masked = !strcmp(v, "masked");
        }
        else if (!strcmp(a, "--dense-threshold") && has) {
            if (!vlp_arg_float("vlpsegment", a, argv[++i], -1, 1, &dense_threshold)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--out") && has) out_dir = argv[++i];
        else if (!strcmp(a, "--json") && has) json_path = argv[++i];
        else if (!strcmp(a, "--clip") && has) clip_path = argv[++i];
        else if (!strcmp(a, "--limit") && has) {
            if (!vlp_arg_long("vlpsegment", a, argv[++i], 0, 1000000000000, &limit)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--overlays") && has) {
            if (!vlp_arg_long("vlpsegment", a, argv[++i], 0, 1000000000000, &n_overlays)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--tokenizer") && has) tokenizer_path = argv[++i];
        else if (a[0] != '-' && !model_path) model_path = a;
        else if (a[0] != '-' && !images_path) images_path = a;
        else return vlp_arg_reject("vlpsegment", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    if (!model_path || !images_path || !classes_path) return usage(stderr), 2;
    const char *inputs[] = {model_path, images_path, classes_path, templates_path, clip_path, tokenizer_path};
    if (vlp_output_check_dir("--out", out_dir, inputs, 6) || vlp_output_check("--json", json_path, inputs, 6))
        return fprintf(stderr, "vlpsegment: %s\n", vlp_error_message()), 2;
    if (isnan(threshold)) threshold = topk ? 0.95f : 0.2f;
    vlp_segmentation_opts o = {.model = model_path, .images = images_path, .classes = classes_path,
                               .templates = templates_path, .clip = clip_path, .tokenizer = tokenizer_path,
                               .out_dir = out_dir, .limit = limit, .n_overlays = n_overlays,
                               .rule = {.threshold = threshold, .topk = (int)topk, .masked = masked},
                               .dense_rule = {.threshold = dense_threshold}};
    vlp_segmentation_result r;
    if (vlp_segmentation_run(&o, &r)) {
        fprintf(stderr, "vlpsegment: %s\n", vlp_error_message());
        return 1;
    }
    printf("vlpsegment: %ld images of %s segmented into %d classes + background (%s%s, threshold %.2f), "
           "%ld skipped; label maps in %s/labels\n", r.done, images_path, r.n_classes,
           topk ? "GroupViT's rule" : "nearest class", masked ? ", masked groups" : "", threshold, r.skipped, out_dir);
    if (!r.scores) return 0;
    cJSON *method;
    cJSON_ArrayForEach(method, cJSON_GetObjectItem(r.scores, "methods"))
        printf("  %-18s mIoU %5.1f%%  pixel accuracy %5.1f%%\n", method->string,
               100 * cJSON_GetObjectItem(method, "miou")->valuedouble,
               100 * cJSON_GetObjectItem(method, "pixel_accuracy")->valuedouble);
    char *text = cJSON_Print(r.scores), def[4096];
    snprintf(def, sizeof def, "%s/miou.json", out_dir);
    const char *jp = json_path ? json_path : def;
    int status = 0;
    if (!strcmp(jp, "-")) {
        puts(text);
    } else {
        FILE *f = fopen(jp, "w");
        if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0)
            fprintf(stderr, "vlpsegment: cannot write %s\n", jp), status = 1;
        else printf("vlpsegment: mIoU in %s\n", jp);
    }
    free(text);
    cJSON_Delete(r.scores);
    return status;
}
