/* Finite-difference gradient checks, one Check case per op and variant.
 * Each case registers small random inputs as parameters, builds the op, and
 * asks vlp_gradcheck for loss = sum(r * op(x)) with random r. ctest runs
 * every case on its own (CK_RUN_CASE). The last case proves the checker
 * fails on a deliberately wrong backward. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "testutil.h"

#define GRADCHECK_CASES(X) \
    X(matmul_nn)           \
    X(matmul_nt)           \
    X(matmul_tn)           \
    X(matmul_tt)           \
    X(matmul_batched)      \
    X(matmul_batched_4d)   \
    X(matmul_shared)       \
    X(matmul_shared_ta)    \
    X(linear)              \
    X(linear_nobias)       \
    X(add)                 \
    X(add_broadcast_row)   \
    X(add_broadcast_table) \
    X(sub)                 \
    X(sub_broadcast)       \
    X(mul)                 \
    X(mul_broadcast)       \
    X(mul_same_input)      \
    X(scale)               \
    X(mul_const)           \
    X(exp)                 \
    X(reciprocal)          \
    X(sum_last)            \
    X(sum)                 \
    X(mean_last)           \
    X(mean)                \
    X(gelu)                \
    X(quick_gelu)          \
    X(relu)                \
    X(layernorm)           \
    X(softmax)             \
    X(log_softmax)         \
    X(attention_self)      \
    X(attention_shared_qkv) \
    X(attention_causal)    \
    X(attention_cross)     \
    X(attention_key_mask)  \
    X(attention_qkv)       \
    X(attention_qkv_causal) \
    X(attention_qkv_key_mask) \
    X(attention_qkv_threaded) \
    X(linear_residual)     \
    X(linear_residual_nobias) \
    X(linear_gelu)         \
    X(linear_gelu_nobias)  \
    X(linear_quick_gelu)   \
    X(linear_gelu_threaded) \
    X(mlp_residual)        \
    X(mlp_residual_nobias) \
    X(mlp_residual_quick_gelu) \
    X(mlp_residual_threaded) \
    X(embedding)           \
    X(concat)              \
    X(concat_middle)       \
    X(slice)               \
    X(slice_last)          \
    X(reshape)             \
    X(transpose)           \
    X(transpose_batched)   \
    X(split_heads)         \
    X(merge_heads)         \
    X(l2_normalize)        \
    X(sum_normalize)       \
    X(cross_entropy)       \
    X(cross_entropy_ignore) \
    X(cross_entropy_smoothing) \
    X(cross_entropy_soft)  \
    X(gumbel_softmax)      \
    X(gumbel_softmax_hard) \
    X(gumbel_softmax_noise) \
    X(dropout)             \
    X(stop_gradient)       \
    X(catches_wrong_backward)

/* ---- the case context ------------------------------------------------------ */

typedef struct gc {
    vlp_params params;
    vlp_tensor *x[VLP_NODE_MAX_INPUTS];
    int n;
    bool ta, tb, causal;
    int variant; /* which flavour of a case: hard gumbel, which bad backward */
    int heads, dim, start, len, ids[64], targets[64];
    uint8_t mask[64];
    float p;
    vlp_tensor *soft; /* constant soft targets, rebuilt each call */
    float soft_data[64];
    uint64_t seed;
} gc;

static gc *gc_new(void) {
    gc *c = calloc(1, sizeof *c);
    vlp_params_init(&c->params);
    c->seed = 1234;
    return c;
}

static vlp_tensor *gc_in(gc *c, int ndim, const int *shape) {
    char name[16];
    snprintf(name, sizeof name, "x%d", c->n);
    return c->x[c->n++] = vlp_params_add(&c->params, name, ndim, shape);
}

/* Allocates and fills every input with N(0, 1) from a fixed seed. */
static void gc_ready(gc *c) {
    ck_assert_int_eq(vlp_params_alloc(&c->params), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 42);
    vlp_rng_fill_normal(&rng, c->params.data, (long)c->params.n, 0.0f, 1.0f);
}

static void gc_free(gc *c) {
    vlp_params_free(&c->params);
    free(c);
}

static void expect_grads(gc *c, vlp_gradcheck_fn fn, double tol) {
    vlp_gradcheck_opts opts = {.tol = tol, .seed = 7};
    vlp_test_gradcheck(&c->params, fn, c, &opts, "op", 1);
}

#define SHAPE(...) (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (int[]){__VA_ARGS__}
/* Per-op tolerances: ops linear in each input are exact up to rounding
 * (errors near 1e-6 and below); curved ops carry the O(h^2) truncation of
 * central differences (near 1e-5 with h = 1e-2). Both sit far below a real
 * mistake: catches_wrong_backward fails a backward that is 0.5% off. */
#define TOL_EXACT 1e-4
#define TOL 1e-3

/* ---- forward functions -------------------------------------------------------- */

static vlp_tensor *f_matmul(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_matmul(t, c->x[0], c->x[1], c->ta, c->tb);
}

static void matmul_case(bool ta, bool tb, int na, const int *sa, int nb, const int *sb) {
    gc *c = gc_new();
    gc_in(c, na, sa);
    gc_in(c, nb, sb);
    gc_ready(c);
    c->ta = ta;
    c->tb = tb;
    expect_grads(c, f_matmul, TOL_EXACT);
    gc_free(c);
}

START_TEST(test_matmul_nn) { matmul_case(false, false, SHAPE(3, 4), SHAPE(4, 5)); }
END_TEST
START_TEST(test_matmul_nt) { matmul_case(false, true, SHAPE(3, 4), SHAPE(5, 4)); }
END_TEST
START_TEST(test_matmul_tn) { matmul_case(true, false, SHAPE(4, 3), SHAPE(4, 5)); }
END_TEST
START_TEST(test_matmul_tt) { matmul_case(true, true, SHAPE(4, 3), SHAPE(5, 4)); }
END_TEST
START_TEST(test_matmul_batched) { matmul_case(false, true, SHAPE(2, 3, 4), SHAPE(2, 5, 4)); }
END_TEST
START_TEST(test_matmul_batched_4d) { matmul_case(true, false, SHAPE(2, 2, 4, 3), SHAPE(2, 2, 4, 3)); }
END_TEST
START_TEST(test_matmul_shared) { matmul_case(false, true, SHAPE(2, 3, 4), SHAPE(5, 4)); }
END_TEST
START_TEST(test_matmul_shared_ta) { matmul_case(true, false, SHAPE(2, 4, 3), SHAPE(4, 5)); }
END_TEST

static vlp_tensor *f_linear(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_linear(t, c->x[0], c->x[1], c->n > 2 ? c->x[2] : NULL);
}

START_TEST(test_linear) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 3, 4));
    gc_in(c, SHAPE(5, 4));
    gc_in(c, SHAPE(5));
    gc_ready(c);
    expect_grads(c, f_linear, TOL_EXACT);
    gc_free(c);
}
END_TEST

START_TEST(test_linear_nobias) {
    gc *c = gc_new();
    gc_in(c, SHAPE(6, 4));
    gc_in(c, SHAPE(3, 4));
    gc_ready(c);
    expect_grads(c, f_linear, TOL_EXACT);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_add(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_add(t, c->x[0], c->x[1]); }
static vlp_tensor *f_sub(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_sub(t, c->x[0], c->x[1]); }
static vlp_tensor *f_mul(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_mul(t, c->x[0], c->x[1]); }

static void binary_case(vlp_gradcheck_fn fn, int na, const int *sa, int nb, const int *sb) {
    gc *c = gc_new();
    gc_in(c, na, sa);
    gc_in(c, nb, sb);
    gc_ready(c);
    expect_grads(c, fn, TOL_EXACT);
    gc_free(c);
}

START_TEST(test_add) { binary_case(f_add, SHAPE(3, 4), SHAPE(3, 4)); }
END_TEST
START_TEST(test_add_broadcast_row) { binary_case(f_add, SHAPE(2, 3, 4), SHAPE(1, 4)); }
END_TEST
START_TEST(test_add_broadcast_table) { binary_case(f_add, SHAPE(2, 3, 4), SHAPE(3, 4)); }
END_TEST
START_TEST(test_sub) { binary_case(f_sub, SHAPE(3, 4), SHAPE(3, 4)); }
END_TEST
START_TEST(test_sub_broadcast) { binary_case(f_sub, SHAPE(5, 4), SHAPE(4)); }
END_TEST
START_TEST(test_mul) { binary_case(f_mul, SHAPE(3, 4), SHAPE(3, 4)); }
END_TEST
START_TEST(test_mul_broadcast) { binary_case(f_mul, SHAPE(2, 3, 4), SHAPE(4)); }
END_TEST

static vlp_tensor *f_square(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_mul(t, c->x[0], c->x[0]); }

START_TEST(test_mul_same_input) {
    gc *c = gc_new();
    gc_in(c, SHAPE(3, 4));
    gc_ready(c);
    expect_grads(c, f_square, TOL);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_scale(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_scale(t, c->x[0], c->x[1]); }

START_TEST(test_scale) { binary_case(f_scale, SHAPE(3, 4), SHAPE(1)); }
END_TEST

/* One input, a function of it: the shape of most cases below. */
static void unary_case(vlp_gradcheck_fn fn, int n, const int *s, double tol) {
    gc *c = gc_new();
    gc_in(c, n, s);
    gc_ready(c);
    expect_grads(c, fn, tol);
    gc_free(c);
}

static vlp_tensor *f_mul_const(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_mul_const(t, c->x[0], -2.5f); }
static vlp_tensor *f_exp(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_exp(t, c->x[0]); }
static vlp_tensor *f_sum_last(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_sum_last(t, c->x[0]); }
static vlp_tensor *f_sum(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_sum(t, c->x[0]); }
static vlp_tensor *f_mean_last(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_mean_last(t, c->x[0]); }
static vlp_tensor *f_mean(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_mean(t, c->x[0]); }
static vlp_tensor *f_gelu(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_gelu(t, c->x[0]); }
static vlp_tensor *f_quick_gelu(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_quick_gelu(t, c->x[0]); }
static vlp_tensor *f_softmax(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_softmax(t, c->x[0]); }
static vlp_tensor *f_log_softmax(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_log_softmax(t, c->x[0]); }
static vlp_tensor *f_transpose(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_transpose(t, c->x[0]); }
static vlp_tensor *f_l2_normalize(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_l2_normalize(t, c->x[0]); }

START_TEST(test_mul_const) { unary_case(f_mul_const, SHAPE(3, 4), TOL_EXACT); }
END_TEST
START_TEST(test_exp) { unary_case(f_exp, SHAPE(3, 4), TOL); }
END_TEST

/* Inputs in +-[0.5, 1.5]: away from the pole at 0, both signs. */
static vlp_tensor *f_reciprocal(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_reciprocal(t, c->x[0]); }

START_TEST(test_reciprocal) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(3, 4));
    gc_ready(c);
    for (long i = 0; i < x->n; i++) x->data[i] = copysignf(0.5f + fminf(fabsf(x->data[i]), 1.0f), x->data[i]);
    expect_grads(c, f_reciprocal, TOL);
    gc_free(c);
}
END_TEST
START_TEST(test_sum_last) { unary_case(f_sum_last, SHAPE(2, 3, 4), TOL_EXACT); }
END_TEST
START_TEST(test_sum) { unary_case(f_sum, SHAPE(2, 3, 4), TOL_EXACT); }
END_TEST
START_TEST(test_mean_last) { unary_case(f_mean_last, SHAPE(3, 5), TOL_EXACT); }
END_TEST
START_TEST(test_mean) { unary_case(f_mean, SHAPE(3, 5), TOL_EXACT); }
END_TEST
START_TEST(test_gelu) { unary_case(f_gelu, SHAPE(4, 6), TOL); }
END_TEST
START_TEST(test_quick_gelu) { unary_case(f_quick_gelu, SHAPE(4, 6), TOL); }
END_TEST
START_TEST(test_softmax) { unary_case(f_softmax, SHAPE(3, 7), TOL); }
END_TEST
START_TEST(test_log_softmax) { unary_case(f_log_softmax, SHAPE(3, 7), TOL); }
END_TEST
START_TEST(test_transpose) { unary_case(f_transpose, SHAPE(3, 5), TOL_EXACT); }
END_TEST
START_TEST(test_transpose_batched) { unary_case(f_transpose, SHAPE(2, 3, 3, 5), TOL_EXACT); }
END_TEST
START_TEST(test_l2_normalize) { unary_case(f_l2_normalize, SHAPE(4, 6), TOL); }
END_TEST

static vlp_tensor *f_sum_normalize(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_sum_normalize(t, c->x[0], 1.0f); }

/* Positive inputs, as the assignment probabilities it normalises. */
START_TEST(test_sum_normalize) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(2, 3, 5));
    gc_ready(c);
    for (long i = 0; i < x->n; i++) x->data[i] = 0.1f + fabsf(x->data[i]);
    expect_grads(c, f_sum_normalize, TOL);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_relu(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_relu(t, c->x[0]); }

START_TEST(test_relu) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(4, 6));
    gc_ready(c);
    /* Keep every input away from the kink at 0, where differences lie. */
    for (long i = 0; i < x->n; i++) x->data[i] += x->data[i] >= 0 ? 0.1f : -0.1f;
    expect_grads(c, f_relu, TOL);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_layernorm(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_layernorm(t, c->x[0], c->x[1], c->x[2]);
}

START_TEST(test_layernorm) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 3, 8));
    gc_in(c, SHAPE(8));
    gc_in(c, SHAPE(8));
    gc_ready(c);
    expect_grads(c, f_layernorm, TOL);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_attention(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_tensor *k = c->n > 1 ? c->x[1] : c->x[0], *v = c->n > 2 ? c->x[2] : c->x[0];
    return vlp_op_attention(t, c->x[0], k, v, c->heads, c->causal, c->mask[0] ? c->mask + 1 : NULL);
}

/* mask[0] != 0 switches the key mask (mask + 1) on. */
static void attention_case(int B, int Tq, int Tk, int C, int NH, bool causal, bool masked) {
    gc *c = gc_new();
    gc_in(c, SHAPE(B, Tq, C));
    gc_in(c, SHAPE(B, Tk, C));
    gc_in(c, SHAPE(B, Tk, C));
    gc_ready(c);
    c->heads = NH;
    c->causal = causal;
    if (masked) {
        c->mask[0] = 1;
        for (int i = 0; i < B * Tk; i++) c->mask[1 + i] = (i % Tk) < Tk - 1 - (i / Tk);
    }
    expect_grads(c, f_attention, TOL);
    gc_free(c);
}

START_TEST(test_attention_self) { attention_case(2, 4, 4, 8, 2, false, false); }
END_TEST
START_TEST(test_attention_causal) { attention_case(2, 5, 5, 6, 3, true, false); }
END_TEST
START_TEST(test_attention_cross) { attention_case(2, 3, 6, 8, 2, false, false); }
END_TEST
START_TEST(test_attention_key_mask) { attention_case(2, 3, 5, 8, 4, false, true); }
END_TEST

START_TEST(test_attention_shared_qkv) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 4, 8));
    gc_ready(c);
    c->heads = 2;
    c->causal = true;
    expect_grads(c, f_attention, TOL);
    gc_free(c);
}
END_TEST

/* ---- packed attention, fused linear layers ------------------------------------- */

/* qkv (B, T, 3C), packed as in_proj's output. */
static vlp_tensor *f_attention_qkv(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_attention_qkv(t, c->x[0], c->heads, c->causal, c->mask[0] ? c->mask + 1 : NULL);
}

static void attention_qkv_case(int B, int T, int C, int NH, bool causal, bool masked) {
    gc *c = gc_new();
    gc_in(c, SHAPE(B, T, 3 * C));
    gc_ready(c);
    c->heads = NH;
    c->causal = causal;
    if (masked) {
        c->mask[0] = 1;
        for (int i = 0; i < B * T; i++) c->mask[1 + i] = (i % T) < T - 1 - (i / T);
    }
    expect_grads(c, f_attention_qkv, TOL);
    /* The same values as slicing q, k, v out and vlp_op_attention. */
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *qkv = c->x[0];
    vlp_tensor *packed = vlp_op_attention_qkv(&t, qkv, NH, causal, masked ? c->mask + 1 : NULL);
    vlp_tensor *q = vlp_op_slice(&t, qkv, -1, 0, C), *k = vlp_op_slice(&t, qkv, -1, C, C);
    vlp_tensor *v = vlp_op_slice(&t, qkv, -1, 2 * C, C);
    vlp_tensor *sliced = vlp_op_attention(&t, q, k, v, NH, causal, masked ? c->mask + 1 : NULL);
    for (long i = 0; i < packed->n; i++) ck_assert_float_eq(packed->data[i], sliced->data[i]);
    vlp_tape_free(&t);
    gc_free(c);
}

START_TEST(test_attention_qkv) { attention_qkv_case(2, 4, 8, 2, false, false); }
END_TEST
START_TEST(test_attention_qkv_causal) { attention_qkv_case(2, 5, 6, 3, true, false); }
END_TEST
START_TEST(test_attention_qkv_key_mask) { attention_qkv_case(2, 5, 8, 4, false, true); }
END_TEST
/* Large enough for the kernel to run the (batch, head) pairs on threads. */
START_TEST(test_attention_qkv_threaded) { attention_qkv_case(2, 17, 8, 2, true, false); }
END_TEST

static vlp_tensor *f_linear_residual(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_linear_residual(t, c->x[0], c->x[1], c->n == 4 ? c->x[2] : NULL, c->x[c->n - 1]);
}

START_TEST(test_linear_residual) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 3, 4));
    gc_in(c, SHAPE(5, 4));
    gc_in(c, SHAPE(5));
    gc_in(c, SHAPE(2, 3, 5)); /* the residual */
    gc_ready(c);
    expect_grads(c, f_linear_residual, TOL_EXACT);
    gc_free(c);
}
END_TEST

START_TEST(test_linear_residual_nobias) {
    gc *c = gc_new();
    gc_in(c, SHAPE(3, 4));
    gc_in(c, SHAPE(5, 4));
    gc_in(c, SHAPE(3, 5));
    gc_ready(c);
    expect_grads(c, f_linear_residual, TOL_EXACT);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_linear_activation(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_linear_activation(t, c->x[0], c->x[1], c->n == 3 ? c->x[2] : NULL,
                                    (vlp_activation)c->variant);
}

static void linear_activation_case(vlp_activation act, bool bias, int rows, int In, int O) {
    gc *c = gc_new();
    gc_in(c, SHAPE(rows, In));
    gc_in(c, SHAPE(O, In));
    if (bias) gc_in(c, SHAPE(O));
    gc_ready(c);
    c->variant = act;
    expect_grads(c, f_linear_activation, TOL);
    gc_free(c);
}

START_TEST(test_linear_gelu) { linear_activation_case(VLP_ACTIVATION_GELU, true, 6, 4, 5); }
END_TEST
START_TEST(test_linear_gelu_nobias) { linear_activation_case(VLP_ACTIVATION_GELU, false, 6, 4, 5); }
END_TEST
START_TEST(test_linear_quick_gelu) { linear_activation_case(VLP_ACTIVATION_QUICK_GELU, true, 6, 4, 5); }
END_TEST
/* 256 x 128 outputs: the GELU and the bias gradient's column sums run on threads. */
START_TEST(test_linear_gelu_threaded) { linear_activation_case(VLP_ACTIVATION_GELU, true, 256, 3, 128); }
END_TEST

/* x, fc_w, [fc_b], proj_w, [proj_b], residual */
static vlp_tensor *f_mlp_residual(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    bool b = c->n == 6;
    return vlp_op_mlp_residual(t, c->x[0], c->x[1], b ? c->x[2] : NULL, c->x[b ? 3 : 2],
                               b ? c->x[4] : NULL, c->x[c->n - 1], (vlp_activation)c->variant);
}

static void mlp_residual_case(vlp_activation act, bool bias, int rows, int C, int M) {
    gc *c = gc_new();
    gc_in(c, SHAPE(rows, C));
    gc_in(c, SHAPE(M, C));
    if (bias) gc_in(c, SHAPE(M));
    gc_in(c, SHAPE(C, M));
    if (bias) gc_in(c, SHAPE(C));
    gc_in(c, SHAPE(rows, C)); /* the residual */
    gc_ready(c);
    c->variant = act;
    expect_grads(c, f_mlp_residual, TOL);
    gc_free(c);
}

START_TEST(test_mlp_residual) { mlp_residual_case(VLP_ACTIVATION_GELU, true, 6, 4, 7); }
END_TEST
START_TEST(test_mlp_residual_nobias) { mlp_residual_case(VLP_ACTIVATION_GELU, false, 6, 4, 7); }
END_TEST
START_TEST(test_mlp_residual_quick_gelu) { mlp_residual_case(VLP_ACTIVATION_QUICK_GELU, true, 6, 4, 7); }
END_TEST
/* 256 x 128 hidden units: the GELU, its recomputation and the column sums run on threads. */
START_TEST(test_mlp_residual_threaded) { mlp_residual_case(VLP_ACTIVATION_GELU, true, 256, 3, 128); }
END_TEST

static vlp_tensor *f_embedding(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_embedding(t, c->x[0], c->ids, c->len);
}

START_TEST(test_embedding) {
    gc *c = gc_new();
    gc_in(c, SHAPE(5, 3));
    gc_ready(c);
    int ids[] = {4, 0, 2, 4, 4, 1}; /* repeats must accumulate */
    c->len = 6;
    memcpy(c->ids, ids, sizeof ids);
    expect_grads(c, f_embedding, TOL_EXACT);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_concat(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_concat(t, c->n, c->x, c->dim);
}

START_TEST(test_concat) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 3));
    gc_in(c, SHAPE(1, 3));
    gc_in(c, SHAPE(4, 3));
    gc_ready(c);
    c->dim = 0;
    expect_grads(c, f_concat, TOL_EXACT);
    gc_free(c);
}
END_TEST

START_TEST(test_concat_middle) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 1, 4)); /* a class token before the patches */
    gc_in(c, SHAPE(2, 3, 4));
    gc_ready(c);
    c->dim = 1;
    expect_grads(c, f_concat, TOL_EXACT);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_slice(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_slice(t, c->x[0], c->dim, c->start, c->len);
}

static void slice_case(int n, const int *s, int dim, int start, int len) {
    gc *c = gc_new();
    gc_in(c, n, s);
    gc_ready(c);
    c->dim = dim;
    c->start = start;
    c->len = len;
    expect_grads(c, f_slice, TOL_EXACT);
    gc_free(c);
}

START_TEST(test_slice) { slice_case(SHAPE(2, 5, 3), 1, 1, 3); }
END_TEST
START_TEST(test_slice_last) { slice_case(SHAPE(2, 3, 6), -1, 2, 2); }
END_TEST

/* The view must carry gradient both ways: into a later op and back to x. */
static vlp_tensor *f_reshape(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_tensor *h = vlp_op_linear(t, c->x[0], c->x[1], NULL);         /* (2, 3, 4) */
    vlp_tensor *r = vlp_op_reshape(t, h, 2, (int[]){-1, 6});           /* (4, 6) */
    return vlp_op_mul(t, r, vlp_op_reshape(t, c->x[2], 1, (int[]){6})); /* (2, 3) param */
}

START_TEST(test_reshape) {
    gc *c = gc_new();
    gc_in(c, SHAPE(2, 3, 5));
    gc_in(c, SHAPE(4, 5));
    gc_in(c, SHAPE(2, 3));
    gc_ready(c);
    expect_grads(c, f_reshape, TOL_EXACT);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_split_heads(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_split_heads(t, c->x[0], 3); }
static vlp_tensor *f_merge_heads(vlp_tape *t, void *ctx) { gc *c = ctx; return vlp_op_merge_heads(t, c->x[0]); }

START_TEST(test_split_heads) { unary_case(f_split_heads, SHAPE(2, 4, 6), TOL_EXACT); }
END_TEST
START_TEST(test_merge_heads) { unary_case(f_merge_heads, SHAPE(2, 3, 4, 2), TOL_EXACT); }
END_TEST

static vlp_tensor *f_cross_entropy(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_cross_entropy(t, c->x[0], c->targets, -100, c->p);
}

static void cross_entropy_case(float smoothing, bool ignore) {
    gc *c = gc_new();
    gc_in(c, SHAPE(6, 5));
    gc_ready(c);
    int targets[] = {0, 4, 2, 2, 1, 3};
    if (ignore) targets[1] = targets[4] = -100;
    memcpy(c->targets, targets, sizeof targets);
    c->p = smoothing;
    expect_grads(c, f_cross_entropy, TOL);
    gc_free(c);
}

START_TEST(test_cross_entropy) { cross_entropy_case(0.0f, false); }
END_TEST
START_TEST(test_cross_entropy_ignore) { cross_entropy_case(0.0f, true); }
END_TEST
START_TEST(test_cross_entropy_smoothing) { cross_entropy_case(0.1f, true); }
END_TEST

static vlp_tensor *f_cross_entropy_soft(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_tensor *q = vlp_tape_tensor_like(t, c->x[0]);
    memcpy(q->data, c->soft_data, (size_t)q->n * sizeof(float));
    return vlp_op_cross_entropy_soft(t, c->x[0], q);
}

START_TEST(test_cross_entropy_soft) {
    gc *c = gc_new();
    gc_in(c, SHAPE(4, 5));
    gc_ready(c);
    /* Rows that are distributions, some with several positives (CLIP's
     * labelled variant), one one-hot. */
    vlp_rng rng;
    vlp_rng_init(&rng, 3);
    for (int r = 0; r < 4; r++) {
        float sum = 0.0f;
        for (int k = 0; k < 5; k++) sum += c->soft_data[r * 5 + k] = r == 3 ? (k == 2) : vlp_rng_uniform(&rng);
        for (int k = 0; k < 5; k++) c->soft_data[r * 5 + k] /= sum;
    }
    expect_grads(c, f_cross_entropy_soft, TOL);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_gumbel(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_rng rng;
    vlp_rng_init(&rng, c->seed); /* the same noise on every call */
    return vlp_op_gumbel_softmax(t, c->x[0], 0.7f, c->variant, &rng);
}

START_TEST(test_gumbel_softmax) { unary_case(f_gumbel, SHAPE(3, 6), TOL); }
END_TEST

/* Straight-through: the forward is one-hot (its finite differences are zero
 * almost everywhere), the gradient is the soft one's. So compare the hard
 * gradient with the soft gradient, which test_gumbel_softmax proved right. */
START_TEST(test_gumbel_softmax_hard) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(3, 6));
    gc_ready(c);
    float r[18], soft_grad[18];
    for (int i = 0; i < 18; i++) r[i] = (float)((i * 7) % 5) - 2.0f;
    vlp_tape tape;
    vlp_tape_init(&tape);
    for (int hard = 0; hard < 2; hard++) {
        c->variant = hard;
        vlp_params_zero_grad(&c->params);
        vlp_tensor *y = f_gumbel(&tape, c);
        for (int row = 0; row < 3 && hard; row++) {
            float sum = 0.0f;
            for (int k = 0; k < 6; k++) {
                float v = y->data[row * 6 + k];
                ck_assert_msg(v == 0.0f || v == 1.0f, "hard output %g is not 0 or 1", v);
                sum += v;
            }
            ck_assert_float_eq(sum, 1.0f);
        }
        vlp_tape_backward(&tape, y, r);
        for (int i = 0; i < 18; i++) {
            if (!hard) soft_grad[i] = x->grad[i];
            else ck_assert_float_eq_tol(x->grad[i], soft_grad[i], 1e-7f);
        }
        vlp_tape_reset(&tape);
    }
    float norm = 0.0f;
    for (int i = 0; i < 18; i++) norm += fabsf(soft_grad[i]);
    ck_assert_float_gt(norm, 1e-3f); /* a zero gradient would pass trivially */
    vlp_tape_free(&tape);
    gc_free(c);
}
END_TEST

/* Given noise: the soft path's gradient with that noise held fixed, and the
 * rng form is this form with the noise it draws. */
static vlp_tensor *f_gumbel_noise(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    return vlp_op_gumbel_softmax_noise(t, c->x[0], 1.0f, false, c->soft_data);
}

START_TEST(test_gumbel_softmax_noise) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(3, 6));
    gc_ready(c);
    vlp_rng rng;
    vlp_rng_init(&rng, 5);
    vlp_rng_fill_normal(&rng, c->soft_data, 18, 0.0f, 2.0f);
    expect_grads(c, f_gumbel_noise, TOL);
    vlp_tape tape;
    vlp_tape_init(&tape);
    for (int hard = 0; hard < 2; hard++) {
        vlp_rng_init(&rng, 9);
        vlp_tensor *drawn = vlp_op_gumbel_softmax(&tape, x, 0.7f, hard, &rng);
        float noise[18];
        vlp_rng_init(&rng, 9); /* the same draws: -log(-log(u)), u from 53 bits */
        for (int i = 0; i < 18; i++)
            noise[i] = (float)-log(-log(((double)(vlp_rng_u64(&rng) >> 11) + 0.5) * 0x1.0p-53));
        vlp_tensor *given = vlp_op_gumbel_softmax_noise(&tape, x, 0.7f, hard, noise);
        for (int i = 0; i < 18; i++) ck_assert_float_eq(drawn->data[i], given->data[i]);
        /* and the values are softmax((x + g) / tau) over each row */
        for (int r = 0; r < 3 && !hard; r++) {
            double z = 0, e[6];
            for (int k = 0; k < 6; k++) z += e[k] = exp((x->data[r * 6 + k] + noise[r * 6 + k]) / 0.7);
            for (int k = 0; k < 6; k++) ck_assert_double_eq_tol(given->data[r * 6 + k], e[k] / z, 1e-6);
        }
    }
    vlp_tape_free(&tape);
    gc_free(c);
}
END_TEST

static vlp_tensor *f_dropout(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_rng rng;
    vlp_rng_init(&rng, c->seed);
    return vlp_op_dropout(t, c->x[0], 0.3f, &rng);
}

START_TEST(test_dropout) {
    gc *c = gc_new();
    gc_in(c, SHAPE(4, 8));
    gc_ready(c);
    expect_grads(c, f_dropout, TOL_EXACT);
    /* The mask really drops: some outputs are zero, the rest scaled. */
    vlp_tape tape;
    vlp_tape_init(&tape);
    vlp_tensor *y = f_dropout(&tape, c);
    int zeros = 0;
    for (long i = 0; i < y->n; i++) {
        if (y->data[i] == 0.0f) zeros++;
        else ck_assert_float_eq_tol(y->data[i], c->x[0]->data[i] / 0.7f, 1e-6f);
    }
    ck_assert_int_gt(zeros, 0);
    ck_assert_int_lt(zeros, y->n);
    vlp_tape_free(&tape);
    gc_free(c);
}
END_TEST

/* y = x * stop(x): the gradient is stop(x) * r = x * r, not 2 x r. */
START_TEST(test_stop_gradient) {
    gc *c = gc_new();
    vlp_tensor *x = gc_in(c, SHAPE(2, 5));
    gc_ready(c);
    vlp_tape tape;
    vlp_tape_init(&tape);
    vlp_tensor *s = vlp_op_stop_gradient(&tape, x);
    ck_assert(!s->requires_grad);
    vlp_tensor *y = vlp_op_mul(&tape, x, s);
    float r[10];
    for (int i = 0; i < 10; i++) r[i] = 0.5f + (float)i;
    vlp_tape_backward(&tape, y, r);
    for (int i = 0; i < 10; i++) ck_assert_float_eq_tol(x->grad[i], x->data[i] * r[i], 1e-6f);
    vlp_tape_free(&tape);
    gc_free(c);
}
END_TEST

/* ---- the checker must catch a wrong backward -------------------------------- */

/* y = x^2 with a backward that is 0.5% off: too small to see by eye. */
static void bad_square_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    float *dx = vlp_tape_grad(t, x);
    for (long i = 0; i < x->n; i++) dx[i] += 2.01f * x->data[i] * nd->out->grad[i];
}

/* y[i] = x[i] * x[i+1 mod n] with a backward that forgets the second term. */
static void bad_neighbour_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    float *dx = vlp_tape_grad(t, x);
    for (long i = 0; i < x->n; i++) dx[i] += x->data[(i + 1) % x->n] * nd->out->grad[i];
}

static vlp_tensor *f_bad(vlp_tape *t, void *ctx) {
    gc *c = ctx;
    vlp_tensor *x = c->x[0], *y = vlp_tape_tensor_like(t, x);
    for (long i = 0; i < x->n; i++)
        y->data[i] = c->variant ? x->data[i] * x->data[(i + 1) % x->n] : x->data[i] * x->data[i];
    vlp_tape_record(t, c->variant ? bad_neighbour_backward : bad_square_backward, "bad", y, 1, x);
    return y;
}

START_TEST(test_catches_wrong_backward) {
    for (int variant = 0; variant < 2; variant++) {
        gc *c = gc_new();
        gc_in(c, SHAPE(3, 4));
        gc_ready(c);
        c->variant = variant;
        vlp_gradcheck_opts opts = {.tol = TOL, .seed = 7};
        vlp_gradcheck_report rep;
        ck_assert_msg(!vlp_gradcheck(&c->params, f_bad, c, &opts, &rep),
                      "variant %d: a wrong backward passed (error %g)", variant, rep.max_error);
        ck_assert_double_gt(rep.max_error, TOL);
        gc_free(c);
    }
}
END_TEST

static Suite *gradcheck_suite(void) {
    Suite *s = suite_create("gradcheck");
#define ADD(name) VLP_ADD_CASE(s, name);
    GRADCHECK_CASES(ADD)
#undef ADD
    return s;
}

VLP_TEST_MAIN(gradcheck_suite)
