/* BLIP model and losses (see blip.h). */
#include "models/blip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "models/clip.h"

#define LM_LABEL_SMOOTHING 0.1f /* BLIP's BertLMHeadModel */
#define IGNORE -100             /* torch's ignore_index */

/* torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void linear_default(vlp_tensor *w, vlp_tensor *b, vlp_rng *rng) {
    float bound = 1.0f / sqrtf((float)w->shape[1]);
    vlp_rng_fill_uniform(rng, w->data, w->n, -bound, bound);
    vlp_rng_fill_uniform(rng, b->data, b->n, -bound, bound);
}

static vlp_vit_config vit_config(const vlp_blip_config *cfg) {
    return (vlp_vit_config){.image_size = cfg->image_size, .patch_size = cfg->patch_size,
                            .width = cfg->vision_width, .layers = cfg->vision_layers,
                            .heads = cfg->vision_heads,
                            .mlp_width = (int)(cfg->mlp_ratio * cfg->vision_width),
                            .output_dim = 0, .act = VLP_ACTIVATION_GELU, .no_ln_pre = true};
}

static vlp_bert_config bert_config(const vlp_blip_config *cfg) {
    return (vlp_bert_config){.vocab_size = cfg->vocab_size, .context_length = cfg->context_length,
                             .width = cfg->text_width, .layers = cfg->text_layers,
                             .heads = cfg->text_heads,
                             .mlp_width = (int)(cfg->mlp_ratio * cfg->text_width),
                             .encoder_width = cfg->vision_width};
}

/* The towers under "visual_encoder<suffix>.*", "text_encoder<suffix>.*",
 * "vision_proj<suffix>.*", "text_proj<suffix>.*". */
static void towers_register(vlp_blip_towers *tw, vlp_params *p, const vlp_blip_config *cfg,
                            const char *suffix) {
    int D = cfg->embed_dim;
    char name[VLP_PARAM_NAME_MAX];
#define NAME(base) (snprintf(name, sizeof name, base "%s", suffix), name)
#define LINEAR(w, b, base, in)                                                          \
    (snprintf(name, sizeof name, base "%s.weight", suffix),                             \
     w = vlp_params_add(p, name, 2, (int[]){D, in}),                                    \
     snprintf(name, sizeof name, base "%s.bias", suffix),                               \
     b = vlp_params_add(p, name, 1, (int[]){D}))
    vlp_vit_config vc = vit_config(cfg);
    vlp_bert_config bc = bert_config(cfg);
    vlp_vit_register(&tw->visual_encoder, p, NAME("visual_encoder"), &vc);
    vlp_bert_register(&tw->text_encoder, p, NAME("text_encoder"), &bc);
    LINEAR(tw->vision_proj_w, tw->vision_proj_b, "vision_proj", cfg->vision_width);
    LINEAR(tw->text_proj_w, tw->text_proj_b, "text_proj", cfg->text_width);
#undef LINEAR
#undef NAME
}

int vlp_blip_init(vlp_blip *m, const vlp_blip_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    vlp_params *p = &m->params;
    vlp_params_init(p);
    int C = cfg->text_width;
    towers_register(&m->towers, p, cfg, "");
    vlp_bert_register_tied(&m->text_decoder, &m->towers.text_encoder, p, "text_decoder.bert");
    vlp_bert_lm_head_register(&m->lm_head, p, "text_decoder.cls.predictions", C, cfg->vocab_size);
    m->itm_head_w = vlp_params_add(p, "itm_head.weight", 2, (int[]){2, C});
    m->itm_head_b = vlp_params_add(p, "itm_head.bias", 1, (int[]){2});
    m->temp = vlp_params_add(p, "temp", 1, (int[]){1});
    int rc = vlp_params_alloc(p);
    if (rc != VLP_OK) {
        vlp_blip_free(m);
        return rc;
    }
    vlp_rng root, init;
    vlp_rng_init(&root, seed);
    init = vlp_rng_split(&root, VLP_RNG_STREAM_INIT);
    vlp_rng vis = vlp_rng_split(&init, 1), txt = vlp_rng_split(&init, 2);
    vlp_rng heads = vlp_rng_split(&init, 3);
    vlp_vit_init(&m->towers.visual_encoder, &vis);
    vlp_bert_init(&m->towers.text_encoder, &txt, false);
    vlp_bert_init(&m->text_decoder, &txt, true);
    vlp_bert_lm_head_init(&m->lm_head, &txt);
    linear_default(m->towers.vision_proj_w, m->towers.vision_proj_b, &heads);
    linear_default(m->towers.text_proj_w, m->towers.text_proj_b, &heads);
    linear_default(m->itm_head_w, m->itm_head_b, &heads);
    m->temp->data[0] = 0.07f;
    return VLP_OK;
}

void vlp_blip_free(vlp_blip *m) { vlp_params_free(&m->params); }

static vlp_tensor *towers_image_tokens(const vlp_blip_towers *tw, vlp_tape *t, vlp_tensor *images) {
    vlp_tensor *x = vlp_vit_tokens(&tw->visual_encoder, t, images);
    return vlp_ln_forward(&tw->visual_encoder.ln_post, t, x);
}

vlp_tensor *vlp_blip_encode_image(const vlp_blip *m, vlp_tape *t, vlp_tensor *images) {
    return towers_image_tokens(&m->towers, t, images);
}

/* x (B, T, C) -> its first token (B, C). */
static vlp_tensor *first_token(vlp_tape *t, vlp_tensor *x) {
    int B = x->shape[0], C = x->shape[2];
    return vlp_op_reshape(t, vlp_op_slice(t, x, 1, 0, 1), 2, (int[]){B, C});
}

/* L2-normalised w x[:, 0] + b for tokens x (B, T, C). */
static vlp_tensor *project_first_token(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *b) {
    return vlp_op_l2_normalize(t, vlp_op_linear(t, first_token(t, x), w, b));
}

static vlp_tensor *towers_text_features(const vlp_blip_towers *tw, vlp_tape *t, const int *ids,
                                        const int *lengths, int B) {
    vlp_tensor *x = vlp_bert_forward(&tw->text_encoder, t, ids, lengths, B, NULL, false);
    return project_first_token(t, x, tw->text_proj_w, tw->text_proj_b);
}

vlp_tensor *vlp_blip_image_features(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds) {
    return project_first_token(t, image_embeds, m->towers.vision_proj_w, m->towers.vision_proj_b);
}

vlp_tensor *vlp_blip_text_features(const vlp_blip *m, vlp_tape *t, const int *ids,
                                   const int *lengths, int B) {
    return towers_text_features(&m->towers, t, ids, lengths, B);
}

vlp_tensor *vlp_blip_itc_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *img, vlp_tensor *txt,
                              vlp_tensor *img_all, vlp_tensor *txt_all, int offset,
                              const int *image_ids) {
    vlp_tensor *scale = vlp_op_reciprocal(t, m->temp);
    return vlp_clip_loss_scaled(t, img, txt, img_all, txt_all, scale, offset, image_ids, NULL);
}

/* Draws a column of row (C) with weights softmax(row) over the allowed
 * columns (the softmax is taken over all of them, as BLIP's, then the
 * others zeroed); with probability uniform, every allowed column alike.
 * Returns -1 when no column is allowed. */
static int draw(const float *row, const bool *allowed, int C, float uniform, vlp_rng *rng) {
    if (uniform > 0.0f && vlp_rng_uniform(rng) < uniform) {
        int n = 0;
        for (int j = 0; j < C; j++) n += allowed[j];
        if (n == 0) return -1;
        int k = (int)(vlp_rng_uniform(rng) * n);
        for (int j = 0; j < C; j++)
            if (allowed[j] && k-- == 0) return j;
        for (int j = C - 1; j >= 0; j--) /* k == n after rounding */
            if (allowed[j]) return j;
    }
    float mx = -INFINITY;
    int best = -1;
    for (int j = 0; j < C; j++) {
        mx = fmaxf(mx, row[j]);
        if (allowed[j] && (best < 0 || row[j] > row[best])) best = j;
    }
    if (best < 0) return -1;
    double total = 0.0;
    for (int j = 0; j < C; j++) total += allowed[j] ? exp((double)row[j] - mx) : 0.0;
    if (!(total > 0.0)) return best; /* every allowed weight underflowed */
    double u = vlp_rng_uniform(rng) * total, acc = 0.0;
    int last = best;
    for (int j = 0; j < C; j++) {
        if (!allowed[j]) continue;
        double w = exp((double)row[j] - mx);
        if (w > 0.0) last = j;
        acc += w;
        if (u < acc) return j;
    }
    return last; /* u at the very top of the range, after rounding */
}

int vlp_blip_itm_sample_negatives(const vlp_blip *m, vlp_tape *t, vlp_tensor *img,
                                  vlp_tensor *txt, const int *image_ids, float uniform,
                                  vlp_rng *rng, int *neg_image, int *neg_text) {
    int B = img->shape[0];
    VLP_ASSERT(vlp_tensor_same_shape(img, txt), "itm negatives: img and txt differ in shape");
    vlp_tape_no_grad_begin(t);
    vlp_tensor *scale = vlp_op_reciprocal(t, m->temp);
    vlp_tensor *sim_i2t = vlp_op_scale(t, vlp_op_matmul(t, img, txt, false, true), scale);
    vlp_tensor *sim_t2i = vlp_op_transpose(t, sim_i2t);
    vlp_tape_no_grad_end(t);
    bool *allowed = vlp_tape_alloc(t, (size_t)B * sizeof *allowed);
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < B; j++)
            allowed[j] = j != b && (!image_ids || image_ids[j] != image_ids[b]);
        neg_image[b] = draw(sim_t2i->data + (long)b * B, allowed, B, uniform, rng);
        neg_text[b] = draw(sim_i2t->data + (long)b * B, allowed, B, uniform, rng);
        if (neg_image[b] < 0)
            return vlp_error_set(VLP_EINVAL, "ITM: pair %d of a batch of %d has no negative "
                                             "(every pair shares its image)", b, B);
    }
    return VLP_OK;
}

vlp_tensor *vlp_blip_itm_logits(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                                const int *ids, const int *lengths) {
    int B = image_embeds->shape[0], T = m->cfg.context_length;
    int *enc_ids = vlp_tape_alloc(t, (size_t)B * T * sizeof *enc_ids);
    memcpy(enc_ids, ids, (size_t)B * T * sizeof *enc_ids);
    for (int b = 0; b < B; b++) enc_ids[(long)b * T] = m->cfg.enc_token_id;
    vlp_tensor *x = vlp_bert_forward(&m->towers.text_encoder, t, enc_ids, lengths, B, image_embeds,
                                     false);
    return vlp_op_linear(t, first_token(t, x), m->itm_head_w, m->itm_head_b);
}

vlp_tensor *vlp_blip_itm_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                              const int *ids, const int *lengths, const int *neg_image,
                              const int *neg_text, vlp_tensor **logits) {
    int B = image_embeds->shape[0], Ti = image_embeds->shape[1], Cv = image_embeds->shape[2];
    int T = m->cfg.context_length;
    /* Rows: (text b, image b), (text b, image neg_image[b]), (text neg_text[b], image b). */
    int *text_rows = vlp_tape_alloc(t, (size_t)3 * B * sizeof *text_rows);
    int *image_rows = vlp_tape_alloc(t, (size_t)3 * B * sizeof *image_rows);
    for (int b = 0; b < B; b++) {
        VLP_ASSERT(neg_image[b] >= 0 && neg_image[b] < B && neg_text[b] >= 0 && neg_text[b] < B,
                   "ITM: negative (%d, %d) of pair %d outside the batch of %d", neg_image[b],
                   neg_text[b], b, B);
        text_rows[b] = b, image_rows[b] = b;
        text_rows[B + b] = b, image_rows[B + b] = neg_image[b];
        text_rows[2 * B + b] = neg_text[b], image_rows[2 * B + b] = b;
    }
    int *text_ids = vlp_tape_alloc(t, (size_t)3 * B * T * sizeof *text_ids);
    int *text_lengths = vlp_tape_alloc(t, (size_t)3 * B * sizeof *text_lengths);
    for (int r = 0; r < 3 * B; r++) {
        memcpy(text_ids + (long)r * T, ids + (long)text_rows[r] * T, (size_t)T * sizeof *ids);
        text_lengths[r] = lengths[text_rows[r]];
    }
    /* The gathered image tokens carry their gradient back to image_embeds. */
    vlp_tensor *flat = vlp_op_reshape(t, image_embeds, 2, (int[]){B, Ti * Cv});
    vlp_tensor *images = vlp_op_reshape(t, vlp_op_embedding(t, flat, image_rows, 3 * B), 3,
                                        (int[]){3 * B, Ti, Cv});
    vlp_tensor *out = vlp_blip_itm_logits(m, t, images, text_ids, text_lengths);
    if (logits) *logits = out;
    int *labels = vlp_tape_alloc(t, (size_t)3 * B * sizeof *labels);
    for (int r = 0; r < 3 * B; r++) labels[r] = r < B;
    return vlp_op_cross_entropy(t, out, labels, IGNORE, 0.0f);
}

vlp_tensor *vlp_blip_lm_loss(const vlp_blip *m, vlp_tape *t, vlp_tensor *image_embeds,
                             const int *ids, const int *lengths, int prompt_length) {
    int B = image_embeds->shape[0], T = m->cfg.context_length, V = m->cfg.vocab_size;
    VLP_ASSERT(T >= 2, "LM: context length %d", T);
    int *dec_ids = vlp_tape_alloc(t, (size_t)B * T * sizeof *dec_ids);
    memcpy(dec_ids, ids, (size_t)B * T * sizeof *dec_ids);
    for (int b = 0; b < B; b++) dec_ids[b * T] = m->cfg.dec_token_id;
    vlp_tensor *x = vlp_bert_forward(&m->text_decoder, t, dec_ids, lengths, B, image_embeds, true);
    /* Position i predicts token i + 1: the last position predicts nothing. */
    x = vlp_op_slice(t, x, 1, 0, T - 1);
    vlp_tensor *logits =
        vlp_bert_lm_head_forward(&m->lm_head, t, x, m->towers.text_encoder.word_embeddings);
    logits = vlp_op_reshape(t, logits, 2, (int[]){B * (T - 1), V});
    int *labels = vlp_tape_alloc(t, (size_t)B * (T - 1) * sizeof *labels);
    for (int b = 0; b < B; b++)
        for (int i = 1; i < T; i++) {
            bool scored = i >= prompt_length && i < lengths[b];
            labels[b * (T - 1) + i - 1] = scored ? ids[b * T + i] : IGNORE;
        }
    return vlp_op_cross_entropy(t, logits, labels, IGNORE, LM_LABEL_SMOOTHING);
}

void vlp_blip_clamp_temp(vlp_blip *m) {
    float *s = m->temp->data;
    s[0] = fminf(fmaxf(s[0], 0.001f), 0.5f);
}

/* ---- momentum distillation ------------------------------------------------------ */

/* "visual_encoder_m.x" -> "visual_encoder.x": the model's tensor a momentum
 * tensor follows. */
static void followed_name(const char *name, char *out, size_t size) {
    const char *dot = strchr(name, '.');
    int stem = dot ? (int)(dot - name) : (int)strlen(name);
    VLP_ASSERT(stem > 2 && strncmp(name + stem - 2, "_m", 2) == 0, "momentum tensor %s", name);
    snprintf(out, size, "%.*s%s", stem - 2, name, dot ? dot : "");
}

static void normalize_rows(float *x, long rows, int D) {
    for (long r = 0; r < rows; r++) {
        double n2 = 0.0;
        for (int d = 0; d < D; d++) n2 += (double)x[r * D + d] * x[r * D + d];
        float inv = (float)(1.0 / fmax(sqrt(n2), 1e-12));
        for (int d = 0; d < D; d++) x[r * D + d] *= inv;
    }
}

int vlp_blip_momentum_init(vlp_blip_momentum *mm, const vlp_blip *m, int queue_size,
                           uint64_t seed) {
    VLP_ASSERT(queue_size > 0, "momentum queue of %d", queue_size);
    memset(mm, 0, sizeof *mm);
    vlp_params *p = &mm->params;
    vlp_params_init(p);
    int D = m->cfg.embed_dim;
    towers_register(&mm->towers, p, &m->cfg, "_m");
    mm->image_queue = vlp_params_add(p, "image_queue", 2, (int[]){queue_size, D});
    mm->text_queue = vlp_params_add(p, "text_queue", 2, (int[]){queue_size, D});
    int rc = vlp_params_alloc(p);
    if (rc != VLP_OK) goto fail;
    vlp_params_set_trainable(p, "", false);
    mm->source = vlp_calloc((size_t)p->count, sizeof *mm->source);
    mm->idx_queue = vlp_malloc((size_t)queue_size * sizeof *mm->idx_queue);
    for (int i = 0; i < p->count; i++) {
        const vlp_param *e = &p->table[i];
        if (e->t == mm->image_queue || e->t == mm->text_queue) continue;
        char name[VLP_PARAM_NAME_MAX];
        followed_name(e->name, name, sizeof name);
        const vlp_param *src = vlp_params_find(&m->params, name);
        VLP_ASSERT(src && vlp_tensor_same_shape(src->t, e->t), "momentum tensor %s follows no %s",
                   e->name, name);
        mm->source[i] = src->t;
    }
    vlp_blip_momentum_update(mm, 0.0f); /* a copy */
    vlp_rng root, rng;
    vlp_rng_init(&root, seed);
    rng = vlp_rng_split(&root, VLP_RNG_STREAM_INIT);
    vlp_rng_fill_normal(&rng, mm->image_queue->data, mm->image_queue->n, 0.0f, 1.0f);
    vlp_rng_fill_normal(&rng, mm->text_queue->data, mm->text_queue->n, 0.0f, 1.0f);
    normalize_rows(mm->image_queue->data, queue_size, D);
    normalize_rows(mm->text_queue->data, queue_size, D);
    for (int i = 0; i < queue_size; i++) mm->idx_queue[i] = IGNORE;
    mm->queue_size = queue_size;
    return VLP_OK;
fail:
    vlp_blip_momentum_free(mm);
    return rc;
}

void vlp_blip_momentum_free(vlp_blip_momentum *mm) {
    vlp_params_free(&mm->params);
    free(mm->source);
    free(mm->idx_queue);
    mm->source = NULL;
    mm->idx_queue = NULL;
}

void vlp_blip_momentum_update(vlp_blip_momentum *mm, float momentum) {
    for (int i = 0; i < mm->params.count; i++) {
        const vlp_tensor *src = mm->source[i];
        if (!src) continue;
        float *d = mm->params.table[i].t->data;
        for (long k = 0; k < src->n; k++) d[k] = d[k] * momentum + src->data[k] * (1.0f - momentum);
    }
}

void vlp_blip_momentum_features(const vlp_blip_momentum *mm, vlp_tape *t, vlp_tensor *images,
                                const int *ids, const int *lengths, vlp_tensor **img_m,
                                vlp_tensor **txt_m) {
    const vlp_blip_towers *tw = &mm->towers;
    vlp_tape_no_grad_begin(t);
    vlp_tensor *x = towers_image_tokens(tw, t, images);
    *img_m = project_first_token(t, x, tw->vision_proj_w, tw->vision_proj_b);
    *txt_m = towers_text_features(tw, t, ids, lengths, images->shape[0]);
    vlp_tape_no_grad_end(t);
}

/* [rows (B, D); queue (Q, D)] -> (B + Q, D), without gradient. */
static vlp_tensor *with_queue(vlp_tape *t, const vlp_tensor *rows, const vlp_tensor *queue) {
    int N = rows->shape[0] + queue->shape[0];
    vlp_tensor *out = vlp_tape_tensor(t, 2, (int[]){N, rows->shape[1]});
    memcpy(out->data, rows->data, (size_t)rows->n * sizeof(float));
    memcpy(out->data + rows->n, queue->data, (size_t)queue->n * sizeof(float));
    return out;
}

/* alpha probs + (1 - alpha) q over probs (B, N): q spreads row i over the
 * columns whose id (ids_all, N) is its own (image_ids, B), or is the
 * one-hot diagonal without ids. */
static vlp_tensor *distilled_targets(vlp_tape *t, const vlp_tensor *probs, const int *ids_all,
                                     const int *image_ids, float alpha) {
    int B = probs->shape[0], N = probs->shape[1];
    vlp_tensor *q = vlp_tape_tensor_like(t, probs);
    for (int i = 0; i < B; i++) {
        int count = 0;
        for (int j = 0; j < N; j++) count += image_ids ? ids_all[j] == image_ids[i] : j == i;
        for (int j = 0; j < N; j++) {
            bool positive = image_ids ? ids_all[j] == image_ids[i] : j == i;
            q->data[(long)i * N + j] = alpha * probs->data[(long)i * N + j] +
                                       (positive ? (1.0f - alpha) / (float)count : 0.0f);
        }
    }
    return q;
}

vlp_tensor *vlp_blip_itc_loss_momentum(const vlp_blip *m, const vlp_blip_momentum *mm, vlp_tape *t,
                                       vlp_tensor *img, vlp_tensor *txt, vlp_tensor *img_m,
                                       vlp_tensor *txt_m, const int *image_ids, float alpha) {
    int B = img->shape[0], Q = mm->queue_size;
    VLP_ASSERT(vlp_tensor_same_shape(img, txt) && vlp_tensor_same_shape(img, img_m) &&
                   vlp_tensor_same_shape(img, txt_m),
               "ITC with momentum: features of different shapes");
    int *ids_all = NULL;
    if (image_ids) {
        ids_all = vlp_tape_alloc(t, (size_t)(B + Q) * sizeof *ids_all);
        memcpy(ids_all, image_ids, (size_t)B * sizeof *ids_all);
        memcpy(ids_all + B, mm->idx_queue, (size_t)Q * sizeof *ids_all);
    }
    vlp_tensor *scale = vlp_op_reciprocal(t, m->temp);
    vlp_tensor *txt_cols = with_queue(t, txt_m, mm->text_queue);
    vlp_tensor *img_cols = with_queue(t, img_m, mm->image_queue);
    vlp_tape_no_grad_begin(t);
    vlp_tensor *sim_i2t_m = vlp_op_scale(t, vlp_op_matmul(t, img_m, txt_cols, false, true), scale);
    vlp_tensor *sim_t2i_m = vlp_op_scale(t, vlp_op_matmul(t, txt_m, img_cols, false, true), scale);
    vlp_tensor *p_i2t = vlp_op_softmax(t, sim_i2t_m), *p_t2i = vlp_op_softmax(t, sim_t2i_m);
    vlp_tape_no_grad_end(t);
    vlp_tensor *q_i2t = distilled_targets(t, p_i2t, ids_all, image_ids, alpha);
    vlp_tensor *q_t2i = distilled_targets(t, p_t2i, ids_all, image_ids, alpha);
    vlp_tensor *li = vlp_op_scale(t, vlp_op_matmul(t, img, txt_cols, false, true), scale);
    vlp_tensor *lt = vlp_op_scale(t, vlp_op_matmul(t, txt, img_cols, false, true), scale);
    vlp_tensor *loss = vlp_op_add(t, vlp_op_cross_entropy_soft(t, li, q_i2t),
                                  vlp_op_cross_entropy_soft(t, lt, q_t2i));
    return vlp_op_mul_const(t, loss, 0.5f);
}

void vlp_blip_momentum_enqueue(vlp_blip_momentum *mm, const float *img_m, const float *txt_m,
                               const int *image_ids, int n) {
    int Q = mm->queue_size, D = mm->image_queue->shape[1];
    VLP_ASSERT(n >= 0 && n <= Q, "enqueue of %d rows into a queue of %d", n, Q);
    for (int r = 0; r < n; r++) {
        int row = (mm->queue_ptr + r) % Q;
        size_t bytes = (size_t)D * sizeof(float);
        memcpy(mm->image_queue->data + (long)row * D, img_m + (long)r * D, bytes);
        memcpy(mm->text_queue->data + (long)row * D, txt_m + (long)r * D, bytes);
        mm->idx_queue[row] = image_ids ? image_ids[r] : IGNORE;
    }
    mm->queue_ptr = (mm->queue_ptr + n) % Q;
}
