/* GroupViT: finite-difference checks of the grouping block (the soft path,
 * and the straight-through path against a surrogate with fixed Gumbel
 * noise), of the whole tiny model's loss, of the loss's local-rows form;
 * and parity with the PyTorch reference (scripts/groupvit_ref.py): the same
 * weights, inputs and noise must give the same embeddings, assignments and
 * losses (to 1e-5) and every parameter gradient (to 1e-4), in training mode
 * (hard assignment) and in evaluation mode (soft). The golden file is the
 * committed tests/golden/groupvit_tiny.h5, or VLP_GROUPVIT_GOLDEN_DIR's. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "autograd/gradcheck.h"
#include "golden.h"
#include "models/clip.h"
#include "models/groupvit.h"
#include "testutil.h"
#include "train/weights.h"

/* ---- the grouping block alone -------------------------------------------------- */

enum { GB = 2, GL = 6, GC = 8, GS_IN = 4, GS_OUT = 3 };

typedef struct block_case {
    vlp_params params;
    vlp_groupvit_grouping g;
    vlp_tensor *x, *groups;          /* inputs, checked like the weights */
    float noise[GB * GS_OUT * GL];   /* (B, S_out, L), the model's layout */
    float offset[GB * GL * GS_OUT];  /* H0 - S0 at the base point, (B, L, S_out) */
} block_case;

static block_case *block_case_new(void) {
    block_case *c = calloc(1, sizeof *c);
    vlp_params_init(&c->params);
    vlp_groupvit_grouping_register(&c->g, &c->params, "downsample", GC, GS_IN, GS_OUT, 2, 1.0f, 1.0f);
    c->x = vlp_params_add(&c->params, "x", 3, (int[]){GB, GL, GC});
    c->groups = vlp_params_add(&c->params, "groups", 3, (int[]){GB, GS_IN, GC});
    ck_assert_int_eq(vlp_params_alloc(&c->params), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 21);
    /* Weights of unit-scale outputs, LayerNorm gains around 1. */
    vlp_rng_fill_normal(&rng, c->params.data, (long)c->params.n, 0.0f, 0.4f);
    for (int i = 0; i < c->params.count; i++)
        if (strstr(c->params.table[i].name, "norm") && strstr(c->params.table[i].name, ".weight"))
            for (long j = 0; j < c->params.table[i].t->n; j++) c->params.table[i].t->data[j] += 1.0f;
    vlp_rng_fill_normal(&rng, c->x->data, c->x->n, 0.0f, 1.0f);
    vlp_rng_fill_normal(&rng, c->groups->data, c->groups->n, 0.0f, 1.0f);
    for (int i = 0; i < GB * GS_OUT * GL; i++) /* Gumbel(0, 1) */
        c->noise[i] = -logf(-logf(0.001f + 0.998f * vlp_rng_uniform(&rng)));
    return c;
}

static void block_case_free(block_case *c) {
    vlp_params_free(&c->params);
    free(c);
}

static vlp_tensor *f_block_soft(vlp_tape *t, void *ctx) {
    block_case *c = ctx;
    return vlp_groupvit_grouping_forward(&c->g, t, c->x, c->groups, false, NULL, NULL, NULL);
}

static vlp_tensor *f_block_hard(vlp_tape *t, void *ctx) {
    block_case *c = ctx;
    return vlp_groupvit_grouping_forward(&c->g, t, c->x, c->groups, true, NULL, c->noise, NULL);
}

/* The straight-through estimator is the true gradient of the surrogate
 * y_soft(theta) + (y_hard - y_soft)(theta0): the one-hot and the soft
 * assignment frozen at the base point, so that finite differences see the
 * soft path's slope through the hard path's values. */
static vlp_tensor *f_block_surrogate(vlp_tape *t, void *ctx) {
    block_case *c = ctx;
    vlp_tensor *xn, *queries;
    vlp_tensor *logits = vlp_groupvit_grouping_logits(&c->g, t, c->x, c->groups, &xn, &queries);
    vlp_tensor *lt = vlp_op_transpose(t, logits); /* (B, L, S_out): groups last */
    float noise_t[GB * GL * GS_OUT];
    for (int b = 0; b < GB; b++)
        for (int s = 0; s < GS_OUT; s++)
            for (int l = 0; l < GL; l++)
                noise_t[(b * GL + l) * GS_OUT + s] = c->noise[(b * GS_OUT + s) * GL + l];
    vlp_tensor *y = vlp_op_gumbel_softmax_noise(t, lt, 1.0f, false, noise_t);
    vlp_tensor *offset = vlp_tape_wrap(t, c->offset, 3, (int[]){GB, GL, GS_OUT});
    vlp_tensor *a = vlp_op_transpose(t, vlp_op_add(t, y, offset));
    return vlp_groupvit_grouping_apply(&c->g, t, a, xn, queries);
}

/* Three tensors have a zero gradient by symmetry: mlp_inter.fc2.bias (a
 * LayerNorm over channels follows), pre_assign_attn's k_proj.bias (a softmax
 * over keys) and assign.q_proj.bias (a softmax over groups). Their float32
 * finite differences, ~1e-4, are measured against the gradients' scale
 * (floor 1; the others reach 1 to 10), not against zero. Step 5e-3
 * balances the truncation of curved paths against float32 rounding. */
#define BLOCK_OPTS {.tol = 1e-3, .floor = 1.0, .seed = 4, .step = 5e-3}

START_TEST(test_grouping_soft_gradcheck) {
    block_case *c = block_case_new();
    vlp_gradcheck_opts opts = BLOCK_OPTS;
    vlp_test_gradcheck(&c->params, f_block_soft, c, &opts, "grouping block, soft assignment",
                       c->params.count);
    block_case_free(c);
}
END_TEST

START_TEST(test_grouping_straight_through_gradcheck) {
    block_case *c = block_case_new();
    /* The base point's one-hot and soft assignments, (B, L, S_out). */
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *xn, *queries;
    vlp_tensor *logits = vlp_groupvit_grouping_logits(&c->g, &t, c->x, c->groups, &xn, &queries);
    vlp_tensor *lt = vlp_op_transpose(&t, logits);
    vlp_tensor *nt = vlp_op_transpose(&t, vlp_tape_wrap(&t, c->noise, 3, (int[]){GB, GS_OUT, GL}));
    vlp_tensor *hard = vlp_op_gumbel_softmax_noise(&t, lt, 1.0f, true, nt->data);
    vlp_tensor *soft = vlp_op_gumbel_softmax_noise(&t, lt, 1.0f, false, nt->data);
    int groups_taken = 0;
    for (int i = 0; i < GB * GL * GS_OUT; i++) {
        c->offset[i] = hard->data[i] - soft->data[i];
        groups_taken += hard->data[i] == 1.0f;
    }
    ck_assert_int_eq(groups_taken, GB * GL); /* one group per patch */
    vlp_tape_reset(&t);

    /* The surrogate's gradient is right ... */
    vlp_gradcheck_opts opts = BLOCK_OPTS;
    vlp_test_gradcheck(&c->params, f_block_surrogate, c, &opts,
                       "grouping block, straight-through surrogate", c->params.count);

    /* ... and the model's hard path has the surrogate's value and gradient. */
    float r[GB * GS_OUT * GC];
    vlp_rng rng;
    vlp_rng_init(&rng, 8);
    vlp_rng_fill_uniform(&rng, r, GB * GS_OUT * GC, -1.0f, 1.0f);
    float *want = malloc(c->params.n * sizeof *want);
    double scale = 0, err = 0, value_err = 0;
    float surrogate_out[GB * GS_OUT * GC];
    for (int pass = 0; pass < 2; pass++) {
        vlp_params_zero_grad(&c->params);
        vlp_tensor *y = pass == 0 ? f_block_surrogate(&t, c) : f_block_hard(&t, c);
        vlp_tape_backward(&t, y, r);
        for (size_t i = 0; i < c->params.n; i++) {
            if (pass == 0) want[i] = c->params.grad[i], scale = fmax(scale, fabs(want[i]));
            else err = fmax(err, fabs(c->params.grad[i] - want[i]));
        }
        for (int i = 0; i < GB * GS_OUT * GC; i++) {
            if (pass == 0) surrogate_out[i] = y->data[i];
            else value_err = fmax(value_err, fabs(y->data[i] - surrogate_out[i]));
        }
        vlp_tape_reset(&t);
    }
    printf("hard path vs surrogate: value error %.2e, gradient error %.2e of %.2e\n", value_err,
           err, scale);
    ck_assert_double_gt(scale, 1e-2);
    ck_assert_double_le(value_err, 1e-5);
    ck_assert_double_le(err, 1e-5 * scale);

    /* Not the soft path's gradient: the hard values change it. */
    vlp_params_zero_grad(&c->params);
    vlp_tape_backward(&t, f_block_soft(&t, c), r);
    double diff = 0;
    for (size_t i = 0; i < c->params.n; i++) diff = fmax(diff, fabs(c->params.grad[i] - want[i]));
    ck_assert_double_gt(diff, 1e-2 * scale);
    vlp_tape_free(&t);
    free(want);
    block_case_free(c);
}
END_TEST

/* The assignment's axis: in training every patch goes to exactly one group
 * (its column of the (B, S_out, L) assignment is one-hot), whatever noise
 * the generator draws; at evaluation each patch's column is a distribution
 * over the groups, and it is the soft assignment returned in training. */
START_TEST(test_assignment_axis) {
    block_case *c = block_case_new();
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *xn, *queries;
    vlp_tensor *logits = vlp_groupvit_grouping_logits(&c->g, &t, c->x, c->groups, &xn, &queries);
    vlp_rng rng;
    vlp_rng_init(&rng, 3);
    vlp_tensor *soft_train, *soft_eval;
    vlp_tensor *hard = vlp_groupvit_grouping_assign(&c->g, &t, logits, true, &rng, NULL, &soft_train);
    vlp_tensor *soft = vlp_groupvit_grouping_assign(&c->g, &t, logits, false, NULL, NULL, &soft_eval);
    ck_assert_ptr_eq(soft, soft_eval);
    int differs = 0;
    for (int b = 0; b < GB; b++)
        for (int l = 0; l < GL; l++) {
            float ones = 0, sum = 0;
            int best = 0;
            for (int s = 0; s < GS_OUT; s++) {
                long i = ((long)b * GS_OUT + s) * GL + l;
                ck_assert(hard->data[i] == 0.0f || hard->data[i] == 1.0f);
                ones += hard->data[i];
                sum += soft->data[i];
                ck_assert_float_eq(soft_train->data[i], soft->data[i]);
                if (soft->data[i] > soft->data[((long)b * GS_OUT + best) * GL + l]) best = s;
            }
            ck_assert_float_eq(ones, 1.0f);
            ck_assert_float_eq_tol(sum, 1.0f, 1e-6f);
            differs += hard->data[((long)b * GS_OUT + best) * GL + l] != 1.0f;
        }
    ck_assert_int_gt(differs, 0); /* the noise moved some patch off its best group */
    vlp_tape_free(&t);
    block_case_free(c);
}
END_TEST

/* ---- the whole tiny model ---------------------------------------------------------- */

enum { TB = 3, TK = 2, TS = 8, TCTX = 6 };

static const vlp_groupvit_config tiny_config = {
    .embed_dim = 6, .image_size = TS, .patch_size = 2, .width = 8, .heads = 2, .mlp_ratio = 2.0f,
    .n_groupings = 2, .depths = {1, 1, 1}, .group_tokens = {4, 3}, .output_groups = {4, 2},
    .proj_hidden = 6, .gumbel_tau = 1.0f, .assign_eps = 1.0f, .vocab_size = 20,
    .context_length = TCTX, .text_width = 8, .text_layers = 1, .text_heads = 2,
    .multi_label_weight = 0.7f};

typedef struct tiny {
    vlp_groupvit m;
    float images[TB * 3 * TS * TS];
    int captions[TB * TCTX], prompts[TB * TK * TCTX];
} tiny;

static void tiny_text(int *ids, int n, vlp_rng *rng) {
    for (int i = 0; i < n; i++) {
        int len = 1 + (int)vlp_rng_below(rng, TCTX - 2);
        int *row = ids + i * TCTX;
        memset(row, 0, TCTX * sizeof *row);
        row[0] = 18;
        for (int j = 1; j <= len; j++) row[j] = 1 + (int)vlp_rng_below(rng, 16);
        row[len + 1] = 19;
    }
}

static vlp_tensor *tiny_loss(vlp_tape *t, void *ctx) {
    tiny *c = ctx;
    vlp_tensor *images = vlp_tape_tensor(t, 4, (int[]){TB, 3, TS, TS});
    memcpy(images->data, c->images, sizeof c->images);
    vlp_groupvit_embeddings e = {
        .img = vlp_groupvit_encode_image(&c->m, t, images, NULL, NULL),
        .txt = vlp_groupvit_encode_text(&c->m, t, c->captions, TB),
        .prompts = vlp_groupvit_encode_text(&c->m, t, c->prompts, TB * TK)};
    return vlp_groupvit_loss(&c->m, t, &e, &e, 0);
}

/* Evaluation mode (the soft assignment): the hard one is piecewise
 * constant, its straight-through gradient is the block test's business and
 * the reference's. */
START_TEST(test_whole_model_gradcheck) {
    static tiny c;
    ck_assert_int_eq(vlp_groupvit_init(&c.m, &tiny_config, 5), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 11);
    vlp_rng_fill_normal(&rng, c.images, TB * 3 * TS * TS, 0.0f, 1.0f);
    /* Larger weights than the init make every gradient big enough to measure. */
    vlp_rng_fill_normal(&rng, c.m.params.data, (long)c.m.params.n, 0.0f, 0.5f);
    c.m.logit_scale->data[0] = 1.0f;
    c.m.multi_label_logit_scale->data[0] = 0.5f;
    tiny_text(c.captions, TB, &rng);
    tiny_text(c.prompts, TB * TK, &rng);
    vlp_gradcheck_opts opts = {.tol = 5e-3, .max_per_tensor = 4, .seed = 3, .step = 1e-2};
    vlp_test_gradcheck(&c.m.params, tiny_loss, &c, &opts, "whole GroupViT loss", c.m.params.count);
    vlp_groupvit_free(&c.m);
}
END_TEST

/* ---- the loss for local rows ------------------------------------------------------- */

enum { LW = 2, LB = 3, LK = 2, LD = 5, LG = 3 };

typedef struct loss_case {
    vlp_params params;
    vlp_tensor *img, *txt, *prompts, *groups, *scale, *ml_scale; /* global (N = W B) rows */
    int rank;                                            /* -1: the whole batch */
} loss_case;

/* The loss rank `rank` computes: its rows against the global ones, divided
 * by W so that the sum over ranks is the whole batch's mean. */
static vlp_tensor *f_loss(vlp_tape *t, void *ctx) {
    loss_case *c = ctx;
    vlp_groupvit_embeddings all = {c->img, c->txt, c->prompts, c->groups}, local = all;
    int offset = 0;
    if (c->rank >= 0) {
        offset = c->rank * LB;
        local.img = vlp_op_slice(t, c->img, 0, offset, LB);
        local.txt = vlp_op_slice(t, c->txt, 0, offset, LB);
        local.prompts = vlp_op_slice(t, c->prompts, 0, offset * LK, LB * LK);
        local.groups = vlp_op_slice(t, c->groups, 0, offset, LB);
    }
    vlp_tensor *loss = vlp_clip_loss(t, local.img, local.txt, all.img, all.txt, c->scale, offset,
                                     NULL, NULL);
    vlp_tensor *ml = vlp_groupvit_multi_label_loss(t, local.img, local.prompts, all.img,
                                                   all.prompts, c->ml_scale, offset);
    loss = vlp_op_add(t, loss, ml);
    vlp_tensor *gl = vlp_groupvit_group_loss(t, local.groups, all.prompts, LK, c->ml_scale, offset);
    loss = vlp_op_add(t, loss, gl);
    return c->rank >= 0 ? vlp_op_mul_const(t, loss, 1.0f / LW) : loss;
}

START_TEST(test_loss_local_rows) {
    loss_case c = {.rank = -1};
    vlp_params_init(&c.params);
    c.img = vlp_params_add(&c.params, "img", 2, (int[]){LW * LB, LD});
    c.txt = vlp_params_add(&c.params, "txt", 2, (int[]){LW * LB, LD});
    c.prompts = vlp_params_add(&c.params, "prompts", 2, (int[]){LW * LB * LK, LD});
    c.groups = vlp_params_add(&c.params, "groups", 3, (int[]){LW * LB, LG, LD});
    c.scale = vlp_params_add(&c.params, "logit_scale", 1, (int[]){1});
    c.ml_scale = vlp_params_add(&c.params, "multi_label_logit_scale", 1, (int[]){1});
    ck_assert_int_eq(vlp_params_alloc(&c.params), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 2);
    vlp_rng_fill_normal(&rng, c.params.data, (long)c.params.n, 0.0f, 0.7f);
    c.scale->data[0] = 0.8f;
    c.ml_scale->data[0] = 1.2f;

    /* Its gradient, finite differences ... */
    vlp_gradcheck_opts opts = {.tol = 1e-3, .seed = 6};
    vlp_test_gradcheck(&c.params, f_loss, &c, &opts, "GroupViT loss (caption + multi-label + group)",
                       c.params.count);

    /* ... and the W ranks' local losses add up to the whole batch's, their
     * gradients to its gradient. */
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_params_zero_grad(&c.params);
    vlp_tensor *whole = f_loss(&t, &c);
    float want_loss = whole->data[0];
    vlp_tape_backward(&t, whole, NULL);
    float *want = malloc(c.params.n * sizeof *want);
    memcpy(want, c.params.grad, c.params.n * sizeof *want);
    vlp_tape_reset(&t);
    vlp_params_zero_grad(&c.params);
    float sum = 0;
    for (c.rank = 0; c.rank < LW; c.rank++) {
        vlp_tensor *l = f_loss(&t, &c);
        sum += l->data[0];
        vlp_tape_backward(&t, l, NULL);
        vlp_tape_reset(&t);
    }
    double err = 0, scale = 0;
    for (size_t i = 0; i < c.params.n; i++) {
        err = fmax(err, fabs(c.params.grad[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    printf("%d ranks of %d rows: loss %.7f vs %.7f, gradient error %.2e of %.2e\n", LW, LB, sum,
           want_loss, err, scale);
    ck_assert_float_eq_tol(sum, want_loss, 1e-5f * fabsf(want_loss));
    ck_assert_double_le(err, 1e-5 * scale);
    free(want);
    vlp_tape_free(&t);
    vlp_params_free(&c.params);
}
END_TEST

START_TEST(test_config_errors) {
    vlp_groupvit m;
    vlp_groupvit_config cfg = tiny_config;
    cfg.image_size = 9;
    ck_assert_int_eq(vlp_groupvit_init(&m, &cfg, 1), VLP_EINVAL);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "patch_size"));
    cfg = tiny_config;
    cfg.output_groups[1] = 0;
    ck_assert_int_eq(vlp_groupvit_init(&m, &cfg, 1), VLP_EINVAL);
    ck_assert_ptr_nonnull(strstr(vlp_error_message(), "output groups"));
    cfg = tiny_config;
    cfg.n_groupings = VLP_GROUPVIT_MAX_GROUPINGS + 1;
    ck_assert_int_eq(vlp_groupvit_init(&m, &cfg, 1), VLP_EINVAL);
}
END_TEST

static void expect_std(const vlp_groupvit *m, const char *name, double mean, double std) {
    const vlp_param *e = vlp_params_find(&m->params, name);
    ck_assert_msg(e, "no parameter %s", name);
    double s = 0, s2 = 0;
    long n = e->t->n;
    for (long i = 0; i < n; i++) s += e->t->data[i], s2 += (double)e->t->data[i] * e->t->data[i];
    double mu = s / n, sd = sqrt(fmax(s2 / n - mu * mu, 0));
    printf("  %-60s mean %+.4f std %.4f (want %.4f)\n", name, mu, sd, std);
    ck_assert_msg(fabs(mu - mean) <= 5 * std / sqrt(n) + 1e-7, "%s: mean %g", name, mu);
    ck_assert_msg(fabs(sd - std) <= 0.05 * std + 1e-7, "%s: std %g, want %g", name, sd, std);
}

/* GroupViT's initialisation, on a model large enough for the statistics. */
START_TEST(test_init) {
    vlp_groupvit_config cfg = tiny_config;
    cfg.width = 64, cfg.image_size = 32, cfg.patch_size = 4, cfg.group_tokens[0] = 16;
    vlp_groupvit m;
    ck_assert_int_eq(vlp_groupvit_init(&m, &cfg, 1), VLP_OK);
    double uniform = 1 / sqrt(3.0); /* std of U(-a, a) is a / sqrt(3) */
    expect_std(&m, "img_encoder.layers.0.blocks.0.attn.qkv.weight", 0, 0.02);
    expect_std(&m, "img_encoder.layers.0.downsample.assign.k_proj.weight", 0, 0.02);
    expect_std(&m, "img_encoder.layers.0.downsample.mlp_channels.fc1.weight", 0, 0.02);
    expect_std(&m, "img_encoder.layers.0.downsample.mlp_channels.fc1.bias", 0, 0);
    expect_std(&m, "img_encoder.layers.0.downsample.norm_x.weight", 1, 0);
    expect_std(&m, "img_encoder.layers.0.group_token", 0, 0.02);
    expect_std(&m, "img_encoder.layers.1.group_token", 0, 0); /* added to the projected ones */
    expect_std(&m, "img_encoder.pos_embed", 0, 0.02);
    expect_std(&m, "img_encoder.patch_embed.proj.weight", 0, uniform / sqrt(48.0));
    expect_std(&m, "img_projector.0.weight", 0, uniform / sqrt(64.0));
    ck_assert_float_eq_tol(m.logit_scale->data[0], logf(1 / 0.07f), 1e-6f);
    ck_assert_float_eq_tol(m.multi_label_logit_scale->data[0], logf(1 / 0.07f), 1e-6f);
    vlp_groupvit_free(&m);
}
END_TEST

/* ---- parity with PyTorch ----------------------------------------------------------- */

/* config attribute `name`, an array of n ints */
static void attr_ints(hid_t f, const char *name, int *out, int n) {
    hid_t a = H5Aopen_by_name(f, "config", name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "golden config has no %s", name);
    hid_t space = H5Aget_space(a);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(space), n);
    ck_assert(H5Aread(a, H5T_NATIVE_INT, out) >= 0);
    H5Sclose(space);
    H5Aclose(a);
}

static vlp_groupvit_config golden_config(hid_t f, int *batch, int *prompts) {
#define I(name) .name = (int)attr_number(f, #name)
    vlp_groupvit_config c = {I(embed_dim), I(image_size), I(patch_size), I(width), I(heads),
                             I(n_groupings), I(proj_hidden), I(vocab_size), I(context_length),
                             I(text_width), I(text_layers), I(text_heads),
                             .mlp_ratio = (float)attr_number(f, "mlp_ratio"),
                             .gumbel_tau = (float)attr_number(f, "gumbel_tau"),
                             .assign_eps = (float)attr_number(f, "assign_eps"),
                             .multi_label_weight = (float)attr_number(f, "multi_label_weight"),
                             .group_weight = (float)attr_number(f, "group_weight")};
#undef I
    attr_ints(f, "depths", c.depths, c.n_groupings + 1);
    attr_ints(f, "group_tokens", c.group_tokens, c.n_groupings);
    attr_ints(f, "output_groups", c.output_groups, c.n_groupings);
    *batch = (int)attr_number(f, "batch");
    *prompts = (int)attr_number(f, "prompts");
    return c;
}

#define MAXN (1 << 20)
static float want[MAXN];

static void expect_dataset(hid_t f, const char *name, const vlp_tensor *got, double tol) {
    long n = read_array(f, name, H5T_NATIVE_FLOAT, want, MAXN);
    ck_assert_int_eq(n, got->n);
    expect_match(name, got->data, want, n, tol);
}

static void check_mode(hid_t f, vlp_groupvit *m, bool train, int B, int K) {
    const vlp_groupvit_config *cfg = &m->cfg;
    const char *mode = train ? "train" : "eval";
    char name[256];
    printf("%s mode\n", mode);
    static int captions[1024], prompts[4096];
    static float noise[VLP_GROUPVIT_MAX_GROUPINGS][MAXN / 16];
    vlp_tape t;
    vlp_tape_init(&t);
    int S = cfg->image_size;
    vlp_tensor *images = vlp_tape_tensor(&t, 4, (int[]){B, 3, S, S});
    read_array(f, "inputs/images", H5T_NATIVE_FLOAT, images->data, images->n);
    read_array(f, "inputs/captions", H5T_NATIVE_INT, captions, 1024);
    read_array(f, "inputs/prompts", H5T_NATIVE_INT, prompts, 4096);
    vlp_groupvit_gumbel gumbel = {0};
    for (int i = 0; i < cfg->n_groupings; i++) {
        snprintf(name, sizeof name, "inputs/noise/%d", i);
        read_array(f, name, H5T_NATIVE_FLOAT, noise[i], MAXN / 16);
        gumbel.noise[i] = noise[i];
    }
    vlp_tensor *assign[VLP_GROUPVIT_MAX_GROUPINGS];
    vlp_groupvit_embeddings e = {
        .txt = vlp_groupvit_encode_text(m, &t, captions, B),
        .prompts = vlp_groupvit_encode_text(m, &t, prompts, B * K)};
    e.img = vlp_groupvit_encode_image_groups(m, &t, images, train ? &gumbel : NULL, assign, &e.groups);
    vlp_tensor *loss = vlp_groupvit_loss(m, &t, &e, &e, 0);
    vlp_params_zero_grad(&m->params);
    vlp_tape_backward(&t, loss, NULL);

#define MATCH(what, tensor, tol) (snprintf(name, sizeof name, "%s/%s", mode, what), expect_dataset(f, name, tensor, tol))
    MATCH("image_features", e.img, 1e-5);
    MATCH("group_features", e.groups, 1e-5);
    MATCH("text_features", e.txt, 1e-5);
    MATCH("prompt_features", e.prompts, 1e-5);
    for (int i = 0; i < cfg->n_groupings; i++) {
        char what[32];
        snprintf(what, sizeof what, "assign/%d", i);
        MATCH(what, assign[i], 1e-5);
    }
    MATCH("loss", loss, 1e-5);
    vlp_tape_no_grad_begin(&t);
    MATCH("loss_caption", vlp_clip_loss(&t, e.img, e.txt, e.img, e.txt, m->logit_scale, 0, NULL, NULL), 1e-5);
    MATCH("loss_multi_label", vlp_groupvit_multi_label_loss(&t, e.img, e.prompts, e.img, e.prompts,
                                                             m->multi_label_logit_scale, 0), 1e-5);
    MATCH("loss_group", vlp_groupvit_group_loss(&t, e.groups, e.prompts, K, m->multi_label_logit_scale, 0),
          1e-5);
    vlp_tape_no_grad_end(&t);
    /* Some gradients are zero by symmetry (a bias before a LayerNorm or a
     * softmax that cancels it: mlp_inter.fc2.bias, the k bias of attention,
     * assign.q_proj.bias); both sides hold rounding noise there. Such a
     * tensor (under 1e-5 of the model's largest gradient in torch) must be
     * as small in vlp; every other matches to 1e-4 of its own scale. */
    double largest = 0, worst = 0;
    const char *worst_name = "";
    int zeros = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->params.count; i++) {
            const vlp_param *p = &m->params.table[i];
            snprintf(name, sizeof name, "%s/grads/%s", mode, p->name);
            long n = read_array(f, name, H5T_NATIVE_FLOAT, want, MAXN);
            ck_assert_int_eq(n, p->t->n);
            double ref = 0, got = 0;
            for (long j = 0; j < n; j++) ref = fmax(ref, fabs(want[j])), got = fmax(got, fabs(p->t->grad[j]));
            if (pass == 0) {
                largest = fmax(largest, ref);
            } else if (ref < 1e-5 * largest) {
                printf("  %-76s zero: torch %.1e, vlp %.1e\n", name, ref, got);
                ck_assert_msg(got < 1e-5 * largest, "%s: %g where torch has %g", name, got, ref);
                zeros++;
            } else {
                double err = expect_match(name, p->t->grad, want, n, 1e-4);
                if (err > worst) worst = err, worst_name = p->name;
            }
        }
#undef MATCH
    printf("%s: worst gradient relative error %.2e (%s) over %d tensors, %d zero by symmetry\n",
           mode, worst, worst_name, m->params.count - zeros, zeros);
    vlp_tape_free(&t);
}

START_TEST(test_golden) {
    char path[4096];
    const char *dir = getenv("VLP_GROUPVIT_GOLDEN_DIR");
    snprintf(path, sizeof path, "%s/groupvit_tiny.h5", dir ? dir : VLP_SOURCE_DIR "/tests/golden");
    printf("golden %s\n", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (run scripts/groupvit_ref.py golden)", path);
    int B, K;
    vlp_groupvit_config cfg = golden_config(f, &B, &K);
    vlp_groupvit m;
    ck_assert_int_eq(vlp_groupvit_init(&m, &cfg, 99), VLP_OK);
    int rc = vlp_weights_read(f, path, "/params", &m.params, m.params.data);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    check_mode(f, &m, true, B, K);
    check_mode(f, &m, false, B, K);
    vlp_groupvit_free(&m);
    H5Fclose(f);
}
END_TEST

VLP_SUITE(groupvit_suite, "groupvit", test_grouping_soft_gradcheck, test_grouping_straight_through_gradcheck,
          test_assignment_axis, test_whole_model_gradcheck, test_loss_local_rows, test_config_errors, test_init,
          test_golden)

VLP_TEST_MAIN(groupvit_suite)
