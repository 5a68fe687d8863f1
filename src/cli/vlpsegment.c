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
 * Argument parsing and printing only; the work is in eval/segment.c (pictures: apps/overlay.c). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <stb_image_write.h>

#include "base/file.h"
#include "base/error.h"
#include "data/dataset.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "eval/eval.h"
#include "apps/overlay.h"
#include "eval/segment.h"
#include "args.h"

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

static _Noreturn void die(const char *what) {
    fprintf(stderr, "vlpsegment: %s\n", what);
    exit(1);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "vlpsegment: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* A model of the wanted kind from a run folder or checkpoint, or from a
 * config file, randomly initialised. */
static void open_model(const char *path, const char *tokenizer, int kind, vlp_model *m,
                       vlp_tokenizer **tok) {
    size_t len = strlen(path);
    if (len > 4 && !strcmp(path + len - 4, ".ini")) {
        vlp_config c;
        if (vlp_config_load(&c, path, NULL, 0) ||
            vlp_tokenizer_load(tok, tokenizer ? tokenizer : c.data.tokenizer, -1) ||
            vlp_model_init(m, &c, vlp_tokenizer_vocab_size(*tok), 1))
            die(vlp_error_message());
    } else if (vlp_model_load(path, m, tok)) {
        die(vlp_error_message());
    }
    if (m->kind != kind) {
        fprintf(stderr, "vlpsegment: %s is a %s model, not %s\n", path, vlp_model_kind_name(m->kind),
                vlp_model_kind_name(kind));
        exit(1);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The image files (.png, .jpg, .jpeg) of a folder, sorted; NULL if none. */
static char **list_images(const char *dir, long *n) {
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **files = NULL;
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !dot ||
            (strcasecmp(dot, ".png") && strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg")))
            continue;
        files = realloc(files, sizeof *files * (*n + 1));
        if (!files || asprintf(&files[*n], "%s/%s", dir, e->d_name) < 0) die("out of memory");
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(files, (size_t)*n, sizeof *files, cmp_str);
    else vlp_error_set(VLP_ENOTFOUND, "%s: no manifest, dataset or image files", dir);
    return *n ? files : (free(files), NULL);
}

typedef struct method {
    const char *name;
    bool on;
    vlp_miou miou;
} method;

static cJSON *method_json(method *me, char **classes, int K) {
    double *iou = malloc(sizeof(double) * (K + 1)), acc;
    double mean = vlp_miou_compute(&me->miou, iou, &acc);
    cJSON *o = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "miou", mean);
    cJSON_AddNumberToObject(o, "pixel_accuracy", acc);
    for (int k = 0; k <= K; k++)
        if (!isnan(iou[k])) cJSON_AddNumberToObject(per, k ? classes[k - 1] : "background", iou[k]);
    cJSON_AddItemToObject(o, "per_class_iou", per);
    printf("  %-18s mIoU %5.1f%%  pixel accuracy %5.1f%%\n", me->name, 100 * mean, 100 * acc);
    free(iou);
    return o;
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
            if (strcmp(v, "groups") && strcmp(v, "masked")) die("--naming is groups or masked");
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
        else return fprintf(stderr, "vlpsegment: unexpected argument '%s'\n", a), usage(stderr), 2;
    }
    if (!model_path || !images_path || !classes_path) return usage(stderr), 2;
    if (topk < 0) die("--topk must be 0 or more");
    if (isnan(threshold)) threshold = topk ? 0.95f : 0.2f;
    const vlp_segment_rule rule = {.threshold = threshold, .topk = (int)topk, .masked = masked};
    const vlp_segment_rule dense_rule = {.threshold = dense_threshold};

    int K, n_templates = 1;
    char **classes = vlp_read_lines(classes_path, &K), **templates = NULL;
    static char fallback[] = VLP_DEFAULT_TEMPLATE;
    char *fallback_list[] = {fallback};
    if (!classes || K == 0) die("no class names (one per line) in --classes");
    if (K > 254) die("more than 254 classes: label maps are 8-bit");
    if (templates_path && (!(templates = vlp_read_lines(templates_path, &n_templates)) || !n_templates))
        die("no templates in --templates");

    vlp_dataset ds = {0}, masks;
    char **files = NULL; /* IMAGES a plain folder of images: its files, sorted */
    long n_files = 0;
    if (vlp_dataset_open(&ds, images_path, NULL) && !(files = list_images(images_path, &n_files)))
        die(vlp_error_message());
    /* the same manifest read by its mask column: rows align with ds */
    vlp_manifest_opts mo = {.image_key = "mask"};
    bool have_masks = !files && vlp_dataset_open_manifest(&masks, images_path, &mo) == VLP_OK;
    if (have_masks && masks.n != ds.n) die("the mask column and the images disagree in count");
    long total = files ? n_files : ds.n, n = limit >= 0 && limit < total ? limit : total;

    vlp_model gv, clip;
    vlp_tokenizer *gv_tok, *clip_tok = NULL;
    open_model(model_path, tokenizer_path, VLP_MODEL_GROUPVIT, &gv, &gv_tok);
    if (clip_path) open_model(clip_path, tokenizer_path, VLP_MODEL_CLIP, &clip, &clip_tok);
    char *const *tpl = templates ? templates : fallback_list;
    float *gv_classes = malloc(sizeof(float) * K * gv.embed_dim), *clip_classes = NULL;
    if (vlp_eval_class_embeddings(&gv, gv_tok, (const char *const *)classes, K,
                                     (const char *const *)tpl, n_templates, gv_classes))
        die(vlp_error_message());
    if (clip_path) {
        clip_classes = malloc(sizeof(float) * K * clip.embed_dim);
        if (vlp_eval_class_embeddings(&clip, clip_tok, (const char *const *)classes, K,
                                         (const char *const *)tpl, n_templates, clip_classes))
            die(vlp_error_message());
    }

    char path[4096];
    make_dir(out_dir);
    snprintf(path, sizeof path, "%s/labels", out_dir);
    make_dir(path);
    snprintf(path, sizeof path, "%s/overlays", out_dir);
    make_dir(path);
    enum { N_METHODS = 4 };
    method methods[N_METHODS] = {{.name = "groupvit", .on = true},
                                 {.name = "oracle_foreground", .on = have_masks},
                                 {.name = "dense_clip", .on = clip_path != NULL},
                                 {.name = "oracle_groups", .on = have_masks}};
    for (int i = 0; i < N_METHODS; i++)
        if (vlp_miou_init(&methods[i].miou, K + 1)) die(vlp_error_message());

    /* which input each numbered output is */
    snprintf(path, sizeof path, "%s/index.tsv", out_dir);
    FILE *index = fopen(path, "w");
    if (!index) die("cannot write index.tsv in the output folder");
    fprintf(index, "output\tinput\n");
    vlp_image_opts io = vlp_image_opts_default(), mask_io = io;
    io.alpha = gv.cfg.preprocess.alpha; /* the model's [preprocess]; masks are label maps */
    long done = 0, skipped = 0;
    for (long i = 0; i < n; i++) {
        vlp_image img, mimg = {0};
        if (files ? vlp_image_load(&img, files[i], &io) : vlp_dataset_image(&ds, i, &img, &io)) {
            fprintf(stderr, "vlpsegment: skipped: %s\n", vlp_error_message());
            skipped++;
            continue;
        }
        long np = (long)img.w * img.h;
        uint8_t *pred = malloc(np), *oracle = malloc(np), *dense = malloc(np), *groups = malloc(np), *gt = NULL;
        int *group = malloc(sizeof(int) * np);
        if (have_masks) {
            if (vlp_dataset_image(&masks, i, &mimg, &mask_io)) die(vlp_error_message());
            if (mimg.w != img.w || mimg.h != img.h) die("a mask is not the size of its image");
            gt = malloc(np);
            for (long p = 0; p < np; p++) {
                gt[p] = mimg.rgb[p * 3];
                if (gt[p] > K) {
                    fprintf(stderr, "vlpsegment: %s: label %d at pixel %ld, but --classes names %d classes\n",
                            masks.samples[i].path, gt[p], p, K);
                    exit(1);
                }
            }
            vlp_image_free(&mimg);
        }
        if (vlp_segment_image(&gv, &img, gv_classes, K, &rule, gt, pred, group, oracle) ||
            (clip_path &&
             vlp_segment_image(&clip, &img, clip_classes, K, &dense_rule, NULL, dense, NULL, NULL)))
            die(vlp_error_message());
        if (gt) {
            uint8_t *named = malloc(np);
            vlp_segment_oracle_groups(group, gv.groupvit.cfg.output_groups[gv.groupvit.cfg.n_groupings - 1],
                                      gt, np, named);
            const uint8_t *preds[N_METHODS] = {pred, oracle, dense, named};
            for (int m = 0; m < N_METHODS; m++)
                if (methods[m].on && vlp_miou_add(&methods[m].miou, gt, preds[m], np))
                    die(vlp_error_message());
            free(named);
        }
        fprintf(index, "%06ld\t%s\n", i, files ? files[i] : ds.samples[i].path ? ds.samples[i].path : "(packed)");
        snprintf(path, sizeof path, "%s/labels/%06ld.png", out_dir, i);
        if (!stbi_write_png(path, img.w, img.h, 1, pred, img.w)) die("cannot write a label map");
        if (i < n_overlays) {
            /* the final groups as outlines, then the labels */
            for (long p = 0; p < np; p++) groups[p] = (uint8_t)group[p];
            const uint8_t *panels[4] = {groups, pred};
            const char *titles[4] = {"groups", "groupvit"};
            bool outline[4] = {true};
            int np_ = 2;
            if (clip_path) panels[np_] = dense, titles[np_++] = "dense clip";
            if (gt) panels[np_] = gt, titles[np_++] = "truth";
            vlp_image ov;
            if (vlp_segment_overlay(&ov, &img, panels, outline, titles, np_, (const char *const *)classes, K,
                                    img.w < 200 ? 2 : 1))
                die(vlp_error_message());
            snprintf(path, sizeof path, "%s/overlays/%06ld.png", out_dir, i);
            if (!stbi_write_png(path, ov.w, ov.h, 3, ov.rgb, ov.w * 3)) die("cannot write an overlay");
            vlp_image_free(&ov);
        }
        vlp_image_free(&img);
        free(pred), free(oracle), free(dense), free(groups), free(group), free(gt);
        done++;
    }
    if (fclose(index) != 0) die("cannot write index.tsv in the output folder");
    printf("vlpsegment: %ld images of %s segmented into %d classes + background (%s%s, threshold %.2f), "
           "%ld skipped; label maps in %s/labels\n", done, images_path, K, topk ? "GroupViT's rule" : "nearest class",
           masked ? ", masked groups" : "", threshold, skipped, out_dir);
    if (have_masks) {
        cJSON *out = cJSON_CreateObject(), *ms = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "model", model_path);
        cJSON_AddStringToObject(out, "images", images_path);
        cJSON_AddNumberToObject(out, "n_images", (double)done);
        cJSON_AddNumberToObject(out, "n_classes", K);
        cJSON_AddNumberToObject(out, "n_templates", n_templates);
        cJSON_AddNumberToObject(out, "topk", (double)topk);
        cJSON_AddStringToObject(out, "labelling", topk ? "groupvit: class probability among the image's topk classes"
                                                       : "nearest class by cosine similarity");
        cJSON_AddNumberToObject(out, "threshold", threshold);
        cJSON_AddStringToObject(out, "naming", masked ? "masked: each group's pixels alone, re-encoded"
                                                      : "groups: each final group token, projected");
        if (clip_path) {
            cJSON_AddStringToObject(out, "clip", clip_path);
            cJSON_AddNumberToObject(out, "dense_threshold", dense_threshold);
        }
        cJSON_AddStringToObject(out, "upsampling", "bilinear (align_corners=False) of the soft maps, then argmax");
        for (int m = 0; m < N_METHODS; m++)
            if (methods[m].on) cJSON_AddItemToObject(ms, methods[m].name, method_json(&methods[m], classes, K));
        cJSON_AddItemToObject(out, "methods", ms);
        char *text = cJSON_Print(out);
        if (json_path && !strcmp(json_path, "-")) {
            puts(text);
        } else {
            char def[4096];
            snprintf(def, sizeof def, "%s/miou.json", out_dir);
            const char *jp = json_path ? json_path : def;
            FILE *f = fopen(jp, "w");
            if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) != 0) die("cannot write the JSON");
            printf("vlpsegment: mIoU in %s\n", jp);
        }
        free(text);
        cJSON_Delete(out);
    }
    for (int m = 0; m < N_METHODS; m++) vlp_miou_free(&methods[m].miou);
    free(gv_classes), free(clip_classes);
    vlp_free_lines(classes, K);
    if (templates) vlp_free_lines(templates, n_templates);
    vlp_model_free(&gv);
    vlp_tokenizer_free(gv_tok);
    if (clip_path) vlp_model_free(&clip), vlp_tokenizer_free(clip_tok);
    if (files) vlp_free_lines(files, (int)n_files);
    else vlp_dataset_free(&ds);
    if (have_masks) vlp_dataset_free(&masks);
    return 0;
}
