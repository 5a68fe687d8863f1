/* A model's evaluation on a dataset as vlpeval runs it: the model, the data
 * and zero-shot's class names and templates loaded from their files, the
 * one evaluation (eval/eval.h), and BLIP's re-ranking of retrieval's top K.
 * Not the metrics themselves (eval/) nor the printing (vlpeval). */
#ifndef VLP_EVALUATION_H
#define VLP_EVALUATION_H

#include <cjson/cJSON.h>

#include "eval/eval.h"
#include "eval/eval_blip.h"

typedef struct vlp_evaluation_opts {
    const char *model;     /* a checkpoint or run folder */
    const char *data;      /* a manifest, folder or shard */
    const char *classes;   /* zero-shot's class names, one per line (DATA's class ids index them), or NULL */
    const char *templates; /* zero-shot's templates, one per line with {}, or NULL: VLP_DEFAULT_TEMPLATE */
    int retrieval;         /* VLP_RETRIEVAL_NONE, _PAIR or _CONCEPT */
    int batch, workers;
} vlp_evaluation_opts;

typedef struct vlp_evaluation {
    vlp_model model;
    vlp_tokenizer *tok;
    vlp_dataset data;
    int n_classes;
    cJSON *scores; /* vlp_eval_dataset's, then "model" and "data" (the paths) */
    vlp_eval_features features;
    vlp_rerank_result rerank; /* after vlp_evaluation_rerank */
} vlp_evaluation;

/* Loads o's model and data, and evaluates as o asks (vlp_eval_dataset,
 * with each template alone and per-class details). All ranks call; e is
 * the same on each. Free e with vlp_evaluation_free after success only. */
int vlp_evaluation_run(const vlp_evaluation_opts *o, const vlp_dist *d, vlp_evaluation *e);

/* Re-ranks the retrieval's top k by BLIP's ITC + ITM (vlp_eval_rerank; one
 * process) into e->rerank, and adds it to e->scores' "retrieval" as
 * "rerank": {"k", "i2t_r1", ..., "t2i_r10"}. */
int vlp_evaluation_rerank(vlp_evaluation *e, const vlp_dist *d, int k, int workers);

void vlp_evaluation_free(vlp_evaluation *e);

#endif
