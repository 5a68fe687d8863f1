/* GroupViT model and loss (see groupvit.h). */
#include "models/groupvit.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "models/clip.h"
#include "models/vit.h"

/* ---- registration ------------------------------------------------------------ */

static vlp_tensor *add(vlp_params *p, int ndim, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static vlp_tensor *add(vlp_params *p, int ndim, const int *shape, const char *fmt, ...) {
    char name[VLP_PARAM_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    VLP_ASSERT(n < (int)sizeof name, "parameter name too long: %s...", name);
    return vlp_params_add(p, name, ndim, shape);
}

/* out = "<prefix>.<what>", a parameter name. */
static char *join(char out[VLP_PARAM_NAME_MAX], const char *prefix, const char *what) {
    int n = snprintf(out, VLP_PARAM_NAME_MAX, "%s.%s", prefix, what);
    VLP_ASSERT(n < VLP_PARAM_NAME_MAX, "parameter name too long: %s.%s", prefix, what);
    return out;
}

static void linear_register(vlp_groupvit_linear *l, vlp_params *p, const char *prefix, int in,
                            int out) {
    l->weight = add(p, 2, (int[]){out, in}, "%s.weight", prefix);
    l->bias = add(p, 1, (int[]){out}, "%s.bias", prefix);
}

static void mlp_register(vlp_groupvit_mlp *m, vlp_params *p, const char *prefix, int in,
                         int hidden, int out) {
    char name[VLP_PARAM_NAME_MAX];
    linear_register(&m->fc1, p, join(name, prefix, "fc1"), in, hidden);
    linear_register(&m->fc2, p, join(name, prefix, "fc2"), hidden, out);
}

static void attn_register(vlp_groupvit_attn *a, vlp_params *p, const char *prefix, int C) {
    char name[VLP_PARAM_NAME_MAX];
    linear_register(&a->q_proj, p, join(name, prefix, "q_proj"), C, C);
    linear_register(&a->k_proj, p, join(name, prefix, "k_proj"), C, C);
    linear_register(&a->v_proj, p, join(name, prefix, "v_proj"), C, C);
    linear_register(&a->proj, p, join(name, prefix, "proj"), C, C);
}

/* The widths GroupingBlock fixes whatever the model's mlp_ratio: tokens
 * C/2, channels 4C, the pre-assignment block's MLP 4C. */
void vlp_groupvit_grouping_register(vlp_groupvit_grouping *g, vlp_params *p, const char *prefix,
                                    int C, int in_groups, int out_groups, int heads, float tau,
                                    float eps) {
    *g = (vlp_groupvit_grouping){.in_groups = in_groups, .out_groups = out_groups,
                                 .heads = heads, .tau = tau, .eps = eps};
    char name[VLP_PARAM_NAME_MAX];
    vlp_ln_register(&g->norm_tokens, p, join(name, prefix, "norm_tokens"), C);
    mlp_register(&g->mlp_inter, p, join(name, prefix, "mlp_inter"), g->in_groups, C / 2,
                 g->out_groups);
    vlp_ln_register(&g->norm_post_tokens, p, join(name, prefix, "norm_post_tokens"), C);
    vlp_ln_register(&g->norm_x, p, join(name, prefix, "norm_x"), C);
    attn_register(&g->pre_attn, p, join(name, prefix, "pre_assign_attn.attn"), C);
    vlp_ln_register(&g->pre_norm2, p, join(name, prefix, "pre_assign_attn.norm2"), C);
    mlp_register(&g->pre_mlp, p, join(name, prefix, "pre_assign_attn.mlp"), C, 4 * C, C);
    vlp_ln_register(&g->pre_norm_post, p, join(name, prefix, "pre_assign_attn.norm_post"), C);
    attn_register(&g->assign, p, join(name, prefix, "assign"), C);
    vlp_ln_register(&g->norm_new_x, p, join(name, prefix, "norm_new_x"), C);
    mlp_register(&g->mlp_channels, p, join(name, prefix, "mlp_channels"), C, 4 * C, C);
}

static int check_config(const vlp_groupvit_config *c) {
#define REQUIRE(cond, ...) \
    if (!(cond)) return vlp_error_set(VLP_EINVAL, "groupvit config: " __VA_ARGS__)
    REQUIRE(c->patch_size > 0 && c->image_size > 0 && c->image_size % c->patch_size == 0,
            "image_size %d is not a multiple of patch_size %d", c->image_size, c->patch_size);
    REQUIRE(c->heads > 0 && c->width > 0 && c->width % (2 * c->heads) == 0,
            "width %d must be even and a multiple of heads %d", c->width, c->heads);
    REQUIRE(c->n_groupings >= 1 && c->n_groupings <= VLP_GROUPVIT_MAX_GROUPINGS,
            "n_groupings %d is not in [1, %d]", c->n_groupings, VLP_GROUPVIT_MAX_GROUPINGS);
    for (int i = 0; i <= c->n_groupings; i++)
        REQUIRE(c->depths[i] >= 1 && c->depths[i] <= VLP_MAX_LAYERS, "depths[%d] = %d", i,
                c->depths[i]);
    for (int i = 0; i < c->n_groupings; i++)
        REQUIRE(c->group_tokens[i] >= 1 && c->output_groups[i] >= 1,
                "grouping %d: %d group tokens, %d output groups", i, c->group_tokens[i],
                c->output_groups[i]);
    REQUIRE(c->mlp_ratio > 0 && c->embed_dim > 0 && c->proj_hidden > 0,
            "mlp_ratio %g, embed_dim %d, proj_hidden %d", c->mlp_ratio, c->embed_dim,
            c->proj_hidden);
    REQUIRE(c->gumbel_tau > 0 && c->assign_eps >= 0, "gumbel_tau %g, assign_eps %g",
            c->gumbel_tau, c->assign_eps);
    REQUIRE(c->text_heads > 0 && c->text_width % c->text_heads == 0 && c->text_layers >= 1 &&
                c->context_length >= 2 && c->vocab_size >= 3,
            "text: width %d, heads %d, layers %d, context %d, vocab %d", c->text_width,
            c->text_heads, c->text_layers, c->context_length, c->vocab_size);
    return VLP_OK;
#undef REQUIRE
}

static void register_all(vlp_groupvit *m) {
    const vlp_groupvit_config *cfg = &m->cfg;
    vlp_params *p = &m->params;
    int C = cfg->width, P = cfg->patch_size;
    m->grid = cfg->image_size / P;
    m->patch_proj.weight = add(p, 4, (int[]){C, 3, P, P}, "img_encoder.patch_embed.proj.weight");
    m->patch_proj.bias = add(p, 1, (int[]){C}, "img_encoder.patch_embed.proj.bias");
    vlp_ln_register(&m->patch_norm, p, "img_encoder.patch_embed.norm", C);
    m->pos_embed = add(p, 3, (int[]){1, m->grid * m->grid, C}, "img_encoder.pos_embed");
    for (int i = 0; i <= cfg->n_groupings; i++) {
        vlp_groupvit_layer *l = &m->layers[i];
        char prefix[VLP_PARAM_NAME_MAX], name[VLP_PARAM_NAME_MAX];
        snprintf(prefix, sizeof prefix, "img_encoder.layers.%d", i);
        if (i < cfg->n_groupings) {
            l->n_group_tokens = cfg->group_tokens[i];
            l->group_token = add(p, 3, (int[]){1, l->n_group_tokens, C}, "%s.group_token", prefix);
        }
        /* The previous layer's group tokens feed this layer's, through
         * LN and an MLP over tokens (hidden C/2), as GroupViT's group_projector. */
        l->has_projector = i > 0 && i < cfg->n_groupings;
        if (l->has_projector) {
            vlp_ln_register(&l->projector_norm, p, join(name, prefix, "group_projector.0"), C);
            mlp_register(&l->projector_mlp, p, join(name, prefix, "group_projector.1"),
                         cfg->group_tokens[i - 1], C / 2, l->n_group_tokens);
        }
        vlp_transformer_register_named(&l->blocks, p, prefix, C, cfg->depths[i], cfg->heads,
                                       (int)(cfg->mlp_ratio * C), VLP_ACTIVATION_GELU,
                                       VLP_BLOCK_NAMES_TIMM);
        l->has_grouping = i < cfg->n_groupings;
        if (l->has_grouping)
            vlp_groupvit_grouping_register(&l->downsample, p, join(name, prefix, "downsample"), C,
                                           cfg->group_tokens[i], cfg->output_groups[i],
                                           cfg->heads, cfg->gumbel_tau, cfg->assign_eps);
    }
    vlp_ln_register(&m->norm, p, "img_encoder.norm", C);
    vlp_mlp_register(&m->img_projector, p, "img_projector", 2,
                     (int[]){C, cfg->proj_hidden, cfg->embed_dim}, VLP_ACTIVATION_RELU);
    /* The CLIP text tower of GroupViT: QuickGELU, MLP 4x. */
    vlp_text_config tc = {.vocab_size = cfg->vocab_size, .context_length = cfg->context_length,
                          .width = cfg->text_width, .layers = cfg->text_layers,
                          .heads = cfg->text_heads, .mlp_width = 4 * cfg->text_width,
                          .output_dim = cfg->embed_dim, .act = VLP_ACTIVATION_QUICK_GELU};
    vlp_text_register(&m->text, p, "text_encoder", &tc);
    m->logit_scale = add(p, 1, (int[]){1}, "logit_scale");
    m->multi_label_logit_scale = add(p, 1, (int[]){1}, "multi_label_logit_scale");
}

/* GroupViT's _init_weights over the image tower: every Linear N(0, 0.02)
 * (timm's trunc_normal_ cuts at +-2, a hundred std away), biases 0,
 * LayerNorms 1 and 0; pos_embed and the first group tokens N(0, 0.02), the
 * projected ones 0; the patch convolution keeps torch's default. */
static void init_image_tower(vlp_groupvit *m, vlp_rng *rng) {
    for (int i = 0; i < m->params.count; i++) {
        vlp_param *e = &m->params.table[i];
        if (strncmp(e->name, "img_encoder.", 12) != 0) continue;
        size_t len = strlen(e->name);
        bool is_weight = len > 7 && strcmp(e->name + len - 7, ".weight") == 0;
        if (e->t->ndim == 2 || e->t->ndim == 3)
            vlp_rng_fill_normal(rng, e->t->data, e->t->n, 0.0f, 0.02f);
        else
            for (long j = 0; j < e->t->n; j++) e->t->data[j] = is_weight ? 1.0f : 0.0f;
    }
    for (int i = 1; i < m->cfg.n_groupings; i++)
        memset(m->layers[i].group_token->data, 0, (size_t)m->layers[i].group_token->n * sizeof(float));
    float bound = 1.0f / sqrtf(3.0f * m->cfg.patch_size * m->cfg.patch_size);
    vlp_rng_fill_uniform(rng, m->patch_proj.weight->data, m->patch_proj.weight->n, -bound, bound);
    vlp_rng_fill_uniform(rng, m->patch_proj.bias->data, m->patch_proj.bias->n, -bound, bound);
}

int vlp_groupvit_init(vlp_groupvit *m, const vlp_groupvit_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    int rc = check_config(cfg);
    if (rc != VLP_OK) return rc;
    m->cfg = *cfg;
    vlp_params_init(&m->params);
    register_all(m);
    rc = vlp_params_alloc(&m->params);
    if (rc != VLP_OK) {
        vlp_groupvit_free(m);
        return rc;
    }
    vlp_rng root, init;
    vlp_rng_init(&root, seed);
    init = vlp_rng_split(&root, VLP_RNG_STREAM_INIT);
    vlp_rng img = vlp_rng_split(&init, 1), txt = vlp_rng_split(&init, 2), proj = vlp_rng_split(&init, 3);
    init_image_tower(m, &img);
    vlp_text_init(&m->text, &txt);
    vlp_mlp_init_weights(&m->img_projector, &proj);
    m->logit_scale->data[0] = logf(1.0f / 0.07f);
    m->multi_label_logit_scale->data[0] = logf(1.0f / 0.07f);
    return VLP_OK;
}

void vlp_groupvit_free(vlp_groupvit *m) { vlp_params_free(&m->params); }

/* ---- forward ------------------------------------------------------------------ */

static vlp_tensor *linear(vlp_tape *t, vlp_tensor *x, const vlp_groupvit_linear *l) {
    return vlp_op_linear(t, x, l->weight, l->bias);
}

/* residual + mlp(x); residual NULL: mlp(x). */
static vlp_tensor *mlp(vlp_tape *t, const vlp_groupvit_mlp *m, vlp_tensor *x, vlp_tensor *residual) {
    if (residual)
        return vlp_op_mlp_residual(t, x, m->fc1.weight, m->fc1.bias, m->fc2.weight, m->fc2.bias,
                                   residual, VLP_ACTIVATION_GELU);
    vlp_tensor *h = vlp_op_linear_activation(t, x, m->fc1.weight, m->fc1.bias, VLP_ACTIVATION_GELU);
    return linear(t, h, &m->fc2);
}

/* x (B, S, C) -> (B, S', C): the MLP mixes tokens, not channels. */
static vlp_tensor *token_mlp(vlp_tape *t, const vlp_groupvit_mlp *m, vlp_tensor *x) {
    return vlp_op_transpose(t, mlp(t, m, vlp_op_transpose(t, x), NULL));
}

vlp_tensor *vlp_groupvit_grouping_logits(const vlp_groupvit_grouping *g, vlp_tape *t,
                                         vlp_tensor *x, vlp_tensor *groups, vlp_tensor **xn,
                                         vlp_tensor **queries) {
    VLP_ASSERT(x->ndim == 3 && groups->ndim == 3 && groups->shape[1] == g->in_groups,
               "grouping block of %d groups", g->in_groups);
    int C = x->shape[2];
    *xn = vlp_ln_forward(&g->norm_x, t, x);
    vlp_tensor *q = token_mlp(t, &g->mlp_inter, vlp_ln_forward(&g->norm_tokens, t, groups));
    q = vlp_ln_forward(&g->norm_post_tokens, t, q); /* (B, S_out, C) */
    /* pre_assign_attn: the queries look at the patches first (post-norm block) */
    vlp_tensor *h = vlp_op_attention(t, linear(t, q, &g->pre_attn.q_proj),
                                     linear(t, *xn, &g->pre_attn.k_proj),
                                     linear(t, *xn, &g->pre_attn.v_proj), g->heads, false, NULL);
    q = vlp_op_linear_residual(t, h, g->pre_attn.proj.weight, g->pre_attn.proj.bias, q);
    q = mlp(t, &g->pre_mlp, vlp_ln_forward(&g->pre_norm2, t, q), q);
    *queries = vlp_ln_forward(&g->pre_norm_post, t, q);
    /* AssignAttention, one head: q from the queries, k from the patches */
    vlp_tensor *aq = linear(t, *queries, &g->assign.q_proj), *ak = linear(t, *xn, &g->assign.k_proj);
    return vlp_op_mul_const(t, vlp_op_matmul(t, aq, ak, false, true), 1.0f / sqrtf((float)C));
}

vlp_tensor *vlp_groupvit_grouping_assign(const vlp_groupvit_grouping *g, vlp_tape *t,
                                         vlp_tensor *logits, bool train, vlp_rng *rng,
                                         const float *noise, vlp_tensor **soft) {
    /* Softmax over the group axis: rows are patches in the transposed logits. */
    vlp_tensor *lt = vlp_op_transpose(t, logits); /* (B, L, S_out) */
    vlp_tensor *a;
    if (!train) {
        a = vlp_op_transpose(t, vlp_op_softmax(t, lt));
        if (soft) *soft = a;
        return a;
    }
    if (noise) { /* (B, S_out, L) like the logits: transposed as they are */
        vlp_tensor *n = vlp_tape_wrap(t, (float *)noise, logits->ndim, logits->shape);
        a = vlp_op_gumbel_softmax_noise(t, lt, g->tau, true, vlp_op_transpose(t, n)->data);
    } else {
        a = vlp_op_gumbel_softmax(t, lt, g->tau, true, rng);
    }
    if (soft) {
        vlp_tape_no_grad_begin(t);
        *soft = vlp_op_transpose(t, vlp_op_softmax(t, lt));
        vlp_tape_no_grad_end(t);
    }
    return vlp_op_transpose(t, a);
}

vlp_tensor *vlp_groupvit_grouping_apply(const vlp_groupvit_grouping *g, vlp_tape *t,
                                        vlp_tensor *assign, vlp_tensor *xn, vlp_tensor *queries) {
    /* Each group averages the patches it takes: divided by its total + eps. */
    vlp_tensor *a = vlp_op_sum_normalize(t, assign, g->eps);
    vlp_tensor *out = vlp_op_matmul(t, a, linear(t, xn, &g->assign.v_proj), false, false);
    vlp_tensor *x = vlp_op_linear_residual(t, out, g->assign.proj.weight, g->assign.proj.bias, queries);
    return mlp(t, &g->mlp_channels, vlp_ln_forward(&g->norm_new_x, t, x), x);
}

vlp_tensor *vlp_groupvit_grouping_forward(const vlp_groupvit_grouping *g, vlp_tape *t,
                                          vlp_tensor *x, vlp_tensor *groups, bool train,
                                          vlp_rng *rng, const float *noise, vlp_tensor **soft) {
    vlp_tensor *xn, *queries;
    vlp_tensor *logits = vlp_groupvit_grouping_logits(g, t, x, groups, &xn, &queries);
    vlp_tensor *a = vlp_groupvit_grouping_assign(g, t, logits, train, rng, noise, soft);
    return vlp_groupvit_grouping_apply(g, t, a, xn, queries);
}

vlp_tensor *vlp_groupvit_encode_groups(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                       const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign) {
    const vlp_groupvit_config *cfg = &m->cfg;
    int S = cfg->image_size, C = cfg->width, P = cfg->patch_size, L = m->grid * m->grid;
    VLP_ASSERT(images->ndim == 4 && images->shape[1] == 3 && images->shape[2] == S &&
                   images->shape[3] == S,
               "GroupViT expects images (B, 3, %d, %d)", S, S);
    int B = images->shape[0];
    vlp_tensor *w = vlp_op_reshape(t, m->patch_proj.weight, 2, (int[]){C, 3 * P * P});
    vlp_tensor *x = vlp_op_linear(t, vlp_vit_patchify(t, images, P), w, m->patch_proj.bias);
    x = vlp_ln_forward(&m->patch_norm, t, x);
    x = vlp_op_add(t, x, vlp_op_reshape(t, m->pos_embed, 2, (int[]){L, C}));
    vlp_tensor *prev_groups = NULL;
    for (int i = 0; i <= cfg->n_groupings; i++) {
        const vlp_groupvit_layer *l = &m->layers[i];
        int n = x->shape[1], G = l->n_group_tokens;
        vlp_tensor *groups = NULL;
        if (G > 0) {
            vlp_tensor *token = vlp_op_reshape(t, l->group_token, 2, (int[]){G, C});
            vlp_tensor *base = l->has_projector
                                   ? token_mlp(t, &l->projector_mlp,
                                               vlp_ln_forward(&l->projector_norm, t, prev_groups))
                                   : vlp_tape_zeros(t, 3, (int[]){B, G, C});
            groups = vlp_op_add(t, base, token);
            x = vlp_op_concat(t, 2, (vlp_tensor *[]){x, groups}, 1);
        }
        x = vlp_transformer_forward(&l->blocks, t, x, false, NULL);
        if (G > 0) {
            groups = vlp_op_slice(t, x, 1, n, G);
            x = vlp_op_slice(t, x, 1, 0, n);
        }
        if (l->has_grouping) {
            vlp_tensor **soft = assign ? &assign[i] : NULL;
            x = vlp_groupvit_grouping_forward(&l->downsample, t, x, groups, gumbel != NULL,
                                              gumbel ? gumbel->rng : NULL,
                                              gumbel ? gumbel->noise[i] : NULL, soft);
        }
        prev_groups = groups;
    }
    return vlp_ln_forward(&m->norm, t, x);
}

vlp_tensor *vlp_groupvit_encode_image_groups(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                             const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign,
                                             vlp_tensor **groups) {
    vlp_tensor *x = vlp_groupvit_encode_groups(m, t, images, gumbel, assign);
    if (groups) *groups = vlp_op_l2_normalize(t, vlp_mlp_forward(&m->img_projector, t, x));
    x = vlp_op_mean_last(t, vlp_op_transpose(t, x)); /* mean of the final groups, (B, C) */
    return vlp_op_l2_normalize(t, vlp_mlp_forward(&m->img_projector, t, x));
}

vlp_tensor *vlp_groupvit_encode_image(const vlp_groupvit *m, vlp_tape *t, vlp_tensor *images,
                                      const vlp_groupvit_gumbel *gumbel, vlp_tensor **assign) {
    return vlp_groupvit_encode_image_groups(m, t, images, gumbel, assign, NULL);
}

vlp_tensor *vlp_groupvit_encode_text(const vlp_groupvit *m, vlp_tape *t, const int *ids, int n) {
    return vlp_op_l2_normalize(t, vlp_text_forward(&m->text, t, ids, n));
}

/* ---- loss ---------------------------------------------------------------------- */

vlp_tensor *vlp_groupvit_multi_label_loss(vlp_tape *t, vlp_tensor *img, vlp_tensor *prompts,
                                          vlp_tensor *img_all, vlp_tensor *prompts_all,
                                          vlp_tensor *logit_scale, int offset) {
    int B = img->shape[0], N = img_all->shape[0], K = prompts->shape[0] / B;
    VLP_ASSERT(K >= 1 && prompts->shape[0] == B * K && prompts_all->shape[0] == N * K &&
                   offset >= 0 && offset + B <= N,
               "multi-label loss: %d images with %d prompts at offset %d of %d with %d",
               B, prompts->shape[0], offset, N, prompts_all->shape[0]);
    vlp_tensor *scale = vlp_op_exp(t, logit_scale);
    /* image i against every prompt: its own K share the target */
    vlp_tensor *li = vlp_op_scale(t, vlp_op_matmul(t, img, prompts_all, false, true), scale);
    vlp_tensor *q = vlp_tape_zeros(t, 2, (int[]){B, N * K});
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) q->data[(long)i * N * K + (long)(offset + i) * K + k] = 1.0f / K;
    /* each prompt against every image: one positive, its own */
    vlp_tensor *lt = vlp_op_scale(t, vlp_op_matmul(t, prompts, img_all, false, true), scale);
    int *labels = vlp_tape_alloc(t, (size_t)B * K * sizeof *labels);
    for (int r = 0; r < B * K; r++) labels[r] = offset + r / K;
    vlp_tensor *loss = vlp_op_add(t, vlp_op_cross_entropy_soft(t, li, q),
                                  vlp_op_cross_entropy(t, lt, labels, -1, 0.0f));
    return vlp_op_mul_const(t, loss, 0.5f);
}

vlp_tensor *vlp_groupvit_group_loss(vlp_tape *t, vlp_tensor *groups, vlp_tensor *prompts_all, int K,
                                    vlp_tensor *logit_scale, int offset) {
    int B = groups->shape[0], G = groups->shape[1], D = groups->shape[2], M = prompts_all->shape[0];
    VLP_ASSERT(groups->ndim == 3 && prompts_all->shape[1] == D && K >= 1 && M % K == 0 && offset >= 0 &&
                   (offset + B) * K <= M,
               "group loss: groups (%d, %d, %d) against %d prompts, %d per image, at offset %d",
               B, G, D, M, K, offset);
    vlp_tensor *scale = vlp_op_exp(t, logit_scale);
    vlp_tensor *flat = vlp_op_reshape(t, groups, 2, (int[]){B * G, D});
    vlp_tensor *sim = vlp_op_matmul(t, flat, prompts_all, false, true);           /* (B G, M) */
    sim = vlp_op_transpose(t, vlp_op_reshape(t, sim, 3, (int[]){B, G, M})); /* (B, M, G) */
    vlp_tensor *w = vlp_op_softmax(t, vlp_op_scale(t, sim, scale));
    vlp_tensor *score = vlp_op_sum_last(t, vlp_op_mul(t, w, sim)); /* (B, M) */
    vlp_tensor *q = vlp_tape_zeros(t, 2, (int[]){B, M});
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) q->data[(long)i * M + (long)(offset + i) * K + k] = 1.0f / K;
    return vlp_op_cross_entropy_soft(t, vlp_op_scale(t, score, scale), q);
}

vlp_tensor *vlp_groupvit_loss(const vlp_groupvit *m, vlp_tape *t,
                              const vlp_groupvit_embeddings *local,
                              const vlp_groupvit_embeddings *all, int offset) {
    vlp_tensor *loss = vlp_clip_loss(t, local->img, local->txt, all->img, all->txt,
                                     m->logit_scale, offset, NULL, NULL);
    if (!local->prompts) return loss;
    vlp_tensor *ml = vlp_groupvit_multi_label_loss(t, local->img, local->prompts, all->img,
                                                   all->prompts, m->multi_label_logit_scale, offset);
    loss = vlp_op_add(t, loss, vlp_op_mul_const(t, ml, m->cfg.multi_label_weight));
    if (!local->groups) return loss;
    int K = local->prompts->shape[0] / local->img->shape[0];
    vlp_tensor *gl = vlp_groupvit_group_loss(t, local->groups, all->prompts, K, m->multi_label_logit_scale,
                                             offset);
    return vlp_op_add(t, loss, vlp_op_mul_const(t, gl, m->cfg.group_weight));
}

void vlp_groupvit_clamp_logit_scales(vlp_groupvit *m) {
    vlp_tensor *s[] = {m->logit_scale, m->multi_label_logit_scale};
    for (int i = 0; i < 2; i++) s[i]->data[0] = fminf(fmaxf(s[i]->data[0], 0.0f), logf(100.0f));
}
