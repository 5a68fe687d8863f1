/* BLIP's retrieval re-ranking (Li et al. 2022, blip_retrieval.py's
 * evaluation): for each query, the k candidates the contrastive (ITC)
 * similarities rank highest are scored again with the image-text matching
 * (ITM) head on the image-grounded encoder, and re-ordered. Not the
 * similarities themselves (vlp_blip_image_features, text_features) nor
 * recall metrics. */
#ifndef VLP_BLIP_RERANK_H
#define VLP_BLIP_RERANK_H

#include <stdbool.h>

#include "models/blip.h"

typedef enum vlp_blip_rerank_score {
    VLP_BLIP_RERANK_ITC_PLUS_ITM, /* ITC similarity + ITM match logit: BLIP's */
    VLP_BLIP_RERANK_ITM_PROB,     /* ITM's match probability alone */
} vlp_blip_rerank_score;

/* Retrieval among NI images and NT texts with ITC similarities sims
 * (NI, NT). Queries are the images (text retrieval, rows of sims) when
 * image_queries, else the texts (image retrieval, columns). image_embeds
 * (NI, Ti, vision_width): the images' tokens; ids (NT, context_length)
 * with lengths (NT): the texts as the tokenizer writes them. For query q,
 * writes its k (<= candidates) best candidates by ITC to top + q k, then
 * re-orders them by `score` (ties: the ITC order), with score + q k their
 * scores and match_prob + q k (may be NULL) ITM's match probability.
 * The ITM passes run `batch` pairs at a time without gradient. */
int vlp_blip_rerank(const vlp_blip *m, const float *sims, int NI, int NT, const float *image_embeds,
                    const int *ids, const int *lengths, bool image_queries, int k, int batch,
                    vlp_blip_rerank_score score_kind, int *top, float *score, float *match_prob);

#endif
