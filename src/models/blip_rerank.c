/* BLIP's ITC-then-ITM retrieval re-ranking (see blip_rerank.h). */
#include "models/blip_rerank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* The k best of row (C, stride apart) into top and itc, best first (ties:
 * the lower index). */
static void top_k(const float *row, long stride, int C, int k, int *top, float *itc) {
    int n = 0;
    for (int j = 0; j < C; j++) {
        float v = row[j * stride];
        if (n == k && !(v > itc[k - 1])) continue;
        int i = n < k ? n++ : k - 1;
        while (i > 0 && v > itc[i - 1]) top[i] = top[i - 1], itc[i] = itc[i - 1], i--;
        top[i] = j, itc[i] = v;
    }
}

int vlp_blip_rerank(const vlp_blip *m, const float *sims, int NI, int NT, const float *image_embeds,
                    const int *ids, const int *lengths, bool image_queries, int k, int batch,
                    vlp_blip_rerank_score score_kind, int *top, float *score, float *match_prob) {
    const vlp_blip_config *cfg = &m->cfg;
    int Q = image_queries ? NI : NT, C = image_queries ? NT : NI;
    if (k < 1 || k > C || batch < 1)
        return vlp_error_set(VLP_EINVAL, "re-ranking: top %d of %d candidates, %d pairs a pass", k,
                             C, batch);
    int grid = cfg->image_size / cfg->patch_size, Ti = 1 + grid * grid, Cv = cfg->vision_width;
    int T = cfg->context_length;
    long P = (long)Q * k;
    float *itc = vlp_malloc((size_t)P * sizeof *itc), *prob = vlp_malloc((size_t)P * sizeof *prob);
    for (int q = 0; q < Q; q++) {
        const float *row = image_queries ? sims + (long)q * NT : sims + q;
        top_k(row, image_queries ? 1 : NT, C, k, top + (long)q * k, itc + (long)q * k);
    }
    vlp_tape t;
    vlp_tape_init(&t);
    for (long first = 0; first < P; first += batch) {
        int n = P - first < batch ? (int)(P - first) : batch;
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *images = vlp_tape_tensor(&t, 3, (int[]){n, Ti, Cv});
        int *pair_ids = vlp_tape_alloc(&t, (size_t)n * T * sizeof *pair_ids);
        int *pair_lengths = vlp_tape_alloc(&t, (size_t)n * sizeof *pair_lengths);
        for (int p = 0; p < n; p++) {
            int q = (int)((first + p) / k), cand = top[first + p];
            int image = image_queries ? q : cand, text = image_queries ? cand : q;
            memcpy(images->data + (size_t)p * Ti * Cv, image_embeds + (size_t)image * Ti * Cv,
                   (size_t)Ti * Cv * sizeof(float));
            memcpy(pair_ids + (size_t)p * T, ids + (size_t)text * T, (size_t)T * sizeof *ids);
            pair_lengths[p] = lengths[text];
        }
        vlp_tensor *logits = vlp_blip_itm_logits(m, &t, images, pair_ids, pair_lengths);
        for (int p = 0; p < n; p++) {
            float no = logits->data[2 * p], yes = logits->data[2 * p + 1];
            prob[first + p] = (float)(1.0 / (1.0 + exp((double)no - yes)));
            score[first + p] = score_kind == VLP_BLIP_RERANK_ITM_PROB ? prob[first + p]
                                                                      : itc[first + p] + yes;
        }
        vlp_tape_no_grad_end(&t);
    }
    vlp_tape_free(&t);
    /* Each query's k by score, best first; a stable insertion sort keeps
     * ITC's order among equals. */
    for (int q = 0; q < Q; q++) {
        int *tq = top + (long)q * k;
        float *sq = score + (long)q * k, *pq = prob + (long)q * k;
        for (int i = 1; i < k; i++) {
            int tv = tq[i];
            float sv = sq[i], pv = pq[i];
            int j = i;
            for (; j > 0 && sv > sq[j - 1]; j--) tq[j] = tq[j - 1], sq[j] = sq[j - 1], pq[j] = pq[j - 1];
            tq[j] = tv, sq[j] = sv, pq[j] = pv;
        }
    }
    if (match_prob) memcpy(match_prob, prob, (size_t)P * sizeof *prob);
    free(itc), free(prob);
    return VLP_OK;
}
