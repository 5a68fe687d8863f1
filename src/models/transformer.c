/* Pre-LN residual attention blocks (see transformer.h). */
#include "models/transformer.h"

#include <math.h>
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

/* Suffixes of each block's tensors, in registration order, per naming. */
enum { BLOCK_LIST, LN1_W, LN1_B, QKV_W, QKV_B, OUT_W, OUT_B, LN2_W, LN2_B, FC_W, FC_B, PROJ_W,
       PROJ_B, BLOCK_NAMES };
static const char *const block_names[][BLOCK_NAMES] = {
    [VLP_BLOCK_NAMES_OPENCLIP] = {"resblocks", "ln_1.weight", "ln_1.bias", "attn.in_proj_weight",
                                  "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias",
                                  "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                                  "mlp.c_proj.weight", "mlp.c_proj.bias"},
    [VLP_BLOCK_NAMES_TIMM] = {"blocks", "norm1.weight", "norm1.bias", "attn.qkv.weight",
                              "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "norm2.weight",
                              "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                              "mlp.fc2.bias"},
};

void vlp_transformer_register(vlp_transformer *tr, vlp_params *p, const char *prefix, int width,
                              int layers, int heads, int mlp_width, vlp_activation act) {
    vlp_transformer_register_named(tr, p, prefix, width, layers, heads, mlp_width, act,
                                   VLP_BLOCK_NAMES_OPENCLIP);
}

void vlp_transformer_register_named(vlp_transformer *tr, vlp_params *p, const char *prefix,
                                    int width, int layers, int heads, int mlp_width,
                                    vlp_activation act, vlp_block_names names) {
    VLP_ASSERT(layers >= 1 && layers <= VLP_MAX_LAYERS, "%d layers", layers);
    VLP_ASSERT(heads >= 1 && width % heads == 0, "width %d with %d heads", width, heads);
    *tr = (vlp_transformer){.width = width, .layers = layers, .heads = heads,
                            .mlp_width = mlp_width, .act = act};
    const char *const *n = block_names[names];
    int C = width, M = mlp_width;
    for (int i = 0; i < layers; i++) {
        char pre[VLP_PARAM_NAME_MAX];
        snprintf(pre, sizeof pre, "%s.%s.%d.", prefix, n[BLOCK_LIST], i);
        vlp_resblock *b = &tr->blocks[i];
        b->ln_1.weight = add_param(p, pre, n[LN1_W], 1, (int[]){C});
        b->ln_1.bias = add_param(p, pre, n[LN1_B], 1, (int[]){C});
        b->in_proj_weight = add_param(p, pre, n[QKV_W], 2, (int[]){3 * C, C});
        b->in_proj_bias = add_param(p, pre, n[QKV_B], 1, (int[]){3 * C});
        b->out_proj_weight = add_param(p, pre, n[OUT_W], 2, (int[]){C, C});
        b->out_proj_bias = add_param(p, pre, n[OUT_B], 1, (int[]){C});
        b->ln_2.weight = add_param(p, pre, n[LN2_W], 1, (int[]){C});
        b->ln_2.bias = add_param(p, pre, n[LN2_B], 1, (int[]){C});
        b->fc_weight = add_param(p, pre, n[FC_W], 2, (int[]){M, C});
        b->fc_bias = add_param(p, pre, n[FC_B], 1, (int[]){M});
        b->proj_weight = add_param(p, pre, n[PROJ_W], 2, (int[]){C, M});
        b->proj_bias = add_param(p, pre, n[PROJ_B], 1, (int[]){C});
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
    /* The layernorms' outputs are dropped once used: backward recomputes
     * them (one cheap pass) rather than keep them through the step. */
    vlp_tensor *h = vlp_ln_forward(&b->ln_1, t, x);
    /* q, k, v stay packed in in_proj's output (B, T, 3C) */
    vlp_tensor *qkv = vlp_op_linear(t, h, b->in_proj_weight, b->in_proj_bias);
    vlp_tape_drop(t, h);
    h = vlp_op_attention_qkv(t, qkv, tr->heads, causal, key_mask);
    x = vlp_op_linear_residual(t, h, b->out_proj_weight, b->out_proj_bias, x);
    h = vlp_ln_forward(&b->ln_2, t, x);
    vlp_tensor *y = vlp_op_mlp_residual(t, h, b->fc_weight, b->fc_bias, b->proj_weight,
                                        b->proj_bias, x, tr->act);
    vlp_tape_drop(t, h);
    return y;
}

vlp_tensor *vlp_transformer_forward(const vlp_transformer *tr, vlp_tape *t, vlp_tensor *x,
                                    bool causal, const uint8_t *key_mask) {
    for (int i = 0; i < tr->layers; i++) x = block_forward(tr, &tr->blocks[i], t, x, causal, key_mask);
    return x;
}
