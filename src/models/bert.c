/* BLIP's BERT text tower (see bert.h). */
#include "models/bert.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"

static vlp_tensor *add_param(vlp_params *p, const char *prefix, const char *suffix, int ndim,
                             const int *shape) {
    char name[VLP_PARAM_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s%s", prefix, suffix);
    VLP_ASSERT(n < (int)sizeof name, "parameter name too long: %s%s", prefix, suffix);
    return vlp_params_add(p, name, ndim, shape);
}

/* "<prefix>.weight" (out, in) and "<prefix>.bias" (out): an nn.Linear. */
static void linear_register(vlp_tensor **w, vlp_tensor **b, vlp_params *p, const char *prefix,
                            int out, int in) {
    *w = add_param(p, prefix, ".weight", 2, (int[]){out, in});
    *b = add_param(p, prefix, ".bias", 1, (int[]){out});
}

void vlp_bert_attention_register(vlp_bert_attention *a, vlp_params *p, const char *prefix, int C,
                                 int Ckv) {
    char sub[2 * VLP_PARAM_NAME_MAX];
#define SUB(suffix) (snprintf(sub, sizeof sub, "%s." suffix, prefix), sub)
    linear_register(&a->query_w, &a->query_b, p, SUB("self.query"), C, C);
    linear_register(&a->key_w, &a->key_b, p, SUB("self.key"), C, Ckv);
    linear_register(&a->value_w, &a->value_b, p, SUB("self.value"), C, Ckv);
    linear_register(&a->dense_w, &a->dense_b, p, SUB("output.dense"), C, C);
    vlp_ln_register(&a->ln, p, SUB("output.LayerNorm"), C);
#undef SUB
}

void vlp_bert_register(vlp_bert *bert, vlp_params *p, const char *prefix,
                       const vlp_bert_config *cfg) {
    VLP_ASSERT(cfg->layers >= 1 && cfg->layers <= VLP_MAX_LAYERS, "%d layers", cfg->layers);
    VLP_ASSERT(cfg->heads >= 1 && cfg->width % cfg->heads == 0, "width %d with %d heads",
               cfg->width, cfg->heads);
    memset(bert, 0, sizeof *bert);
    bert->cfg = *cfg;
    int C = cfg->width, M = cfg->mlp_width;
    char sub[2 * VLP_PARAM_NAME_MAX];
    snprintf(sub, sizeof sub, "%s.embeddings", prefix);
    bert->word_embeddings =
        add_param(p, sub, ".word_embeddings.weight", 2, (int[]){cfg->vocab_size, C});
    bert->position_embeddings =
        add_param(p, sub, ".position_embeddings.weight", 2, (int[]){cfg->context_length, C});
    snprintf(sub, sizeof sub, "%s.embeddings.LayerNorm", prefix);
    vlp_ln_register(&bert->embeddings_ln, p, sub, C);
    for (int i = 0; i < cfg->layers; i++) {
        vlp_bert_layer *L = &bert->layer[i];
        char pre[VLP_PARAM_NAME_MAX];
        snprintf(pre, sizeof pre, "%s.encoder.layer.%d", prefix, i);
        snprintf(sub, sizeof sub, "%s.attention", pre);
        vlp_bert_attention_register(&L->attention, p, sub, C, C);
        snprintf(sub, sizeof sub, "%s.crossattention", pre);
        vlp_bert_attention_register(&L->crossattention, p, sub, C, cfg->encoder_width);
        snprintf(sub, sizeof sub, "%s.intermediate.dense", pre);
        linear_register(&L->intermediate_w, &L->intermediate_b, p, sub, M, C);
        snprintf(sub, sizeof sub, "%s.output.dense", pre);
        linear_register(&L->output_w, &L->output_b, p, sub, C, M);
        snprintf(sub, sizeof sub, "%s.output.LayerNorm", pre);
        vlp_ln_register(&L->output_ln, p, sub, C);
    }
}

void vlp_bert_register_tied(vlp_bert *bert, const vlp_bert *shared, vlp_params *p,
                            const char *prefix) {
    *bert = *shared;
    int C = bert->cfg.width;
    for (int i = 0; i < bert->cfg.layers; i++) {
        char sub[VLP_PARAM_NAME_MAX];
        snprintf(sub, sizeof sub, "%s.encoder.layer.%d.attention", prefix, i);
        vlp_bert_attention_register(&bert->layer[i].attention, p, sub, C, C);
    }
}

static void normal_002(vlp_tensor *w, vlp_rng *rng) {
    vlp_rng_fill_normal(rng, w->data, w->n, 0.0f, 0.02f);
}

static void zero(vlp_tensor *b) { memset(b->data, 0, (size_t)b->n * sizeof(float)); }

static void linear_init(vlp_tensor *w, vlp_tensor *b, vlp_rng *rng) {
    normal_002(w, rng);
    zero(b);
}

static void attention_init(vlp_bert_attention *a, vlp_rng *rng) {
    linear_init(a->query_w, a->query_b, rng);
    linear_init(a->key_w, a->key_b, rng);
    linear_init(a->value_w, a->value_b, rng);
    linear_init(a->dense_w, a->dense_b, rng);
    vlp_ln_init(&a->ln);
}

void vlp_bert_init(vlp_bert *bert, vlp_rng *rng, bool tied) {
    for (int i = 0; i < bert->cfg.layers; i++) attention_init(&bert->layer[i].attention, rng);
    if (tied) return;
    normal_002(bert->word_embeddings, rng);
    normal_002(bert->position_embeddings, rng);
    vlp_ln_init(&bert->embeddings_ln);
    for (int i = 0; i < bert->cfg.layers; i++) {
        vlp_bert_layer *L = &bert->layer[i];
        attention_init(&L->crossattention, rng);
        linear_init(L->intermediate_w, L->intermediate_b, rng);
        linear_init(L->output_w, L->output_b, rng);
        vlp_ln_init(&L->output_ln);
    }
}

vlp_tensor *vlp_bert_attention_forward(const vlp_bert_attention *a, vlp_tape *t, vlp_tensor *x,
                                       vlp_tensor *kv, int heads, bool causal,
                                       const uint8_t *key_mask) {
    vlp_tensor *q = vlp_op_linear(t, x, a->query_w, a->query_b);
    vlp_tensor *k = vlp_op_linear(t, kv, a->key_w, a->key_b);
    vlp_tensor *v = vlp_op_linear(t, kv, a->value_w, a->value_b);
    vlp_tensor *h = vlp_op_attention(t, q, k, v, heads, causal, key_mask);
    return vlp_ln_forward(&a->ln, t, vlp_op_linear_residual(t, h, a->dense_w, a->dense_b, x));
}

vlp_tensor *vlp_bert_forward(const vlp_bert *bert, vlp_tape *t, const int *ids, const int *lengths,
                             int B, vlp_tensor *image, bool causal) {
    const vlp_bert_config *cfg = &bert->cfg;
    int T = cfg->context_length, C = cfg->width;
    VLP_ASSERT(!image || (image->ndim == 3 && image->shape[0] == B &&
                          image->shape[2] == cfg->encoder_width),
               "bert: image tokens are not (%d, Ti, %d)", B, cfg->encoder_width);
    uint8_t *mask = vlp_tape_alloc(t, (size_t)B * T);
    for (int b = 0; b < B; b++) {
        VLP_ASSERT(lengths[b] >= 1 && lengths[b] <= T, "bert: row %d has length %d of %d", b,
                   lengths[b], T);
        for (int i = 0; i < T; i++) mask[b * T + i] = i < lengths[b];
    }
    vlp_tensor *x = vlp_op_embedding(t, bert->word_embeddings, ids, (long)B * T);
    x = vlp_op_add(t, vlp_op_reshape(t, x, 3, (int[]){B, T, C}), bert->position_embeddings);
    x = vlp_ln_forward(&bert->embeddings_ln, t, x);
    for (int i = 0; i < cfg->layers; i++) {
        const vlp_bert_layer *L = &bert->layer[i];
        x = vlp_bert_attention_forward(&L->attention, t, x, x, cfg->heads, causal, mask);
        if (image)
            x = vlp_bert_attention_forward(&L->crossattention, t, x, image, cfg->heads, false,
                                           NULL);
        vlp_tensor *h = vlp_op_linear_activation(t, x, L->intermediate_w, L->intermediate_b,
                                                 VLP_ACTIVATION_GELU);
        h = vlp_op_linear_residual(t, h, L->output_w, L->output_b, x);
        x = vlp_ln_forward(&L->output_ln, t, h);
    }
    return x;
}

void vlp_bert_lm_head_register(vlp_bert_lm_head *h, vlp_params *p, const char *prefix, int C,
                               int vocab) {
    char sub[2 * VLP_PARAM_NAME_MAX];
    snprintf(sub, sizeof sub, "%s.transform.dense", prefix);
    linear_register(&h->dense_w, &h->dense_b, p, sub, C, C);
    snprintf(sub, sizeof sub, "%s.transform.LayerNorm", prefix);
    vlp_ln_register(&h->ln, p, sub, C);
    h->bias = add_param(p, prefix, ".bias", 1, (int[]){vocab});
}

void vlp_bert_lm_head_init(vlp_bert_lm_head *h, vlp_rng *rng) {
    linear_init(h->dense_w, h->dense_b, rng);
    vlp_ln_init(&h->ln);
    zero(h->bias);
}

vlp_tensor *vlp_bert_lm_head_forward(const vlp_bert_lm_head *h, vlp_tape *t, vlp_tensor *x,
                                     vlp_tensor *word_embeddings) {
    x = vlp_op_linear_activation(t, x, h->dense_w, h->dense_b, VLP_ACTIVATION_GELU);
    x = vlp_ln_forward(&h->ln, t, x);
    return vlp_op_linear(t, x, word_embeddings, h->bias);
}
