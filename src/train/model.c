/* CLIP, BLIP and GroupViT behind the trainer's interface (see model.h). */
#include "train/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

const char *vlp_model_kind_name(int kind) {
    static const char *names[] = {"clip", "blip", "groupvit"};
    return kind >= 0 && kind <= VLP_MODEL_GROUPVIT ? names[kind] : "unknown";
}

void vlp_config_preprocess(const vlp_config *c, vlp_loader_opts *o) {
    o->image_size = c->model.image_size;
    vlp_config_float_list(c->preprocess.mean, o->mean, 3); /* checked when the config was read */
    vlp_config_float_list(c->preprocess.std, o->std, 3);
    o->interpolation = c->preprocess.interpolation;
    o->resize_mode = c->preprocess.resize_mode;
    o->image.alpha = c->preprocess.alpha;
}

vlp_loader_opts vlp_model_eval_loader(const vlp_model *m, int batch, int workers) {
    vlp_loader_opts o = vlp_loader_defaults(batch, m->image_size);
    vlp_config_preprocess(&m->cfg, &o);
    o.workers = workers, o.shuffle = false, o.drop_last = false, o.augment = false;
    return o;
}

vlp_clip_config vlp_config_clip(const vlp_config *c, int vocab_size) {
    return (vlp_clip_config){
        .embed_dim = c->model.embed_dim, .image_size = c->model.image_size,
        .patch_size = c->model.patch_size, .vision_width = c->model.vision_width,
        .vision_layers = c->model.vision_layers, .vision_heads = c->model.vision_heads,
        .vocab_size = vocab_size, .context_length = c->model.context_length,
        .text_width = c->model.text_width, .text_layers = c->model.text_layers,
        .text_heads = c->model.text_heads, .mlp_ratio = c->model.mlp_ratio,
        .act = (vlp_activation)c->model.activation};
}

int vlp_model_init(vlp_model *m, const vlp_config *c, int vocab_size, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->kind = c->model.kind, m->cfg = *c;
    m->embed_dim = c->model.embed_dim, m->image_size = c->model.image_size;
    m->context_length = c->model.context_length;
    m->eot = vocab_size - 1; /* the tokenizer's (vlp_tokenizer_eot) */
    int rc = VLP_OK;
    if (m->kind == VLP_MODEL_CLIP) {
        vlp_clip_config mc = vlp_config_clip(c, vocab_size);
        rc = vlp_clip_init(&m->clip, &mc, seed);
        m->params = &m->clip.params;
    } else if (m->kind == VLP_MODEL_BLIP) {
        vlp_blip_config bc = {
            .embed_dim = c->model.embed_dim, .image_size = c->model.image_size,
            .patch_size = c->model.patch_size, .vision_width = c->model.vision_width,
            .vision_layers = c->model.vision_layers, .vision_heads = c->model.vision_heads,
            .vocab_size = vocab_size + 2, .context_length = c->model.context_length,
            .text_width = c->model.text_width, .text_layers = c->model.text_layers,
            .text_heads = c->model.text_heads, .mlp_ratio = c->model.mlp_ratio,
            .enc_token_id = vocab_size, .dec_token_id = vocab_size + 1};
        rc = vlp_blip_init(&m->blip, &bc, seed);
        m->params = &m->blip.params;
        m->momentum = c->blip.momentum;
        if (!rc && m->momentum) rc = vlp_blip_momentum_init(&m->blip_m, &m->blip, c->blip.queue_size, seed);
    } else {
        vlp_groupvit_config gc = {
            .embed_dim = c->model.embed_dim, .image_size = c->model.image_size,
            .patch_size = c->model.patch_size, .width = c->model.vision_width,
            .heads = c->model.vision_heads, .mlp_ratio = c->model.mlp_ratio,
            .proj_hidden = c->groupvit.proj_hidden, .gumbel_tau = 1.0f, .assign_eps = 1.0f,
            .vocab_size = vocab_size, .context_length = c->model.context_length,
            .text_width = c->model.text_width, .text_layers = c->model.text_layers,
            .text_heads = c->model.text_heads,
            .multi_label_weight = c->groupvit.multi_label_weight,
            .group_weight = c->groupvit.group_weight};
        int nd = vlp_config_int_list(c->groupvit.depths, gc.depths, VLP_GROUPVIT_MAX_GROUPINGS + 1);
        gc.n_groupings = vlp_config_int_list(c->groupvit.group_tokens, gc.group_tokens, VLP_GROUPVIT_MAX_GROUPINGS);
        int ng = vlp_config_int_list(c->groupvit.output_groups, gc.output_groups, VLP_GROUPVIT_MAX_GROUPINGS);
        if (gc.n_groupings < 1 || ng != gc.n_groupings || nd != gc.n_groupings + 1)
            return vlp_error_set(VLP_ECONFIG, "[groupvit] depths, group_tokens, output_groups: %s, %s, %s",
                                 c->groupvit.depths, c->groupvit.group_tokens, c->groupvit.output_groups);
        rc = vlp_groupvit_init(&m->groupvit, &gc, seed);
        m->params = &m->groupvit.params;
    }
    if (rc) vlp_model_free(m);
    return rc;
}

void vlp_model_free(vlp_model *m) {
    if (m->kind == VLP_MODEL_CLIP) vlp_clip_free(&m->clip);
    else if (m->kind == VLP_MODEL_BLIP) vlp_blip_free(&m->blip);
    else vlp_groupvit_free(&m->groupvit);
    if (m->momentum) vlp_blip_momentum_free(&m->blip_m);
    free(m->pending_img), free(m->pending_txt), free(m->pending_ids);
    memset(m, 0, sizeof *m);
}

/* Each row's real tokens: up to and including the end token. */
static int *row_lengths(const vlp_model *m, vlp_tape *t, const int *ids, int n) {
    int T = m->context_length, *lengths = vlp_tape_alloc(t, (size_t)n * sizeof *lengths);
    for (int b = 0; b < n; b++) {
        int len = T;
        for (int i = 0; i < T; i++)
            if (ids[(long)b * T + i] == m->eot) {
                len = i + 1;
                break;
            }
        lengths[b] = len;
    }
    return lengths;
}

/* ---- CLIP ------------------------------------------------------------------------ */

/* Rows [0, k B) and [(k + 1) B, K B) of a feature cache around the live rows. */
static vlp_tensor *with_cache(vlp_tape *tp, float *cache, vlp_tensor *live, int k, int K, int B) {
    if (K == 1) return live;
    int D = live->shape[1], n = 0;
    vlp_tensor *parts[3];
    if (k > 0) parts[n++] = vlp_tape_wrap(tp, cache, 2, (int[]){k * B, D});
    parts[n++] = live;
    if (k < K - 1) parts[n++] = vlp_tape_wrap(tp, cache + (long)(k + 1) * B * D, 2, (int[]){(K - 1 - k) * B, D});
    return vlp_op_concat(tp, n, parts, 0);
}

float vlp_clip_gradients(vlp_clip *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b,
                         bool gather_grad) {
    int K = b->K, B = b->B, S = m->cfg.image_size, ctx = m->cfg.context_length, D = m->cfg.embed_dim;
    long image_floats = 3L * S * S;
    for (int k = 0; k < K && K > 1; k++) {
        vlp_tape_reset(tp);
        vlp_tape_no_grad_begin(tp);
        vlp_tensor *images = vlp_tape_wrap(tp, b->images + k * B * image_floats, 4, (int[]){B, 3, S, S});
        vlp_tensor *img = vlp_clip_encode_image(m, tp, images);
        vlp_tensor *txt = vlp_clip_encode_text(m, tp, b->ids + (long)k * B * ctx, B);
        memcpy(b->cache_img + (long)k * B * D, img->data, sizeof(float) * B * D);
        memcpy(b->cache_txt + (long)k * B * D, txt->data, sizeof(float) * B * D);
        vlp_tape_no_grad_end(tp);
    }
    vlp_params_zero_grad(&m->params);
    float loss = 0.0f;
    for (int k = 0; k < K; k++) {
        vlp_tape_reset(tp);
        vlp_tensor *images = vlp_tape_wrap(tp, b->images + k * B * image_floats, 4, (int[]){B, 3, S, S});
        vlp_tensor *img = vlp_clip_encode_image(m, tp, images);
        vlp_tensor *txt = vlp_clip_encode_text(m, tp, b->ids + (long)k * B * ctx, B);
        img = with_cache(tp, b->cache_img, img, k, K, B);
        txt = with_cache(tp, b->cache_txt, txt, k, K, B);
        vlp_tensor *img_all = vlp_dist_all_gather(tp, d, img, gather_grad);
        vlp_tensor *txt_all = vlp_dist_all_gather(tp, d, txt, gather_grad);
        /* logit_scale's gradient once per step, not once per micro-batch */
        vlp_tensor *scale = k == 0 ? m->logit_scale : vlp_op_stop_gradient(tp, m->logit_scale);
        vlp_tensor *l = vlp_clip_loss(tp, img, txt, img_all, txt_all, scale, d->rank * K * B,
                                      b->groups, NULL);
        /* the last micro-batch's backward all-reduces the step's gradients */
        if (k == K - 1) vlp_dist_backward_mean(tp, d, &m->params, l);
        else if (l->requires_grad) vlp_tape_backward(tp, l, NULL);
        loss = l->data[0];
    }
    return (float)vlp_dist_mean(d, loss);
}

/* ---- BLIP ------------------------------------------------------------------------ */

/* x (n, ...) gathered over ranks as (world n, ...), the gradient carried back. */
static vlp_tensor *gather_rows(vlp_tape *t, const vlp_dist *d, vlp_tensor *x) {
    int n = x->shape[0], shape[VLP_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int) * (size_t)x->ndim);
    vlp_tensor *flat = vlp_op_reshape(t, x, 2, (int[]){n, (int)(x->n / n)});
    shape[0] = n * d->world;
    return vlp_op_reshape(t, vlp_dist_all_gather(t, d, flat, true), x->ndim, shape);
}

/* vlp_blip_itm_loss with the global batch as the pool of texts and images
 * (BLIP's retrieval fine-tuning): the rank's B positives at [offset,
 * offset + B), each text with image neg_image[g], each image with text
 * neg_text[g] (g: the pair's global row). tokens_all (N, Ti, Cv) and
 * ids_all, lengths_all (N) are the global batch's. Equal to
 * vlp_blip_itm_loss on one process (tests/test_step_exact.c checks it). */
static vlp_tensor *itm_loss_global(const vlp_blip *m, vlp_tape *t, vlp_tensor *tokens_all,
                                   const int *ids_all, const int *lengths_all,
                                   const int *neg_image, const int *neg_text, int offset, int B) {
    int N = tokens_all->shape[0], Ti = tokens_all->shape[1], Cv = tokens_all->shape[2];
    int T = m->cfg.context_length;
    int *text_rows = vlp_tape_alloc(t, (size_t)3 * B * sizeof *text_rows);
    int *image_rows = vlp_tape_alloc(t, (size_t)3 * B * sizeof *image_rows);
    for (int b = 0; b < B; b++) {
        int g = offset + b;
        text_rows[b] = g, image_rows[b] = g;
        text_rows[B + b] = g, image_rows[B + b] = neg_image[g];
        text_rows[2 * B + b] = neg_text[g], image_rows[2 * B + b] = g;
    }
    int *text_ids = vlp_tape_alloc(t, (size_t)3 * B * T * sizeof *text_ids);
    int *text_lengths = vlp_tape_alloc(t, (size_t)3 * B * sizeof *text_lengths);
    for (int r = 0; r < 3 * B; r++) {
        memcpy(text_ids + (long)r * T, ids_all + (long)text_rows[r] * T, (size_t)T * sizeof *ids_all);
        text_ids[(long)r * T] = m->cfg.enc_token_id;
        text_lengths[r] = lengths_all[text_rows[r]];
    }
    vlp_tensor *flat = vlp_op_reshape(t, tokens_all, 2, (int[]){N, Ti * Cv});
    vlp_tensor *images = vlp_op_reshape(t, vlp_op_embedding(t, flat, image_rows, 3 * B), 3,
                                        (int[]){3 * B, Ti, Cv});
    vlp_tensor *x = vlp_bert_forward(&m->towers.text_encoder, t, text_ids, text_lengths, 3 * B,
                                     images, false);
    int C = x->shape[2];
    vlp_tensor *first = vlp_op_reshape(t, vlp_op_slice(t, x, 1, 0, 1), 2, (int[]){3 * B, C});
    vlp_tensor *out = vlp_op_linear(t, first, m->itm_head_w, m->itm_head_b);
    int *labels = vlp_tape_alloc(t, (size_t)3 * B * sizeof *labels);
    for (int r = 0; r < 3 * B; r++) labels[r] = r < B;
    return vlp_op_cross_entropy(t, out, labels, -100, 0.0f);
}

/* The weighted sum of the terms whose weight is not 0. */
static vlp_tensor *add_term(vlp_tape *t, vlp_tensor *sum, vlp_tensor *term, float weight) {
    if (!term || weight == 0.0f) return sum;
    term = vlp_op_mul_const(t, term, weight);
    return sum ? vlp_op_add(t, sum, term) : term;
}

static vlp_tensor *blip_loss(vlp_model *mo, vlp_tape *t, const vlp_dist *d, const vlp_step_batch *b) {
    const vlp_blip *m = &mo->blip;
    const vlp_config *c = &mo->cfg;
    int B = b->B, S = mo->image_size, T = mo->context_length, N = d->world * B, offset = d->rank * B;
    const int *image_ids = b->groups ? b->groups + offset : NULL;
    int *lengths = row_lengths(mo, t, b->ids, B);
    vlp_tensor *images = vlp_tape_wrap(t, b->images, 4, (int[]){B, 3, S, S});
    vlp_tensor *tokens = vlp_blip_encode_image(m, t, images);
    vlp_tensor *img = vlp_blip_image_features(m, t, tokens);
    vlp_tensor *txt = vlp_blip_text_features(m, t, b->ids, lengths, B);
    bool global = c->blip.negatives == VLP_NEGATIVES_GLOBAL && c->blip.itm_weight != 0.0f;
    vlp_tensor *img_all = NULL, *txt_all = NULL, *itc;
    if (!mo->momentum || global) {
        img_all = vlp_dist_all_gather(t, d, img, true);
        txt_all = vlp_dist_all_gather(t, d, txt, true);
    }
    if (mo->momentum) {
        /* BLIP's pretraining: the rank's rows against its own momentum
         * features and the queue; the queue takes the global batch's. */
        vlp_tensor *img_m, *txt_m;
        vlp_blip_momentum_features(&mo->blip_m, t, images, b->ids, lengths, &img_m, &txt_m);
        itc = vlp_blip_itc_loss_momentum(m, &mo->blip_m, t, img, txt, img_m, txt_m, image_ids,
                                         c->blip.alpha);
        vlp_tensor *img_m_all = vlp_dist_all_gather(t, d, img_m, false);
        vlp_tensor *txt_m_all = vlp_dist_all_gather(t, d, txt_m, false);
        memcpy(mo->pending_img, img_m_all->data, sizeof(float) * img_m_all->n);
        memcpy(mo->pending_txt, txt_m_all->data, sizeof(float) * txt_m_all->n);
        for (int i = 0; i < N; i++) mo->pending_ids[i] = b->groups ? b->groups[i] : -100; /* -100: none */
        mo->pending = N;
    } else {
        itc = vlp_blip_itc_loss(m, t, img, txt, img_all, txt_all, offset, b->groups);
    }

    vlp_tensor *itm = NULL;
    if (c->blip.itm_weight != 0.0f) {
        vlp_rng sample = vlp_rng_split(&b->rng, VLP_RNG_STREAM_SAMPLE);
        if (global) {
            /* Every rank draws the global batch's negatives from the same
             * stream, so they are one process's draws; each uses its rows. */
            vlp_rng rng = vlp_rng_split(&sample, 0);
            int *neg_image = vlp_tape_alloc(t, (size_t)N * sizeof(int));
            int *neg_text = vlp_tape_alloc(t, (size_t)N * sizeof(int));
            if (vlp_blip_itm_sample_negatives(m, t, img_all, txt_all, b->groups, c->blip.itm_uniform,
                                              &rng, neg_image, neg_text))
                return NULL;
            int *ids_all = vlp_tape_alloc(t, (size_t)N * T * sizeof(int));
            vlp_dist_allgather_ints(d, b->ids, B * T, ids_all);
            itm = itm_loss_global(m, t, gather_rows(t, d, tokens), ids_all, row_lengths(mo, t, ids_all, N),
                                  neg_image, neg_text, offset, B);
        } else {
            vlp_rng rng = vlp_rng_split(&sample, (uint64_t)d->rank);
            int *neg_image = vlp_tape_alloc(t, (size_t)B * sizeof(int));
            int *neg_text = vlp_tape_alloc(t, (size_t)B * sizeof(int));
            if (vlp_blip_itm_sample_negatives(m, t, img, txt, image_ids, c->blip.itm_uniform, &rng,
                                              neg_image, neg_text))
                return NULL;
            itm = vlp_blip_itm_loss(m, t, tokens, b->ids, lengths, neg_image, neg_text, NULL);
        }
    }

    vlp_tensor *lm = NULL;
    if (c->blip.lm_weight != 0.0f) {
        const int *lm_ids = b->lm_ids ? b->lm_ids : b->ids;
        int prompt_length = b->lm_ids ? b->prompt_length : 1;
        int *lm_lengths = b->lm_ids ? row_lengths(mo, t, lm_ids, B) : lengths;
        /* The global mean over scored tokens: this rank's mean weighted by
         * its share of them, so that the mean over ranks is that mean. */
        long scored = 0;
        for (int i = 0; i < B; i++) scored += lm_lengths[i] > prompt_length ? lm_lengths[i] - prompt_length : 0;
        long total = vlp_dist_sum(d, scored);
        if (scored > 0) {
            lm = vlp_blip_lm_loss(m, t, tokens, lm_ids, lm_lengths, prompt_length);
            if (d->world > 1) lm = vlp_op_mul_const(t, lm, (float)((double)scored * d->world / (double)total));
        }
    }
    /* A term this rank did not compute (no LM token scored) adds 0 to the mean. */
    vlp_tensor *term[3] = {itc, itm, lm};
    float weight[3] = {c->blip.itc_weight, c->blip.itm_weight, c->blip.lm_weight};
    for (int i = 0; i < 3; i++) mo->terms[i] = weight[i] == 0.0f ? NAN : term[i] ? term[i]->data[0] : 0.0f;
    vlp_tensor *loss = add_term(t, NULL, itc, c->blip.itc_weight);
    loss = add_term(t, loss, itm, c->blip.itm_weight);
    loss = add_term(t, loss, lm, c->blip.lm_weight);
    return loss ? loss : vlp_op_mul_const(t, itc, 0.0f);
}

/* ---- GroupViT ---------------------------------------------------------------------- */

/* Standard Gumbel noise, -log(-log(u)) with u strictly inside (0, 1). */
static void fill_gumbel(vlp_rng *rng, float *x, long n) {
    for (long i = 0; i < n; i++) {
        double u = ((double)(vlp_rng_u64(rng) >> 11) + 0.5) * 0x1.0p-53;
        x[i] = (float)-log(-log(u));
    }
}

static vlp_tensor *groupvit_loss(vlp_model *mo, vlp_tape *t, const vlp_dist *d, const vlp_step_batch *b) {
    const vlp_groupvit *m = &mo->groupvit;
    const vlp_groupvit_config *gc = &m->cfg;
    int B = b->B, S = mo->image_size, K = mo->cfg.groupvit.prompts, offset = d->rank * B;
    /* Each pair's noise from its own stream, by its global row: one
     * process with the whole batch draws the same. */
    vlp_groupvit_gumbel gumbel = {.rng = NULL};
    vlp_rng noise_rng = vlp_rng_split(&b->rng, VLP_RNG_STREAM_GUMBEL);
    for (int i = 0; i < gc->n_groupings; i++) {
        long per_pair = (long)gc->output_groups[i] * (i ? gc->output_groups[i - 1] : m->grid * m->grid);
        float *noise = vlp_tape_alloc(t, sizeof(float) * (size_t)(B * per_pair));
        for (int j = 0; j < B; j++) {
            vlp_rng pair = vlp_rng_split(&noise_rng, (uint64_t)(offset + j) * VLP_GROUPVIT_MAX_GROUPINGS + i);
            fill_gumbel(&pair, noise + j * per_pair, per_pair);
        }
        gumbel.noise[i] = noise;
    }
    vlp_tensor *images = vlp_tape_wrap(t, b->images, 4, (int[]){B, 3, S, S});
    vlp_tensor *groups = NULL;
    bool group_term = gc->group_weight > 0 && K && b->prompt_ids;
    vlp_groupvit_embeddings local = {
        .img = vlp_groupvit_encode_image_groups(m, t, images, &gumbel, NULL, group_term ? &groups : NULL),
        .txt = vlp_groupvit_encode_text(m, t, b->ids, B),
        .prompts = K && b->prompt_ids ? vlp_groupvit_encode_text(m, t, b->prompt_ids, B * K) : NULL,
        .groups = groups};
    vlp_groupvit_embeddings all = {
        .img = vlp_dist_all_gather(t, d, local.img, true),
        .txt = vlp_dist_all_gather(t, d, local.txt, true),
        .prompts = local.prompts ? vlp_dist_all_gather(t, d, local.prompts, true) : NULL};
    return vlp_groupvit_loss(m, t, &local, &all, offset);
}

/* ---- the interface ------------------------------------------------------------------ */

vlp_tensor *vlp_model_loss(vlp_model *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b) {
    VLP_ASSERT(b->K == 1 && m->kind != VLP_MODEL_CLIP, "vlp_model_loss is BLIP's and GroupViT's");
    return m->kind == VLP_MODEL_BLIP ? blip_loss(m, tp, d, b) : groupvit_loss(m, tp, d, b);
}

int vlp_model_gradients(vlp_model *m, vlp_tape *tp, const vlp_dist *d, const vlp_step_batch *b,
                        float *loss) {
    if (m->kind == VLP_MODEL_CLIP) {
        *loss = vlp_clip_gradients(&m->clip, tp, d, b, true);
        return VLP_OK;
    }
    if (m->momentum && !m->pending_img) {
        size_t rows = (size_t)d->world * b->B;
        m->pending_img = vlp_malloc(sizeof(float) * rows * m->embed_dim);
        m->pending_txt = vlp_malloc(sizeof(float) * rows * m->embed_dim);
        m->pending_ids = vlp_malloc(sizeof(int) * rows);
    }
    vlp_tape_reset(tp);
    vlp_params_zero_grad(m->params);
    vlp_tensor *l = vlp_model_loss(m, tp, d, b);
    /* Collective: every rank fails together, or none does. */
    if (vlp_dist_any(d, l == NULL)) {
        m->pending = 0;
        return l ? vlp_error_set(VLP_EINVAL, "another rank's step failed") : VLP_EINVAL;
    }
    vlp_dist_backward_mean(tp, d, m->params, l);
    *loss = (float)vlp_dist_mean(d, l->data[0]);
    if (m->kind == VLP_MODEL_BLIP)
        for (int i = 0; i < 3; i++)
            if (!isnan(m->terms[i])) m->terms[i] = (float)vlp_dist_mean(d, m->terms[i]);
    return VLP_OK;
}

void vlp_model_after_step(vlp_model *m) {
    if (m->kind == VLP_MODEL_CLIP) {
        vlp_clip_clamp_logit_scale(&m->clip);
    } else if (m->kind == VLP_MODEL_GROUPVIT) {
        vlp_groupvit_clamp_logit_scales(&m->groupvit);
    } else {
        vlp_blip_clamp_temp(&m->blip);
        if (m->momentum) {
            /* BLIP enqueues at the end of its forward and moves the
             * momentum encoders at the start of the next: the same order. */
            if (m->pending)
                vlp_blip_momentum_enqueue(&m->blip_m, m->pending_img, m->pending_txt, m->pending_ids,
                                          m->pending);
            m->pending = 0;
            vlp_blip_momentum_update(&m->blip_m, m->cfg.blip.momentum_coef);
        }
    }
}

double vlp_model_logit_scale(const vlp_model *m) {
    if (m->kind == VLP_MODEL_BLIP) return 1.0 / m->blip.temp->data[0];
    return exp(m->kind == VLP_MODEL_CLIP ? m->clip.logit_scale->data[0] : m->groupvit.logit_scale->data[0]);
}

vlp_tensor *vlp_model_encode_image(const vlp_model *m, vlp_tape *t, vlp_tensor *images) {
    if (m->kind == VLP_MODEL_BLIP) return vlp_blip_image_features(&m->blip, t, vlp_blip_encode_image(&m->blip, t, images));
    if (m->kind == VLP_MODEL_GROUPVIT) return vlp_groupvit_encode_image(&m->groupvit, t, images, NULL, NULL);
    return vlp_clip_encode_image(&m->clip, t, images);
}

vlp_tensor *vlp_model_encode_text(const vlp_model *m, vlp_tape *t, const int *ids, int B) {
    if (m->kind == VLP_MODEL_BLIP) return vlp_blip_text_features(&m->blip, t, ids, row_lengths(m, t, ids, B), B);
    if (m->kind == VLP_MODEL_GROUPVIT) return vlp_groupvit_encode_text(&m->groupvit, t, ids, B);
    return vlp_clip_encode_text(&m->clip, t, ids, B);
}

vlp_params *vlp_model_state(vlp_model *m) { return m->momentum ? &m->blip_m.params : NULL; }

int vlp_model_state_ints(const vlp_model *m) { return m->momentum ? m->blip_m.queue_size + 1 : 0; }

void vlp_model_state_get(const vlp_model *m, int *ints) {
    if (!m->momentum) return;
    memcpy(ints, m->blip_m.idx_queue, sizeof(int) * (size_t)m->blip_m.queue_size);
    ints[m->blip_m.queue_size] = m->blip_m.queue_ptr;
}

void vlp_model_state_set(vlp_model *m, const int *ints) {
    if (!m->momentum) return;
    memcpy(m->blip_m.idx_queue, ints, sizeof(int) * (size_t)m->blip_m.queue_size);
    m->blip_m.queue_ptr = ints[m->blip_m.queue_size];
}
