/* Evaluation of a model of any kind (vlp_model_encode_image/_text): embedding a dataset (centre crops, no
 * augmentation; sharded over ranks and summed back), zero-shot
 * classification with prompt ensembles, and image-text retrieval.
 * Not training: nothing here records a gradient. */
#ifndef VLP_EVAL_H
#define VLP_EVAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "train/dist.h"
#include "train/model.h"
#include "train/trainer.h"

/* img, txt: (ds->n, embed_dim) L2-normalised features, in dataset order;
 * read (ds->n): whether each image was read (the same on every rank). The
 * rows of an image that could not be read are zero and belong in no
 * metric or index: vlp_eval_keep_read drops them. */
int vlp_eval_embed(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                   const vlp_dist *d, int batch, int workers, float *img, float *txt, bool *read);

/* Keeps the samples whose image was read: img and txt (ds->n, D) compacted
 * in place to their rows, *view the dataset of those samples in order (it
 * shares ds's strings and shard; free it with vlp_eval_view_free). Returns
 * how many samples were dropped. */
long vlp_eval_keep_read(vlp_dataset *view, const vlp_dataset *ds, const bool *read, float *img, float *txt,
                        int D);
void vlp_eval_view_free(vlp_dataset *view);

/* Every row of img and txt ((ds->n, D) each; either may be NULL) finite,
 * or an error naming the first sample whose image or caption embedded to
 * NaN or infinity: checked before embeddings are scored or indexed. */
int vlp_eval_check_finite(const vlp_dataset *ds, const float *img, const float *txt, int D);

/* The features of n texts (L2-normalised, (n, embed_dim) into out), in
 * batches of batch. */
int vlp_eval_embed_texts(const vlp_model *m, const vlp_tokenizer *tok, const char *const *texts, long n,
                         int batch, float *out);

/* Class embeddings (n_classes, D): for each class, every template with
 * "{}" replaced by the name, embedded, L2-normalised, averaged, normalised.
 * No templates (NULL or 0): VLP_DEFAULT_TEMPLATE alone. */
int vlp_eval_class_embeddings(const vlp_model *m, const vlp_tokenizer *tok,
                              const char *const *classes, int n_classes,
                              const char *const *templates, int n_templates, float *out);

typedef struct vlp_zeroshot_result {
    int n_classes;
    long n;
    double top1, top5;
    double *per_class; /* (n_classes) accuracy */
    long *confusion;   /* (n_classes, n_classes): true class row, predicted column */
} vlp_zeroshot_result;

/* Classifies each image by cosine similarity; labels (n) in [0, n_classes). */
void vlp_eval_zeroshot(const float *img, const int *labels, long n, const float *classes,
                       int n_classes, int D, vlp_zeroshot_result *r);
void vlp_zeroshot_result_free(vlp_zeroshot_result *r);

typedef struct vlp_retrieval_result {
    long n;
    double i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10;
    double i2t_mean_rank, i2t_median_rank, t2i_mean_rank, t2i_median_rank;
    /* R@1/5/10 of a random ranking (the same both ways): 1/n, 5/n, 10/n for
     * pairs; higher with groups, where a query has several matches. */
    double chance_r1, chance_r5, chance_r10;
} vlp_retrieval_result;

/* Two scores closer than this (relative to the larger, at least 1) tie:
 * the same caption or image embedded in another batch differs by float
 * rounding only, and must not rank differently for it. */
#define VLP_RETRIEVAL_TIE 1e-5f

/* Whether score a ties with or beats score b, VLP_RETRIEVAL_TIE apart. */
bool vlp_retrieval_at_least(float a, float b);

/* The 1-based rank of query q's best match among the n scores
 * sim[0], sim[stride], ...: one plus the wrong items that beat or tie it
 * (a tie ranks the wrong item first, so no tie counts as a hit). Item j
 * matches when groups[j] == groups[q], or j == q when groups is NULL. */
long vlp_retrieval_rank(const float *sim, long stride, const int *groups, long q, long n);

/* Image i's match is caption i, or with groups (n ids, may be NULL) any
 * caption of the same group (a concept written several ways). Ranks as
 * vlp_retrieval_rank gives them. */
void vlp_eval_retrieval(const float *img, const float *txt, const int *groups, long n, int D,
                        vlp_retrieval_result *r);

/* What to evaluate a dataset on. */
typedef struct vlp_eval_request {
    const char *const *classes; /* zero-shot when n_classes > 0: samples' class ids index these */
    int n_classes;
    const char *const *templates; /* NULL or 0: VLP_DEFAULT_TEMPLATE */
    int n_templates;
    bool each_template; /* also each template alone ("single_template") */
    bool details;       /* per-class accuracy and the confusion matrix */
    int retrieval;      /* VLP_RETRIEVAL_NONE, _PAIR or _CONCEPT (train/config.h) */
    int batch, workers;
} vlp_eval_request;

/* What the evaluation embedded, for more work on it (re-ranking): the
 * features of view's samples (the images that were read), and their
 * concept ids when retrieval matched by concept. */
typedef struct vlp_eval_features {
    float *img, *txt; /* (view.n, D) */
    vlp_dataset view;
    int *groups;
    long unreadable;
} vlp_eval_features;
void vlp_eval_features_free(vlp_eval_features *f);

/* The one evaluation: embeds ds's readable images and its captions, then
 * zero-shot and retrieval as q asks. *out (the same on every rank; the
 * caller's to cJSON_Delete): {"samples", "unreadable", "zeroshot": {"top1",
 * "top5", "templates", "classes", ["per_class", "confusion"],
 * ["single_template"]}, "retrieval": {"match", "chance_r1"..., "i2t_r1"...,
 * "t2i_median_rank"}}. keep (may be NULL) gets the features. All ranks call. */
int vlp_eval_dataset(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds, const vlp_dist *d,
                     const vlp_eval_request *q, cJSON **out, vlp_eval_features *keep);

/* A run's evaluation on [data] val as [eval] asks (zero-shot, retrieval),
 * what vlptrain sets as the trainer's evaluate hook; rank 0 prints it and
 * logs it to metrics.jsonl. All ranks call. */
int vlp_eval_during_training(vlp_trainer *t);

#endif
