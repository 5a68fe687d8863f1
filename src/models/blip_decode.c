/* BLIP's decoder, one token at a time, and generate()'s strategies (see
 * blip_decode.h). */
#include "models/blip_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* ---- the incremental decoder -------------------------------------------------- */

struct vlp_blip_decoder {
    const vlp_blip *m;
    int B, R, N, T, Ti, pos; /* images, rows per image, rows, positions, image tokens, next position */
    /* Per layer: self-attention keys and values (N, T, C), filled up to pos;
     * cross-attention ones of the images (B, Ti, C), which an image's R
     * rows read as R queries of one attention. */
    float *self_k[VLP_MAX_LAYERS], *self_v[VLP_MAX_LAYERS];
    float *cross_k[VLP_MAX_LAYERS], *cross_v[VLP_MAX_LAYERS];
    float *scratch;  /* (N, T, C): reorder */
    uint8_t *mask;   /* (N, T): the positions fed so far */
    float *logits;   /* (N, V) */
    float *memory;   /* everything above, one block */
    vlp_tape tape;   /* each step's activations */
};

int vlp_blip_decoder_rows(const vlp_blip_decoder *d) { return d->N; }

int vlp_blip_decoder_init(vlp_blip_decoder **out, const vlp_blip *m,
                          const vlp_tensor *image_embeds, int repeats, int max_length) {
    const vlp_blip_config *cfg = &m->cfg;
    VLP_ASSERT(image_embeds->ndim == 3 && image_embeds->shape[2] == cfg->vision_width,
               "decoder: image tokens are not (B, Ti, %d)", cfg->vision_width);
    VLP_ASSERT(repeats >= 1, "decoder: %d repeats", repeats);
    *out = NULL;
    if (max_length < 1 || max_length > cfg->context_length)
        return vlp_error_set(VLP_EINVAL, "decoder: max_length %d outside [1, %d] (the context)",
                             max_length, cfg->context_length);
    int B = image_embeds->shape[0], Ti = image_embeds->shape[1], Cv = cfg->vision_width;
    int N = B * repeats, T = max_length, C = cfg->text_width, L = cfg->text_layers;
    size_t per_layer = 2 * (size_t)N * T * C + 2 * (size_t)B * Ti * C;
    size_t floats = L * per_layer + (size_t)N * T * C + (size_t)N * cfg->vocab_size;
    vlp_blip_decoder *d = vlp_calloc(1, sizeof *d);
    /* Zeros: attention weighs the unfilled positions 0, and 0 * a NaN that
     * happened to be in the memory would be NaN. */
    float *memory = vlp_calloc(floats, sizeof(float));
    uint8_t *mask = vlp_calloc((size_t)N * T, 1);
    *d = (vlp_blip_decoder){.m = m, .B = B, .R = repeats, .N = N, .T = T, .Ti = Ti,
                            .memory = memory, .mask = mask};
    float *p = memory;
    for (int l = 0; l < L; l++) {
        d->self_k[l] = p, p += (size_t)N * T * C;
        d->self_v[l] = p, p += (size_t)N * T * C;
        d->cross_k[l] = p, p += (size_t)B * Ti * C;
        d->cross_v[l] = p, p += (size_t)B * Ti * C;
    }
    d->scratch = p, p += (size_t)N * T * C;
    d->logits = p;
    vlp_tape_init(&d->tape);
    /* The images' keys and values are the same at every step: once. */
    vlp_tape *t = &d->tape;
    vlp_tape_no_grad_begin(t);
    vlp_tensor *img = vlp_tape_wrap(t, image_embeds->data, 3, (int[]){B, Ti, Cv});
    for (int l = 0; l < L; l++) {
        const vlp_bert_attention *a = &m->text_decoder.layer[l].crossattention;
        vlp_tensor *k = vlp_op_linear(t, img, a->key_w, a->key_b);
        vlp_tensor *v = vlp_op_linear(t, img, a->value_w, a->value_b);
        memcpy(d->cross_k[l], k->data, (size_t)k->n * sizeof(float));
        memcpy(d->cross_v[l], v->data, (size_t)v->n * sizeof(float));
    }
    vlp_tape_no_grad_end(t);
    *out = d;
    return VLP_OK;
}

void vlp_blip_decoder_free(vlp_blip_decoder *d) {
    if (!d) return;
    vlp_tape_free(&d->tape);
    free(d->memory);
    free(d->mask);
    free(d);
}

/* BertAttention with the keys and values given:
 * LayerNorm(x + dense(attention(query(x), k, v))). */
static vlp_tensor *attend(const vlp_bert_attention *a, vlp_tape *t, vlp_tensor *x, vlp_tensor *k,
                          vlp_tensor *v, int heads, const uint8_t *key_mask) {
    vlp_tensor *q = vlp_op_linear(t, x, a->query_w, a->query_b);
    vlp_tensor *h = vlp_op_attention(t, q, k, v, heads, false, key_mask);
    return vlp_ln_forward(&a->ln, t, vlp_op_linear_residual(t, h, a->dense_w, a->dense_b, x));
}

/* Writes rows (N, C) of x into cache (N, T, C) at position pos. */
static void cache_put(float *cache, const vlp_tensor *x, int N, int T, int C, int pos) {
    for (int r = 0; r < N; r++)
        memcpy(cache + ((size_t)r * T + pos) * C, x->data + (size_t)r * C, (size_t)C * sizeof(float));
}

const float *vlp_blip_decoder_step(vlp_blip_decoder *d, const int *ids) {
    const vlp_blip *m = d->m;
    const vlp_bert *bert = &m->text_decoder;
    int N = d->N, T = d->T, C = bert->cfg.width, pos = d->pos, heads = bert->cfg.heads;
    VLP_ASSERT(pos < T, "decoder: step past its %d positions", T);
    vlp_tape *t = &d->tape;
    vlp_tape_reset(t);
    vlp_tape_no_grad_begin(t);
    for (int r = 0; r < N; r++) d->mask[(size_t)r * T + pos] = 1;
    vlp_tensor *x = vlp_op_embedding(t, bert->word_embeddings, ids, N);
    vlp_tensor *pe = vlp_op_slice(t, bert->position_embeddings, 0, pos, 1);
    x = vlp_op_add(t, x, vlp_op_reshape(t, pe, 1, (int[]){C}));
    x = vlp_ln_forward(&bert->embeddings_ln, t, x);
    x = vlp_op_reshape(t, x, 3, (int[]){N, 1, C});
    for (int l = 0; l < bert->cfg.layers; l++) {
        const vlp_bert_layer *L = &bert->layer[l];
        const vlp_bert_attention *a = &L->attention;
        cache_put(d->self_k[l], vlp_op_linear(t, x, a->key_w, a->key_b), N, T, C, pos);
        cache_put(d->self_v[l], vlp_op_linear(t, x, a->value_w, a->value_b), N, T, C, pos);
        vlp_tensor *k = vlp_tape_wrap(t, d->self_k[l], 3, (int[]){N, T, C});
        vlp_tensor *v = vlp_tape_wrap(t, d->self_v[l], 3, (int[]){N, T, C});
        x = attend(a, t, x, k, v, heads, d->mask); /* causal: later positions are unfilled */
        k = vlp_tape_wrap(t, d->cross_k[l], 3, (int[]){d->B, d->Ti, C});
        v = vlp_tape_wrap(t, d->cross_v[l], 3, (int[]){d->B, d->Ti, C});
        x = vlp_op_reshape(t, x, 3, (int[]){d->B, d->R, C});
        x = attend(&L->crossattention, t, x, k, v, heads, NULL);
        x = vlp_op_reshape(t, x, 3, (int[]){N, 1, C});
        vlp_tensor *h = vlp_op_linear_activation(t, x, L->intermediate_w, L->intermediate_b,
                                                 VLP_ACTIVATION_GELU);
        h = vlp_op_linear_residual(t, h, L->output_w, L->output_b, x);
        x = vlp_ln_forward(&L->output_ln, t, h);
    }
    x = vlp_op_reshape(t, x, 2, (int[]){N, C});
    vlp_tensor *logits = vlp_bert_lm_head_forward(&m->lm_head, t, x, bert->word_embeddings);
    memcpy(d->logits, logits->data, (size_t)logits->n * sizeof(float));
    vlp_tape_no_grad_end(t);
    d->pos++;
    return d->logits;
}

/* rows r of cache (N, T, C) <- rows src[r], over the first len positions. */
static void gather_rows(float *cache, float *scratch, const int *src, int N, int T, int len,
                        int C) {
    size_t row = (size_t)T * C, bytes = (size_t)len * C * sizeof(float);
    for (int r = 0; r < N; r++) memcpy(scratch + r * row, cache + src[r] * row, bytes);
    for (int r = 0; r < N; r++) memcpy(cache + r * row, scratch + r * row, bytes);
}

void vlp_blip_decoder_reorder(vlp_blip_decoder *d, const int *src) {
    int N = d->N, C = d->m->cfg.text_width;
    for (int r = 0; r < N; r++)
        VLP_ASSERT(src[r] >= 0 && src[r] < N && src[r] / d->R == r / d->R,
                   "decoder reorder: row %d from %d, not a row of its image", r, src[r]);
    for (int l = 0; l < d->m->cfg.text_layers; l++) {
        gather_rows(d->self_k[l], d->scratch, src, N, d->T, d->pos, C);
        gather_rows(d->self_v[l], d->scratch, src, N, d->T, d->pos, C);
    }
}

/* ---- logits processing ---------------------------------------------------------- */

vlp_blip_decode_options vlp_blip_decode_defaults(vlp_blip_decode_method method, int end_token_id) {
    vlp_blip_decode_options o = {.method = method, .max_length = 20, .min_length = 5,
                                 .end_token_id = end_token_id, .num_beams = 3,
                                 .length_penalty = 1.0f, .top_p = 0.9f, .temperature = 1.0f,
                                 .top_k = 0, .repetition_penalty = 1.0f};
    if (method == VLP_BLIP_DECODE_NUCLEUS) o.repetition_penalty = 1.1f, o.top_k = 50;
    return o;
}

void vlp_blip_repetition_penalty(float *scores, int V, const int *prev, int n, float penalty) {
    if (penalty == 1.0f) return;
    for (int i = 0; i < n; i++) {
        int id = prev[i];
        VLP_ASSERT(id >= 0 && id < V, "repetition penalty: token %d of %d", id, V);
        bool seen = false; /* once per distinct token, as torch's gather/scatter */
        for (int j = 0; j < i && !seen; j++) seen = prev[j] == id;
        if (seen) continue;
        scores[id] = scores[id] < 0 ? scores[id] * penalty : scores[id] / penalty;
    }
}

/* log(sum(exp(x))) of x (V), in double: log_softmax(x) = x - this. */
static double log_sum_exp(const float *x, int V) {
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = fmaxf(mx, x[j]);
    double sum = 0.0;
    for (int j = 0; j < V; j++) sum += exp((double)x[j] - mx);
    return mx + log(sum);
}

/* Token ids by logit, highest first, ties by id (qsort_r's comparison). */
static int by_logit_desc(const void *pa, const void *pb, void *logits) {
    int a = *(const int *)pa, b = *(const int *)pb;
    float la = ((const float *)logits)[a], lb = ((const float *)logits)[b];
    if (la != lb) return la > lb ? -1 : 1;
    return (a > b) - (a < b);
}

int vlp_blip_nucleus(const float *logits, int V, const vlp_blip_decode_options *o, int *tokens,
                     float *probs) {
    /* Temperature keeps the order: sort the logits, scale in the weights. */
    for (int j = 0; j < V; j++) tokens[j] = j;
    qsort_r(tokens, (size_t)V, sizeof *tokens, by_logit_desc, (void *)logits);
    double top = logits[tokens[0]] / o->temperature;
#define WEIGHT(j) exp((double)logits[tokens[j]] / o->temperature - top)
    /* top-k keeps ties with the k-th value, as torch's "scores < kth" test. */
    int k = V;
    if (o->top_k > 0 && o->top_k < V) {
        k = o->top_k;
        while (k < V && logits[tokens[k]] == logits[tokens[k - 1]]) k++;
    }
    double total = 0.0;
    for (int j = 0; j < k; j++) total += WEIGHT(j);
    /* The smallest prefix whose mass reaches top_p. */
    double kept = 0.0;
    int n = 0;
    while (n < k && (n == 0 || kept < o->top_p * total)) kept += WEIGHT(n), n++;
    for (int j = 0; j < n; j++) probs[j] = (float)(WEIGHT(j) / kept);
#undef WEIGHT
    return n;
}

/* ---- strategies ----------------------------------------------------------------- */

/* The state every strategy shares: the sequences so far (N, T) and the decoder. */
typedef struct run {
    const vlp_blip_decode_options *o;
    vlp_blip_decoder *dec;
    int N, T, V, start; /* rows, max_length, vocabulary, [DEC] + prompt length */
    int *seq;           /* (N, T) */
    int *feed;          /* (N) */
    float *work;        /* (V) one row of scores being processed */
} run;

/* Feeds column pos of every row -> logits (N, V). */
static const float *feed_column(run *s, int pos) {
    for (int r = 0; r < s->N; r++) s->feed[r] = s->seq[(size_t)r * s->T + pos];
    return vlp_blip_decoder_step(s->dec, s->feed);
}

/* The penalties generate() applies to a row of scores at length cur_len. */
static void process_scores(const run *s, float *scores, int row, int cur_len) {
    vlp_blip_repetition_penalty(scores, s->V, s->seq + (size_t)row * s->T, cur_len,
                                s->o->repetition_penalty);
    if (cur_len < s->o->min_length) scores[s->o->end_token_id] = -INFINITY;
}

static int draw(const int *tokens, const float *probs, int n, vlp_rng *rng) {
    float u = vlp_rng_uniform(rng), acc = 0.0f;
    int last = tokens[0];
    for (int j = 0; j < n; j++) {
        if (probs[j] > 0.0f) last = tokens[j];
        acc += probs[j];
        if (u < acc) return tokens[j];
    }
    return last; /* u above the rounded total */
}

/* Greedy and nucleus: one row per image, each stops at its end token. */
static void generate_rows(run *s, vlp_rng *rng, int *ids, int *lengths, float *scores) {
    const vlp_blip_decode_options *o = s->o;
    int N = s->N, T = s->T, V = s->V;
    bool nucleus = o->method == VLP_BLIP_DECODE_NUCLEUS;
    int *tokens = nucleus ? vlp_malloc((size_t)V * sizeof *tokens) : NULL;
    float *probs = nucleus ? vlp_malloc((size_t)V * sizeof *probs) : NULL;
    bool *done = vlp_calloc((size_t)N, sizeof *done);
    int n_done = 0;
    for (int r = 0; r < N; r++) lengths[r] = 0, scores[r] = 0.0f;
    for (int cur = s->start; cur < T && n_done < N; cur++) {
        const float *logits = feed_column(s, cur - 1);
        for (int r = 0; r < N; r++) {
            int *row = s->seq + (size_t)r * T;
            if (done[r]) {
                row[cur] = o->end_token_id; /* fed, never read */
                continue;
            }
            memcpy(s->work, logits + (size_t)r * V, (size_t)V * sizeof(float));
            process_scores(s, s->work, r, cur);
            int tok = 0;
            if (nucleus) {
                int n = vlp_blip_nucleus(s->work, V, o, tokens, probs);
                tok = draw(tokens, probs, n, rng);
            } else {
                for (int j = 1; j < V; j++) tok = s->work[j] > s->work[tok] ? j : tok;
            }
            const float *x = logits + (size_t)r * V;
            scores[r] += (float)(x[tok] - log_sum_exp(x, V));
            row[cur] = tok;
            if (tok == o->end_token_id) {
                done[r] = true, n_done++;
            } else {
                ids[(size_t)r * T + lengths[r]++] = tok;
            }
        }
    }
    free(tokens), free(probs), free(done);
}

/* One image's finished hypotheses, generate()'s BeamHypotheses: at most K,
 * in insertion order, scored sum_logprobs / length^length_penalty. */
typedef struct hyps {
    int count;
    double worst;
    double score[VLP_BLIP_MAX_BEAMS + 1];
    int length[VLP_BLIP_MAX_BEAMS + 1];
    int *tokens; /* (K + 1, T) */
} hyps;

static void hyps_add(hyps *h, int K, int T, const int *tokens, int length, double sum_logprobs,
                     float length_penalty) {
    double score = sum_logprobs / pow((double)length, length_penalty);
    if (h->count == K && !(score > h->worst)) return;
    h->score[h->count] = score;
    h->length[h->count] = length;
    memcpy(h->tokens + (size_t)h->count * T, tokens, (size_t)length * sizeof *tokens);
    h->count++;
    if (h->count <= K) {
        h->worst = h->count == 1 ? score : fmin(score, h->worst);
        return;
    }
    /* Drop the worst (the first of equals), as sorted((score, index))[0]. */
    int w = 0;
    for (int i = 1; i < h->count; i++) w = h->score[i] < h->score[w] ? i : w;
    for (int i = w; i + 1 < h->count; i++) {
        h->score[i] = h->score[i + 1];
        h->length[i] = h->length[i + 1];
        memcpy(h->tokens + (size_t)i * T, h->tokens + (size_t)(i + 1) * T, (size_t)T * sizeof(int));
    }
    h->count--;
    h->worst = h->score[0];
    for (int i = 1; i < h->count; i++) h->worst = fmin(h->worst, h->score[i]);
}

static bool hyps_done(const hyps *h, int K, double best_sum_logprobs, int cur_len,
                      float length_penalty) {
    return h->count >= K && h->worst >= best_sum_logprobs / pow((double)cur_len, length_penalty);
}

typedef struct candidate {
    double score;
    int token, beam; /* beam: row within the image's K */
} candidate;

/* Inserts c into the best-first list top (n of at most cap); ties keep the
 * earlier (lower flat index), as the scan order. */
static void top_insert(candidate *top, int *n, int cap, candidate c) {
    int i = *n < cap ? (*n)++ : cap;
    if (i == cap && !(c.score > top[cap - 1].score)) return;
    if (i == cap) i = cap - 1;
    while (i > 0 && c.score > top[i - 1].score) top[i] = top[i - 1], i--;
    top[i] = c;
}

static void generate_beams(run *s, int B, int *ids, int *lengths, float *scores) {
    const vlp_blip_decode_options *o = s->o;
    int K = o->num_beams, N = s->N, T = s->T, V = s->V, eos = o->end_token_id;
    float lp = o->length_penalty;
    double *beam_score = vlp_malloc((size_t)N * sizeof *beam_score);
    double *next_score = vlp_malloc((size_t)N * sizeof *next_score);
    int *next_token = vlp_malloc((size_t)N * sizeof *next_token);
    int *src = vlp_malloc((size_t)N * sizeof *src);
    int *seq2 = vlp_malloc((size_t)N * T * sizeof *seq2);
    hyps *h = vlp_calloc((size_t)B, sizeof *h);
    int *hyp_tokens = vlp_malloc((size_t)B * (K + 1) * T * sizeof *hyp_tokens);
    bool *done = vlp_calloc((size_t)B, sizeof *done);
    candidate *top = vlp_malloc((size_t)2 * K * sizeof *top);
    for (int b = 0; b < B; b++) h[b].tokens = hyp_tokens + (size_t)b * (K + 1) * T;
    /* Only the first beam of each image starts live: the others are copies. */
    for (int r = 0; r < N; r++) beam_score[r] = r % K == 0 ? 0.0 : -1e9;
    int cur = s->start, n_done = 0;
    for (; cur < T && n_done < B; cur++) {
        const float *logits = feed_column(s, cur - 1);
        for (int b = 0; b < B; b++) {
            int *nt = next_token + b * K, *ns = src + b * K;
            double *nsc = next_score + b * K;
            if (done[b]) { /* padding, never read */
                for (int j = 0; j < K; j++) nt[j] = eos, ns[j] = b * K + j, nsc[j] = 0.0;
                continue;
            }
            int n_top = 0;
            for (int j = 0; j < K; j++) {
                int r = b * K + j;
                const float *x = logits + (size_t)r * V;
                double lse = log_sum_exp(x, V);
                for (int v = 0; v < V; v++) s->work[v] = (float)(x[v] - lse);
                process_scores(s, s->work, r, cur);
                for (int v = 0; v < V; v++)
                    top_insert(top, &n_top, 2 * K, (candidate){s->work[v] + beam_score[r], v, j});
            }
            /* BeamSearchScorer.process: an end token among the first K ends
             * a hypothesis; the first K others continue. */
            int live = 0;
            for (int i = 0; i < n_top && live < K; i++) {
                int r = b * K + top[i].beam;
                if (top[i].token == eos) {
                    if (i < K) hyps_add(&h[b], K, T, s->seq + (size_t)r * T, cur, top[i].score, lp);
                    continue;
                }
                nt[live] = top[i].token, ns[live] = r, nsc[live] = top[i].score, live++;
            }
            VLP_ASSERT(live == K, "beam search: %d live beams of %d", live, K);
            if (hyps_done(&h[b], K, top[0].score, cur, lp)) done[b] = true, n_done++;
        }
        for (int r = 0; r < N; r++) {
            memcpy(seq2 + (size_t)r * T, s->seq + (size_t)src[r] * T, (size_t)cur * sizeof(int));
            seq2[(size_t)r * T + cur] = next_token[r];
            beam_score[r] = next_score[r];
        }
        memcpy(s->seq, seq2, (size_t)N * T * sizeof(int));
        vlp_blip_decoder_reorder(s->dec, src);
    }
    /* finalize: the live beams of unfinished images compete at full length. */
    for (int b = 0; b < B; b++) {
        if (!done[b])
            for (int j = 0; j < K; j++)
                hyps_add(&h[b], K, T, s->seq + (size_t)(b * K + j) * T, cur,
                         beam_score[b * K + j], lp);
        int best = 0; /* the last of equals, as sorted(...).pop() */
        for (int i = 1; i < h[b].count; i++) best = h[b].score[i] >= h[b].score[best] ? i : best;
        lengths[b] = h[b].length[best] - s->start;
        memcpy(ids + (size_t)b * T, h[b].tokens + (size_t)best * T + s->start,
               (size_t)lengths[b] * sizeof(int));
        scores[b] = (float)h[b].score[best];
    }
    free(beam_score), free(next_score), free(next_token), free(src), free(seq2);
    free(h), free(hyp_tokens), free(done), free(top);
}

int vlp_blip_generate(const vlp_blip *m, const vlp_tensor *image_embeds, const int *prompt,
                      int n_prompt, const vlp_blip_decode_options *o, vlp_rng *rng, int *ids,
                      int *lengths, float *scores) {
    const vlp_blip_config *cfg = &m->cfg;
    int B = image_embeds->shape[0], V = cfg->vocab_size, T = o->max_length;
    int start = 1 + n_prompt;
    bool beam = o->method == VLP_BLIP_DECODE_BEAM;
    if (n_prompt < 0 || start >= T || T > cfg->context_length)
        return vlp_error_set(VLP_EINVAL, "generate: max_length %d must exceed [DEC] + the prompt's "
                                         "%d tokens and fit the context of %d", T, n_prompt,
                             cfg->context_length);
    if (o->end_token_id < 0 || o->end_token_id >= V)
        return vlp_error_set(VLP_EINVAL, "generate: end token %d outside the vocabulary of %d",
                             o->end_token_id, V);
    if (beam && (o->num_beams < 1 || o->num_beams > VLP_BLIP_MAX_BEAMS || o->num_beams > V / 2))
        return vlp_error_set(VLP_EINVAL, "generate: %d beams outside [1, %d]", o->num_beams,
                             VLP_BLIP_MAX_BEAMS < V / 2 ? VLP_BLIP_MAX_BEAMS : V / 2);
    if (!(o->repetition_penalty > 0.0f))
        return vlp_error_set(VLP_EINVAL, "generate: repetition penalty %g is not positive",
                             o->repetition_penalty);
    if (o->method == VLP_BLIP_DECODE_NUCLEUS &&
        (!(o->top_p > 0.0f && o->top_p <= 1.0f) || !(o->temperature > 0.0f) || o->top_k < 0 || !rng))
        return vlp_error_set(VLP_EINVAL, "generate: nucleus sampling needs top_p in (0, 1] (%g), "
                                         "temperature > 0 (%g), top_k >= 0 (%d) and a generator",
                             o->top_p, o->temperature, o->top_k);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return vlp_error_set(VLP_EINVAL, "generate: prompt token %d outside the vocabulary "
                                             "of %d", prompt[i], V);
    int K = beam ? o->num_beams : 1;
    run s = {.o = o, .N = B * K, .T = T, .V = V, .start = start};
    int rc = vlp_blip_decoder_init(&s.dec, m, image_embeds, K, T);
    if (rc != VLP_OK) return rc;
    s.seq = vlp_malloc((size_t)s.N * T * sizeof *s.seq);
    s.feed = vlp_malloc((size_t)s.N * sizeof *s.feed);
    s.work = vlp_malloc((size_t)V * sizeof *s.work);
    float *own_scores = scores ? NULL : vlp_malloc((size_t)B * sizeof *own_scores);
    for (int r = 0; r < s.N; r++) {
        int *row = s.seq + (size_t)r * T;
        row[0] = cfg->dec_token_id;
        memcpy(row + 1, prompt, (size_t)n_prompt * sizeof *prompt);
    }
    for (int pos = 0; pos + 1 < start; pos++) feed_column(&s, pos); /* the prompt's cache */
    if (beam)
        generate_beams(&s, B, ids, lengths, scores ? scores : own_scores);
    else
        generate_rows(&s, rng, ids, lengths, scores ? scores : own_scores);
    free(s.seq), free(s.feed), free(s.work), free(own_scores);
    vlp_blip_decoder_free(s.dec);
    return VLP_OK;
}
