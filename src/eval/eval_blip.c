/* ITM re-ranked retrieval and nearest neighbours (see eval_blip.h). */
#include "eval/eval_blip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "autograd/kernels.h"
#include "data/loader.h"
#include "eval/eval.h"
#include "models/blip_rerank.h"

void vlp_eval_nearest(const float *q, long nq, const float *keys, long nk, int D, long *best) {
    float *sim = vlp_malloc(sizeof(float) * (size_t)nk);
    for (long i = 0; i < nq; i++) {
        vlp_gemm(false, true, 1, (int)nk, D, 1.0f, q + i * D, D, keys, D, 0.0f, sim, (int)nk);
        long b = 0;
        for (long j = 1; j < nk; j++)
            if (sim[j] > sim[b]) b = j;
        best[i] = b;
    }
    free(sim);
}

void vlp_eval_rerank_recall(const int *top, const float *score, int k, const long *itc_rank,
                            const int *groups, long n, double *r1, double *r5, double *r10) {
    long hits[3] = {0};
    static const int at[3] = {1, 5, 10};
    for (long q = 0; q < n; q++) {
        const int *t = top + q * k;
        const float *s = score + q * k;
        int first = k; /* position of the first match in the re-ranked top k */
        for (int p = 0; p < k && first == k; p++)
            if (groups ? groups[t[p]] == groups[q] : t[p] == q) first = p;
        /* A wrong candidate whose score ties the match's ranks ahead of it. */
        int pos = first;
        for (int p = first + 1; p < k; p++)
            pos += !(groups ? groups[t[p]] == groups[q] : t[p] == q) && vlp_retrieval_at_least(s[p], s[first]);
        for (int a = 0; a < 3; a++)
            hits[a] += first < k ? pos < at[a] : at[a] > k && itc_rank[q] <= at[a];
    }
    *r1 = (double)hits[0] / n, *r5 = (double)hits[1] / n, *r10 = (double)hits[2] / n;
}

/* The rank ITC gives each query's best match: rows of sims (n, n) when
 * image queries, else columns; ties count against the match. */
static void itc_ranks(const float *sims, const int *groups, long n, bool image_queries, long *rank) {
    for (long q = 0; q < n; q++)
        rank[q] = image_queries ? vlp_retrieval_rank(sims + q * n, 1, groups, q, n)
                                : vlp_retrieval_rank(sims + q, n, groups, q, n);
}

int vlp_eval_rerank(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                    const float *img, const float *txt, const int *groups, int k, int workers,
                    vlp_rerank_result *r) {
    if (m->kind != VLP_MODEL_BLIP) return vlp_error_set(VLP_EINVAL, "re-ranking needs a BLIP model");
    long n = ds->n;
    const vlp_blip_config *cfg = &m->blip.cfg;
    int S = m->image_size, ctx = m->context_length, D = m->embed_dim, batch = 64;
    int grid = cfg->image_size / cfg->patch_size, Ti = 1 + grid * grid, Cv = cfg->vision_width;
    if (k < 1 || k > n) return vlp_error_set(VLP_EINVAL, "--rerank %d: between 1 and the %ld pairs", k, n);
    /* Every image's tokens and the (n, n) similarities are held at once: a
     * dataset too large for that (or for vlp_blip_rerank's int counts) is
     * refused before anything is allocated. */
    double need = ((double)n * Ti * Cv + (double)n * n + (double)n * k + n) * sizeof(float) +
                  ((double)n * ctx + n + (double)n * k) * sizeof(int) + (double)n * sizeof(long);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (n > INT_MAX || (have > 0 && need > have))
        return vlp_error_set(VLP_EINVAL, "%s: re-ranking %ld pairs holds %.1f GB (every image's tokens and the "
                             "(n, n) similarities), more than this machine's %.1f GB", ds->source, n, need / 1e9,
                             have / 1e9);
    memset(r, 0, sizeof *r);
    r->k = k;
    float *tokens = vlp_malloc(sizeof(float) * (size_t)n * Ti * Cv), *sims = vlp_malloc(sizeof(float) * (size_t)n * n);
    int *ids = vlp_malloc(sizeof(int) * (size_t)n * ctx), *lengths = vlp_malloc(sizeof(int) * (size_t)n);
    int *top = vlp_malloc(sizeof(int) * (size_t)n * k);
    float *score = vlp_malloc(sizeof(float) * (size_t)n * k);
    long *rank = vlp_malloc(sizeof(long) * (size_t)n);
    float *rank_sims = vlp_malloc(sizeof(float) * (size_t)n);
    vlp_loader *l = NULL;
    int rc = VLP_OK;
    /* The texts as the model reads them: a row's length ends at its end token. */
    for (long i = 0; i < n && !rc; i++) {
        int *row = ids + i * ctx;
        rc = vlp_tokenizer_encode(tok, ds->samples[i].caption, row, ctx, NULL);
        lengths[i] = ctx;
        for (int j = 0; j < ctx; j++)
            if (row[j] == m->eot) {
                lengths[i] = j + 1;
                break;
            }
    }
    if (rc) goto fail;
    /* The image tokens the image-grounded encoder attends to. */
    vlp_loader_opts o = vlp_model_eval_loader(m, batch, workers);
    if ((rc = vlp_loader_open(&l, ds, &o, 0, 0))) goto fail;
    memset(tokens, 0, sizeof(float) * (size_t)n * Ti * Cv);
    vlp_tape t;
    vlp_tape_init(&t);
    long steps = vlp_loader_steps_per_epoch(l);
    for (long s = 0; s < steps && !rc; s++) {
        vlp_batch *b;
        if ((rc = vlp_loader_next(l, &b)) || b->n == 0) continue;
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *x = vlp_tape_wrap(&t, b->images, 4, (int[]){b->n, 3, S, S});
        vlp_tensor *e = vlp_blip_encode_image(&m->blip, &t, x);
        for (int j = 0; j < b->n; j++)
            memcpy(tokens + b->index[j] * Ti * Cv, e->data + (size_t)j * Ti * Cv, sizeof(float) * Ti * Cv);
        vlp_tape_no_grad_end(&t);
    }
    vlp_tape_free(&t);
    if (rc) goto fail;
    for (int dir = 0; dir < 2 && !rc; dir++) {
        bool image_queries = dir == 0;
        /* Each query's similarities as vlp_eval_retrieval computes them (one
         * row at a time), so the ranks past k are bit for bit ITC's. */
        const float *q = image_queries ? img : txt, *keys = image_queries ? txt : img;
        for (long i = 0; i < n; i++) {
            vlp_gemm(false, true, 1, (int)n, D, 1.0f, q + i * D, D, keys, D, 0.0f, rank_sims, (int)n);
            for (long j = 0; j < n; j++) sims[image_queries ? i * n + j : j * n + i] = rank_sims[j];
        }
        rc = vlp_blip_rerank(&m->blip, sims, (int)n, (int)n, tokens, ids, lengths, image_queries, k,
                             batch, VLP_BLIP_RERANK_ITC_PLUS_ITM, top, score, NULL);
        if (rc) break;
        itc_ranks(sims, groups, n, image_queries, rank);
        if (image_queries) vlp_eval_rerank_recall(top, score, k, rank, groups, n, &r->i2t_r1, &r->i2t_r5, &r->i2t_r10);
        else vlp_eval_rerank_recall(top, score, k, rank, groups, n, &r->t2i_r1, &r->t2i_r5, &r->t2i_r10);
    }
fail:
    if (l) vlp_loader_close(l);
    free(tokens), free(sims), free(ids), free(lengths), free(top), free(score), free(rank), free(rank_sims);
    return rc;
}
