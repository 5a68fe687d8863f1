/* Evaluations that go past one feature per image and text: BLIP's
 * retrieval with ITM re-ranking of ITC's candidates on a dataset, and the
 * nearest-neighbour lookup behind the captioning baseline (the caption of
 * the most similar training image). Not the re-ranking itself
 * (models/blip_rerank.h) nor ITC-only retrieval (eval.h). */
#ifndef VLP_EVAL_BLIP_H
#define VLP_EVAL_BLIP_H

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "train/model.h"

typedef struct vlp_rerank_result {
    int k;
    double i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10;
} vlp_rerank_result;

/* Retrieval among ds's n pairs as vlp_eval_retrieval's (image i matches
 * caption i, or with groups (n, may be NULL) every caption of its group),
 * each query's top k by the ITC features img, txt (n, embed_dim) re-ranked
 * by BLIP's ITC + ITM score (vlp_blip_rerank). Below k the order is ITC's,
 * so R@j for j > k counts the re-ranked top k or ITC's rank. m: a BLIP;
 * one process (ds's images are read and encoded here, centre crops). */
int vlp_eval_rerank(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                    const float *img, const float *txt, const int *groups, int k, int workers,
                    vlp_rerank_result *r);

/* Recall at 1, 5, 10 from re-ranked lists: top (n, k) each query's
 * candidates in order, score (n, k) their scores, itc_rank (n) the rank ITC
 * gives the query's best match (1-based); matches by groups (n, may be
 * NULL) or index; ties as vlp_retrieval_rank. r1 etc. fractions. */
void vlp_eval_rerank_recall(const int *top, const float *score, int k, const long *itc_rank,
                            const int *groups, long n, double *r1, double *r5, double *r10);

/* For each of nq query rows (D) the index of the most similar of nk key
 * rows by dot product (ties: the lower index), into best (nq). */
void vlp_eval_nearest(const float *q, long nq, const float *keys, long nk, int D, long *best);

#endif
