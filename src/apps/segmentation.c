/* Segmentation of an image set (see segmentation.h). */
#include "apps/segmentation.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <stb_image_write.h>

#include "apps/overlay.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "data/dataset.h"
#include "eval/eval.h"
#include "train/checkpoint.h"
#include "train/config.h"

static int make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    return VLP_OK;
}

/* A model of the wanted kind from a run folder or checkpoint, or from a
 * config file, randomly initialised (seed 1). */
static int open_model(const char *path, const char *tokenizer, int kind, vlp_model *m, vlp_tokenizer **tok) {
    size_t len = strlen(path);
    int rc;
    *tok = NULL;
    if (len > 4 && !strcmp(path + len - 4, ".ini")) {
        vlp_config c;
        rc = vlp_config_load(&c, path, NULL, 0);
        if (!rc) rc = vlp_tokenizer_load(tok, tokenizer ? tokenizer : c.data.tokenizer, -1);
        if (!rc && (rc = vlp_model_init(m, &c, vlp_tokenizer_vocab_size(*tok), 1))) vlp_tokenizer_free(*tok);
    } else {
        rc = vlp_model_load(path, m, tok);
    }
    if (rc) return rc;
    if (m->kind != kind) {
        rc = vlp_error_set(VLP_EINVAL, "%s is a %s model, not %s", path, vlp_model_kind_name(m->kind),
                           vlp_model_kind_name(kind));
        vlp_model_free(m), vlp_tokenizer_free(*tok), *tok = NULL;
    }
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The image files (.png, .jpg, .jpeg) of a folder, sorted; NULL if none. */
static char **list_images(const char *dir, long *n) {
    DIR *d = opendir(dir);
    *n = 0;
    if (!d) return NULL;
    char **files = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        const char *dot = strrchr(e->d_name, '.');
        if (e->d_name[0] == '.' || !dot || (strcasecmp(dot, ".png") && strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg")))
            continue;
        files = vlp_realloc(files, sizeof *files * (size_t)(*n + 1));
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        files[*n] = vlp_malloc(len);
        snprintf(files[*n], len, "%s/%s", dir, e->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(files, (size_t)*n, sizeof *files, cmp_str);
    else vlp_error_set(VLP_ENOTFOUND, "%s: no manifest, dataset or image files", dir);
    return *n ? files : (free(files), NULL);
}

enum { N_METHODS = 4 };
typedef struct method {
    const char *name;
    bool on;
    vlp_miou miou;
} method;

static cJSON *method_json(method *me, char **classes, int K) {
    double *iou = vlp_malloc(sizeof(double) * (K + 1)), acc;
    double mean = vlp_miou_compute(&me->miou, iou, &acc);
    cJSON *o = cJSON_CreateObject(), *per = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "miou", mean);
    cJSON_AddNumberToObject(o, "pixel_accuracy", acc);
    for (int k = 0; k <= K; k++)
        if (!isnan(iou[k])) cJSON_AddNumberToObject(per, k ? classes[k - 1] : "background", iou[k]);
    cJSON_AddItemToObject(o, "per_class_iou", per);
    free(iou);
    return o;
}

/* The mask of image i (labels 0..K in its first channel) into gt. */
static int read_mask(const vlp_dataset *masks, long i, const vlp_image *img, int K, uint8_t *gt) {
    vlp_image mimg = {0};
    vlp_image_opts io = vlp_image_opts_default(); /* label maps: no PIL modes */
    int rc = vlp_dataset_image(masks, i, &mimg, &io);
    if (rc) return rc;
    if (mimg.w != img->w || mimg.h != img->h)
        rc = vlp_error_set(VLP_EFORMAT, "%s: a mask of %dx%d for an image of %dx%d", masks->samples[i].path, mimg.w,
                           mimg.h, img->w, img->h);
    for (long p = 0; !rc && p < (long)img->w * img->h; p++) {
        gt[p] = mimg.rgb[p * 3];
        if (gt[p] > K)
            rc = vlp_error_set(VLP_EFORMAT, "%s: label %d at pixel %ld, but the class list names %d classes",
                               masks->samples[i].path, gt[p], p, K);
    }
    vlp_image_free(&mimg);
    return rc;
}

/* The run's settings and each method's mIoU, for miou.json. */
static cJSON *scores_json(const vlp_segmentation_opts *o, const vlp_segmentation_result *r, method *methods,
                          char **classes, int K) {
    cJSON *out = cJSON_CreateObject(), *ms = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", o->model);
    cJSON_AddStringToObject(out, "images", o->images);
    cJSON_AddNumberToObject(out, "n_images", (double)r->done);
    cJSON_AddNumberToObject(out, "n_classes", K);
    cJSON_AddNumberToObject(out, "n_templates", r->n_templates);
    cJSON_AddNumberToObject(out, "topk", o->rule.topk);
    cJSON_AddStringToObject(out, "labelling", o->rule.topk ? "groupvit: class probability among the image's topk classes"
                                                           : "nearest class by cosine similarity");
    cJSON_AddNumberToObject(out, "threshold", o->rule.threshold);
    cJSON_AddStringToObject(out, "naming", o->rule.masked ? "masked: each group's pixels alone, re-encoded"
                                                          : "groups: each final group token, projected");
    if (o->clip) {
        cJSON_AddStringToObject(out, "clip", o->clip);
        cJSON_AddNumberToObject(out, "dense_threshold", o->dense_rule.threshold);
    }
    cJSON_AddStringToObject(out, "upsampling", "bilinear (align_corners=False) of the soft maps, then argmax");
    for (int m = 0; m < N_METHODS; m++)
        if (methods[m].on) cJSON_AddItemToObject(ms, methods[m].name, method_json(&methods[m], classes, K));
    cJSON_AddItemToObject(out, "methods", ms);
    return out;
}

/* One overlay: the final groups as outlines, then the labels (GroupViT's,
 * dense CLIP's when given, the truth when given), under their titles. */
static int write_overlay(const char *path, const vlp_image *img, const uint8_t *groups, const uint8_t *pred,
                         const uint8_t *dense, const uint8_t *gt, char **classes, int K) {
    const uint8_t *panels[4] = {groups, pred};
    const char *titles[4] = {"groups", "groupvit"};
    bool outline[4] = {true};
    int n_panels = 2;
    if (dense) panels[n_panels] = dense, titles[n_panels++] = "dense clip";
    if (gt) panels[n_panels] = gt, titles[n_panels++] = "truth";
    vlp_image ov = {0};
    int rc = vlp_segment_overlay(&ov, img, panels, outline, titles, n_panels, (const char *const *)classes, K,
                                 img->w < 200 ? 2 : 1);
    if (!rc && !stbi_write_png(path, ov.w, ov.h, 3, ov.rgb, ov.w * 3)) rc = vlp_error_set(VLP_EIO, "cannot write %s", path);
    if (ov.rgb) vlp_image_free(&ov);
    return rc;
}

/* OUT with its labels/ and overlays/ folders, and index.tsv (which input
 * each numbered output is) open with its header. */
static int open_out_dir(const char *out, FILE **index) {
    char path[4096];
    int rc = make_dir(out);
    snprintf(path, sizeof path, "%s/labels", out);
    if (!rc) rc = make_dir(path);
    snprintf(path, sizeof path, "%s/overlays", out);
    if (!rc) rc = make_dir(path);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/index.tsv", out);
    if (!(*index = fopen(path, "w"))) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno));
    fprintf(*index, "output\tinput\n");
    return VLP_OK;
}

/* What every image of a run shares. */
typedef struct seg_run {
    const vlp_segmentation_opts *o;
    const vlp_model *gv, *clip; /* clip NULL: no dense baseline */
    const float *gv_classes, *clip_classes;
    char **classes;
    int K, G; /* classes; GroupViT's final groups */
    method *methods;
    const vlp_dataset *masks; /* NULL: no truth */
    FILE *index;
} seg_run;

/* Segments image i (read from input) by every method that is on, scores
 * it against its mask when there is one, and writes its label map, its
 * line of index.tsv and, for the first n_overlays, its overlay. */
static int segment_one(seg_run *s, long i, const vlp_image *img, const char *input) {
    const vlp_segmentation_opts *o = s->o;
    long np = (long)img->w * img->h;
    uint8_t *pred = vlp_malloc(np), *oracle = vlp_malloc(np), *dense = vlp_malloc(np), *groups = vlp_malloc(np);
    uint8_t *gt = s->masks ? vlp_malloc(np) : NULL, *named = s->masks ? vlp_malloc(np) : NULL;
    int *group = vlp_malloc(sizeof(int) * np);
    char path[4096];
    int rc = s->masks ? read_mask(s->masks, i, img, s->K, gt) : VLP_OK;
    if (!rc) rc = vlp_segment_image(s->gv, img, s->gv_classes, s->K, &o->rule, gt, pred, group, oracle);
    if (!rc && s->clip)
        rc = vlp_segment_image(s->clip, img, s->clip_classes, s->K, &o->dense_rule, NULL, dense, NULL, NULL);
    if (!rc && gt) {
        vlp_segment_oracle_groups(group, s->G, gt, np, named);
        const uint8_t *preds[N_METHODS] = {pred, oracle, dense, named};
        for (int m = 0; m < N_METHODS && !rc; m++)
            if (s->methods[m].on) rc = vlp_miou_add(&s->methods[m].miou, gt, preds[m], np);
    }
    if (!rc) {
        fprintf(s->index, "%06ld\t%s\n", i, input);
        snprintf(path, sizeof path, "%s/labels/%06ld.png", o->out_dir, i);
        if (!stbi_write_png(path, img->w, img->h, 1, pred, img->w)) rc = vlp_error_set(VLP_EIO, "cannot write %s", path);
    }
    if (!rc && i < o->n_overlays) {
        for (long p = 0; p < np; p++) groups[p] = (uint8_t)group[p];
        snprintf(path, sizeof path, "%s/overlays/%06ld.png", o->out_dir, i);
        rc = write_overlay(path, img, groups, pred, s->clip ? dense : NULL, gt, s->classes, s->K);
    }
    free(pred), free(oracle), free(dense), free(groups), free(group), free(gt), free(named);
    return rc;
}

int vlp_segmentation_run(const vlp_segmentation_opts *o, vlp_segmentation_result *r) {
    memset(r, 0, sizeof *r);
    int K = 0, n_templates = 0, rc = VLP_OK;
    char **classes = vlp_read_lines(o->classes, &K), **templates = NULL, **files = NULL;
    long n_files = 0;
    vlp_dataset ds = {0}, masks = {0};
    bool have_ds = false, have_masks = false, have_gv = false, have_clip = false;
    vlp_model gv, clip;
    vlp_tokenizer *gv_tok = NULL, *clip_tok = NULL;
    float *gv_classes = NULL, *clip_classes = NULL;
    method methods[N_METHODS] = {{.name = "groupvit", .on = true},
                                 {.name = "oracle_foreground"},
                                 {.name = "dense_clip", .on = o->clip != NULL},
                                 {.name = "oracle_groups"}};
    FILE *index = NULL;
    if (!classes || K == 0) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: no class names (one per line)", o->classes);
        goto done;
    }
    if (K > 254) {
        rc = vlp_error_set(VLP_EINVAL, "%s: more than 254 classes: label maps are 8-bit", o->classes);
        goto done;
    }
    if (o->templates && (!(templates = vlp_read_lines(o->templates, &n_templates)) || !n_templates)) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: no templates", o->templates);
        goto done;
    }
    r->n_classes = K, r->n_templates = n_templates ? n_templates : 1;
    /* IMAGES: a dataset (with its mask column, rows aligned, when a manifest
     * has one) or a plain folder of images */
    if (vlp_dataset_open(&ds, o->images, NULL) == VLP_OK) {
        have_ds = true;
        vlp_manifest_opts mo = {.image_key = "mask"};
        have_masks = vlp_dataset_open_manifest(&masks, o->images, &mo) == VLP_OK;
        if (have_masks && masks.n != ds.n) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: the mask column and the images disagree in count", o->images);
            goto done;
        }
    } else if (!(files = list_images(o->images, &n_files))) {
        rc = VLP_ENOTFOUND;
        goto done;
    }
    methods[1].on = methods[3].on = have_masks;
    long total = files ? n_files : ds.n, n = o->limit >= 0 && o->limit < total ? o->limit : total;

    if ((rc = open_model(o->model, o->tokenizer, VLP_MODEL_GROUPVIT, &gv, &gv_tok))) goto done;
    have_gv = true;
    if (o->clip && (rc = open_model(o->clip, o->tokenizer, VLP_MODEL_CLIP, &clip, &clip_tok))) goto done;
    have_clip = o->clip != NULL;
    gv_classes = vlp_malloc(sizeof(float) * K * gv.embed_dim);
    if ((rc = vlp_eval_class_embeddings(&gv, gv_tok, (const char *const *)classes, K, (const char *const *)templates,
                                        n_templates, gv_classes)))
        goto done;
    if (have_clip) {
        clip_classes = vlp_malloc(sizeof(float) * K * clip.embed_dim);
        if ((rc = vlp_eval_class_embeddings(&clip, clip_tok, (const char *const *)classes, K,
                                            (const char *const *)templates, n_templates, clip_classes)))
            goto done;
    }
    for (int i = 0; i < N_METHODS; i++)
        if ((rc = vlp_miou_init(&methods[i].miou, K + 1))) goto done;
    if ((rc = open_out_dir(o->out_dir, &index))) goto done;
    vlp_image_opts io = vlp_image_opts_default();
    io.alpha = gv.cfg.preprocess.alpha; /* the model's [preprocess] */
    seg_run run = {.o = o, .gv = &gv, .clip = have_clip ? &clip : NULL, .gv_classes = gv_classes,
                   .clip_classes = clip_classes, .classes = classes, .K = K,
                   .G = gv.groupvit.cfg.output_groups[gv.groupvit.cfg.n_groupings - 1], .methods = methods,
                   .masks = have_masks ? &masks : NULL, .index = index};
    for (long i = 0; i < n && !rc; i++) {
        vlp_image img;
        if (files ? vlp_image_load(&img, files[i], &io) : vlp_dataset_image(&ds, i, &img, &io)) {
            fprintf(stderr, "vlpsegment: skipped: %s\n", vlp_error_message());
            r->skipped++;
            continue;
        }
        rc = segment_one(&run, i, &img, files ? files[i] : ds.samples[i].path ? ds.samples[i].path : "(packed)");
        vlp_image_free(&img);
        if (!rc) r->done++;
    }
    if (index && fclose(index) != 0 && !rc) rc = vlp_error_set(VLP_EIO, "%s/index.tsv: cannot write", o->out_dir);
    index = NULL;
    if (!rc && have_masks) r->scores = scores_json(o, r, methods, classes, K);
done:
    if (index) fclose(index);
    for (int m = 0; m < N_METHODS; m++) vlp_miou_free(&methods[m].miou);
    free(gv_classes), free(clip_classes);
    if (classes) vlp_free_lines(classes, K);
    if (templates) vlp_free_lines(templates, n_templates);
    if (have_gv) vlp_model_free(&gv), vlp_tokenizer_free(gv_tok);
    if (have_clip) vlp_model_free(&clip), vlp_tokenizer_free(clip_tok);
    if (files) vlp_free_lines(files, (int)n_files);
    if (have_ds) vlp_dataset_free(&ds);
    if (have_masks) vlp_dataset_free(&masks);
    return rc;
}
