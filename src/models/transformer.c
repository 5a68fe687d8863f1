/* Pre-LN residual attention blocks (see transformer.h). */
#include "models/transformer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd/error.h"

static vlp_tensor *add_param(vlp_params *p, const char *prefix, const char *suffix, int ndim,
                             const int *shape) {
    char name[VLP_PARAM_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s%s", prefix, suffix);
    VLP_ASSERT(n < (int)sizeof name, "parameter name too long: %s%s", prefix, suffix);
    return vlp_params_add(p, name, ndim, shape);
}

void vlp_ln_register(vlp_ln *ln, vlp_params *p, const char *prefix, int C) {
    ln->weight = add_param(p, prefix, ".weight", 1, (int[]){C});
    ln->bias = add_param(p, prefix, ".bias", 1, (int[]){C});
}

void vlp_ln_init(vlp_ln *ln) {
    for (long i = 0; i < ln->weight->n; i++) ln->weight->data[i] = 1.0f;
    memset(ln->bias->data, 0, (size_t)ln->bias->n * sizeof(float));
}

vlp_tensor *vlp_ln_forward(const vlp_ln *ln, vlp_tape *t, vlp_tensor *x) {
    return vlp_op_layernorm(t, x, ln->weight, ln->bias);
}

void vlp_transformer_register(vlp_transformer *tr, vlp_params *p, const char *prefix, int width,
                              int layers, int heads, int mlp_width, vlp_activation act) {
    VLP_ASSERT(layers >= 1 && layers <= VLP_MAX_LAYERS, "%d layers", layers);
    VLP_ASSERT(heads >= 1 && width % heads == 0, "width %d with %d heads", width, heads);
    *tr = (vlp_transformer){.width = width, .layers = layers, .heads = heads,
                            .mlp_width = mlp_width, .act = act};
    int C = width, M = mlp_width;
    for (int i = 0; i < layers; i++) {
        char pre[VLP_PARAM_NAME_MAX], sub[2 * VLP_PARAM_NAME_MAX];
        snprintf(pre, sizeof pre, "%s.resblocks.%d", prefix, i);
        vlp_resblock *b = &tr->blocks[i];
        snprintf(sub, sizeof sub, "%s.ln_1", pre);
        vlp_ln_register(&b->ln_1, p, sub, C);
        b->in_proj_weight = add_param(p, pre, ".attn.in_proj_weight", 2, (int[]){3 * C, C});
        b->in_proj_bias = add_param(p, pre, ".attn.in_proj_bias", 1, (int[]){3 * C});
        b->out_proj_weight = add_param(p, pre, ".attn.out_proj.weight", 2, (int[]){C, C});
        b->out_proj_bias = add_param(p, pre, ".attn.out_proj.bias", 1, (int[]){C});
        snprintf(sub, sizeof sub, "%s.ln_2", pre);
        vlp_ln_register(&b->ln_2, p, sub, C);
        b->fc_weight = add_param(p, pre, ".mlp.c_fc.weight", 2, (int[]){M, C});
        b->fc_bias = add_param(p, pre, ".mlp.c_fc.bias", 1, (int[]){M});
        b->proj_weight = add_param(p, pre, ".mlp.c_proj.weight", 2, (int[]){C, M});
        b->proj_bias = add_param(p, pre, ".mlp.c_proj.bias", 1, (int[]){C});
    }
}

/* torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void linear_default(vlp_tensor *w, vlp_tensor *b, vlp_rng *rng) {
    float bound = 1.0f / sqrtf((float)w->shape[1]);
    vlp_rng_fill_uniform(rng, w->data, w->n, -bound, bound);
    if (b) vlp_rng_fill_uniform(rng, b->data, b->n, -bound, bound);
}

static void zero(vlp_tensor *t) { memset(t->data, 0, (size_t)t->n * sizeof(float)); }

/* What every block gets whatever the tower: LayerNorms, MHA's zero biases
 * and the MLP biases of nn.Linear. */
static void init_common(vlp_resblock *b, vlp_rng *rng) {
    vlp_ln_init(&b->ln_1);
    vlp_ln_init(&b->ln_2);
    zero(b->in_proj_bias);
    zero(b->out_proj_bias);
    float fc = 1.0f / sqrtf((float)b->fc_weight->shape[1]);
    float proj = 1.0f / sqrtf((float)b->proj_weight->shape[1]);
    vlp_rng_fill_uniform(rng, b->fc_bias->data, b->fc_bias->n, -fc, fc);
    vlp_rng_fill_uniform(rng, b->proj_bias->data, b->proj_bias->n, -proj, proj);
}

void vlp_transformer_init_default(vlp_transformer *tr, vlp_rng *rng) {
    for (int i = 0; i < tr->layers; i++) {
        vlp_resblock *b = &tr->blocks[i];
        init_common(b, rng);
        /* xavier_uniform over the stacked (3C, C) matrix, as nn.MultiheadAttention */
        float a = sqrtf(6.0f / (float)(b->in_proj_weight->shape[0] + b->in_proj_weight->shape[1]));
        vlp_rng_fill_uniform(rng, b->in_proj_weight->data, b->in_proj_weight->n, -a, a);
        linear_default(b->out_proj_weight, NULL, rng);
        linear_default(b->fc_weight, NULL, rng);
        linear_default(b->proj_weight, NULL, rng);
    }
}

void vlp_transformer_init_text(vlp_transformer *tr, vlp_rng *rng) {
    float attn_std = 1.0f / sqrtf((float)tr->width);
    float proj_std = attn_std / sqrtf(2.0f * (float)tr->layers);
    float fc_std = 1.0f / sqrtf(2.0f * (float)tr->width);
    for (int i = 0; i < tr->layers; i++) {
        vlp_resblock *b = &tr->blocks[i];
        init_common(b, rng);
        vlp_rng_fill_normal(rng, b->in_proj_weight->data, b->in_proj_weight->n, 0.0f, attn_std);
        vlp_rng_fill_normal(rng, b->out_proj_weight->data, b->out_proj_weight->n, 0.0f, proj_std);
        vlp_rng_fill_normal(rng, b->fc_weight->data, b->fc_weight->n, 0.0f, fc_std);
        vlp_rng_fill_normal(rng, b->proj_weight->data, b->proj_weight->n, 0.0f, proj_std);
    }
}

static vlp_tensor *block_forward(const vlp_transformer *tr, const vlp_resblock *b, vlp_tape *t,
                                 vlp_tensor *x, bool causal, const uint8_t *key_mask) {
    vlp_tensor *h = vlp_ln_forward(&b->ln_1, t, x);
    /* q, k, v stay packed in in_proj's output (B, T, 3C) */
    vlp_tensor *qkv = vlp_op_linear(t, h, b->in_proj_weight, b->in_proj_bias);
    h = vlp_op_attention_qkv(t, qkv, tr->heads, causal, key_mask);
    x = vlp_op_linear_residual(t, h, b->out_proj_weight, b->out_proj_bias, x);
    h = vlp_ln_forward(&b->ln_2, t, x);
    h = vlp_op_linear_activation(t, h, b->fc_weight, b->fc_bias, tr->act);
    return vlp_op_linear_residual(t, h, b->proj_weight, b->proj_bias, x);
}

vlp_tensor *vlp_transformer_forward(const vlp_transformer *tr, vlp_tape *t, vlp_tensor *x,
                                    bool causal, const uint8_t *key_mask) {
    for (int i = 0; i < tr->layers; i++) x = block_forward(tr, &tr->blocks[i], t, x, causal, key_mask);
    return x;
}
