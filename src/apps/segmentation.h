/* Zero-shot segmentation of a set of images by a GroupViT, from class names
 * alone, as vlpsegment runs it: label maps, overlays and, given masks, the
 * mIoU of the model beside its baselines (the oracle foreground, dense CLIP,
 * the oracle groups). Not the segmentation of one image (eval/segment.h)
 * nor the drawing (apps/overlay.h). */
#ifndef VLP_SEGMENTATION_H
#define VLP_SEGMENTATION_H

#include <cjson/cJSON.h>

#include "eval/segment.h"

typedef struct vlp_segmentation_opts {
    const char *model;     /* GroupViT run folder, checkpoint, or CONFIG.ini (random init, seed 1) */
    const char *images;    /* manifest (a `mask` column adds scores), dataset, or folder of images */
    const char *classes;   /* class names, one per line (at most 254) */
    const char *templates; /* prompt templates, or NULL: VLP_DEFAULT_TEMPLATE */
    const char *clip;      /* a CLIP for the dense-CLIP baseline, or NULL */
    const char *tokenizer; /* a CONFIG.ini model's tokenizer, or NULL: the config's */
    const char *out_dir;   /* labels/, overlays/, index.tsv */
    vlp_segment_rule rule, dense_rule;
    long limit;      /* images at most; < 0: all */
    long n_overlays; /* overlays of the first images */
} vlp_segmentation_opts;

typedef struct vlp_segmentation_result {
    long done, skipped; /* images segmented; unreadable ones passed over */
    int n_classes, n_templates;
    cJSON *scores; /* with masks: the run's settings and each method's mIoU; else NULL */
} vlp_segmentation_result;

/* Segments every image of o->images into o->out_dir (created): labels/NNNNNN.png
 * (8-bit label maps, 0 background, k + 1 class k), overlays/NNNNNN.png for
 * the first o->n_overlays, index.tsv (which input each number is). Errors
 * name the file; r->scores is the caller's to cJSON_Delete. */
int vlp_segmentation_run(const vlp_segmentation_opts *o, vlp_segmentation_result *r);

#endif
