/* Tape wrappers around the kernels: shape checks, output allocation, node
 * recording, and one backward function per op. */
#include "autograd/ops.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "base/error.h"
#include "autograd/kernels.h"

/* The gradient buffer of an input, or NULL when it needs none. */
static float *grad_of(vlp_tape *t, vlp_tensor *x) {
    return x->requires_grad ? vlp_tape_grad(t, x) : NULL;
}

static const char *shape_str(const vlp_tensor *x) {
    static _Thread_local char buf[4][64];
    static _Thread_local int next;
    char *b = buf[next++ % 4];
    return vlp_tensor_shape_str(x, b, sizeof buf[0]);
}

/* Output shape of x with the last dim replaced by `last`. */
static vlp_tensor *tensor_last(vlp_tape *t, const vlp_tensor *x, int last) {
    int shape[VLP_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = last;
    return vlp_tape_tensor(t, x->ndim, shape);
}

/* ---- matmul, linear ----------------------------------------------------- */

static void matmul_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *a = nd->in[0], *b = nd->in[1];
    const long *ia = nd->iarg;
    vlp_matmul_backward(grad_of(t, a), grad_of(t, b), nd->out->grad, a->data, b->data, (int)ia[0],
                        (int)ia[1], (int)ia[2], (int)ia[3], ia[4], ia[5], b->ndim == 2);
}

vlp_tensor *vlp_op_matmul(vlp_tape *t, vlp_tensor *a, vlp_tensor *b, bool ta, bool tb) {
    VLP_ASSERT(a->ndim >= 2 && b->ndim >= 2, "matmul needs matrices: %s, %s", shape_str(a),
               shape_str(b));
    int M = vlp_tensor_dim(a, ta ? -1 : -2), K = vlp_tensor_dim(a, ta ? -2 : -1);
    int Kb = vlp_tensor_dim(b, tb ? -1 : -2), N = vlp_tensor_dim(b, tb ? -2 : -1);
    VLP_ASSERT(K == Kb, "matmul inner sizes differ: %s%s @ %s%s", shape_str(a), ta ? "^T" : "",
               shape_str(b), tb ? "^T" : "");
    bool shared = b->ndim == 2;
    if (!shared) {
        VLP_ASSERT(b->ndim == a->ndim, "matmul batch dims differ: %s, %s", shape_str(a),
                   shape_str(b));
        for (int i = 0; i < a->ndim - 2; i++)
            VLP_ASSERT(a->shape[i] == b->shape[i], "matmul batch dims differ: %s, %s",
                       shape_str(a), shape_str(b));
    }
    int batch = (int)(a->n / ((long)M * K));
    int shape[VLP_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    vlp_tensor *out = vlp_tape_tensor(t, a->ndim, shape);
    vlp_matmul_forward(out->data, a->data, b->data, batch, M, N, K, ta, tb, shared);
    vlp_node *nd = vlp_tape_record(t, matmul_backward, "matmul", out, 2, a, b);
    if (nd) {
        long args[6] = {batch, M, N, K, ta, tb};
        memcpy(nd->iarg, args, sizeof args);
    }
    return out;
}

static void linear_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    int In = w->shape[1], O = w->shape[0];
    vlp_linear_backward(grad_of(t, x), grad_of(t, w), b ? grad_of(t, b) : NULL, nd->out->grad,
                        x->data, w->data, (int)vlp_tensor_rows(x), In, O);
}

vlp_tensor *vlp_op_linear(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias) {
    VLP_ASSERT(w->ndim == 2 && vlp_tensor_dim(x, -1) == w->shape[1],
               "linear: input %s does not match weight %s", shape_str(x), shape_str(w));
    VLP_ASSERT(!bias || (bias->ndim == 1 && bias->shape[0] == w->shape[0]),
               "linear: bias %s does not match weight %s", shape_str(bias), shape_str(w));
    vlp_tensor *out = tensor_last(t, x, w->shape[0]);
    vlp_linear_forward(out->data, x->data, w->data, bias ? bias->data : NULL,
                       (int)vlp_tensor_rows(x), w->shape[1], w->shape[0]);
    vlp_tape_record(t, linear_backward, "linear", out, 3, x, w, bias);
    return out;
}

/* in[3]: the residual. */
static void linear_residual_backward(vlp_tape *t, vlp_node *nd) {
    linear_backward(t, nd);
    vlp_tensor *res = nd->in[3];
    if (res->requires_grad) vlp_add_backward(vlp_tape_grad(t, res), NULL, nd->out->grad, 1, res->n);
}

vlp_tensor *vlp_op_linear_residual(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias,
                                   vlp_tensor *residual) {
    VLP_ASSERT(w->ndim == 2 && vlp_tensor_dim(x, -1) == w->shape[1],
               "linear: input %s does not match weight %s", shape_str(x), shape_str(w));
    VLP_ASSERT(!bias || (bias->ndim == 1 && bias->shape[0] == w->shape[0]),
               "linear: bias %s does not match weight %s", shape_str(bias), shape_str(w));
    vlp_tensor *out = tensor_last(t, x, w->shape[0]);
    VLP_ASSERT(vlp_tensor_same_shape(out, residual), "linear: output %s, residual %s",
               shape_str(out), shape_str(residual));
    vlp_linear_residual_forward(out->data, x->data, w->data, bias ? bias->data : NULL,
                                residual->data, (int)vlp_tensor_rows(x), w->shape[1], w->shape[0]);
    vlp_tape_record(t, linear_residual_backward, "linear_residual", out, 4, x, w, bias, residual);
    return out;
}

/* saved[0]: the pre-activation u = x w^T + bias. */
static void linear_gelu_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    int In = w->shape[1], O = w->shape[0];
    long rows = vlp_tensor_rows(x);
    /* du is written whole, so it needs no zeroing, and carries dbias along. */
    float *du = vlp_tape_alloc(t, (size_t)rows * O * sizeof(float));
    vlp_gelu_bias_backward(du, b ? grad_of(t, b) : NULL, nd->out->grad, nd->saved[0], rows, O);
    vlp_linear_backward(grad_of(t, x), grad_of(t, w), NULL, du, x->data, w->data, (int)rows, In,
                        O);
}

vlp_tensor *vlp_op_linear_activation(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias,
                                     vlp_activation act) {
    if (act != VLP_ACTIVATION_GELU) return vlp_op_activation(t, vlp_op_linear(t, x, w, bias), act);
    VLP_ASSERT(w->ndim == 2 && vlp_tensor_dim(x, -1) == w->shape[1],
               "linear: input %s does not match weight %s", shape_str(x), shape_str(w));
    VLP_ASSERT(!bias || (bias->ndim == 1 && bias->shape[0] == w->shape[0]),
               "linear: bias %s does not match weight %s", shape_str(bias), shape_str(w));
    int rows = (int)vlp_tensor_rows(x), In = w->shape[1], O = w->shape[0];
    vlp_tensor *out = tensor_last(t, x, O);
    float *u = vlp_tape_alloc(t, (size_t)out->n * sizeof(float));
    vlp_linear_forward(u, x->data, w->data, bias ? bias->data : NULL, rows, In, O);
    vlp_gelu_forward(out->data, u, out->n);
    vlp_node *nd = vlp_tape_record(t, linear_gelu_backward, "linear_gelu", out, 3, x, w, bias);
    if (nd) nd->saved[0] = u;
    return out;
}

/* in: x, fc_w, fc_b, proj_w, proj_b, residual; saved[0]: the pre-activation
 * u = x fc_w^T + fc_b. One scratch buffer (rows, hidden) holds in turn the
 * recomputed g = gelu(u) (for proj_w's gradient), dg and du. */
static void mlp_residual_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0], *fc_w = nd->in[1], *fc_b = nd->in[2], *proj_w = nd->in[3],
               *proj_b = nd->in[4], *res = nd->in[5];
    int rows = (int)vlp_tensor_rows(x), In = fc_w->shape[1], M = fc_w->shape[0];
    const float *u = nd->saved[0], *dout = nd->out->grad;
    size_t bytes = (size_t)rows * M * sizeof(float);
    float *g = vlp_tape_alloc(t, bytes);
    vlp_gelu_forward(g, u, (long)rows * M);
    vlp_linear_backward(NULL, grad_of(t, proj_w), proj_b ? grad_of(t, proj_b) : NULL, dout, g,
                        proj_w->data, rows, M, proj_w->shape[0]);
    memset(g, 0, bytes);
    vlp_linear_backward(g, NULL, NULL, dout, NULL, proj_w->data, rows, M, proj_w->shape[0]);
    if (res->requires_grad) vlp_add_backward(vlp_tape_grad(t, res), NULL, dout, 1, res->n);
    vlp_gelu_bias_backward(g, fc_b ? grad_of(t, fc_b) : NULL, g, u, rows, M); /* in place */
    vlp_linear_backward(grad_of(t, x), grad_of(t, fc_w), NULL, g, x->data, fc_w->data, rows, In,
                        M);
}

vlp_tensor *vlp_op_mlp_residual(vlp_tape *t, vlp_tensor *x, vlp_tensor *fc_w, vlp_tensor *fc_b,
                                vlp_tensor *proj_w, vlp_tensor *proj_b, vlp_tensor *residual,
                                vlp_activation act) {
    if (act != VLP_ACTIVATION_GELU)
        return vlp_op_linear_residual(t, vlp_op_linear_activation(t, x, fc_w, fc_b, act), proj_w,
                                      proj_b, residual);
    VLP_ASSERT(fc_w->ndim == 2 && proj_w->ndim == 2 && vlp_tensor_dim(x, -1) == fc_w->shape[1] &&
                   proj_w->shape[1] == fc_w->shape[0],
               "mlp: input %s, fc %s, proj %s", shape_str(x), shape_str(fc_w), shape_str(proj_w));
    VLP_ASSERT((!fc_b || fc_b->n == fc_w->shape[0]) && (!proj_b || proj_b->n == proj_w->shape[0]),
               "mlp: fc bias %s, proj bias %s", shape_str(fc_b), shape_str(proj_b));
    int rows = (int)vlp_tensor_rows(x), In = fc_w->shape[1], M = fc_w->shape[0];
    vlp_tensor *out = tensor_last(t, x, proj_w->shape[0]);
    VLP_ASSERT(vlp_tensor_same_shape(out, residual), "mlp: output %s, residual %s",
               shape_str(out), shape_str(residual));
    size_t bytes = (size_t)rows * M * sizeof(float);
    float *u = vlp_tape_alloc(t, bytes), *g = vlp_tape_alloc(t, bytes);
    vlp_linear_forward(u, x->data, fc_w->data, fc_b ? fc_b->data : NULL, rows, In, M);
    vlp_gelu_forward(g, u, (long)rows * M);
    vlp_linear_residual_forward(out->data, g, proj_w->data, proj_b ? proj_b->data : NULL,
                                residual->data, rows, M, proj_w->shape[0]);
    vlp_tape_release(t, g, bytes);
    vlp_node *nd = vlp_tape_record(t, mlp_residual_backward, "mlp_residual", out, 6, x, fc_w,
                                   fc_b, proj_w, proj_b, residual);
    if (nd) nd->saved[0] = u;
    else vlp_tape_release(t, u, bytes);
    return out;
}

/* ---- broadcasting elementwise ------------------------------------------ */

/* b must equal a's trailing dims (leading 1s of b ignored); returns b->n. */
static long broadcast_inner(const vlp_tensor *a, const vlp_tensor *b, const char *op) {
    int skip = 0;
    while (skip < b->ndim - 1 && b->shape[skip] == 1) skip++;
    int nb = b->ndim - skip;
    bool ok = nb <= a->ndim;
    for (int i = 0; ok && i < nb; i++) ok = b->shape[skip + i] == a->shape[a->ndim - nb + i];
    VLP_ASSERT(ok, "%s: %s does not broadcast onto %s", op, shape_str(b), shape_str(a));
    return b->n;
}

enum { BIN_ADD, BIN_SUB, BIN_MUL };

static void binary_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *a = nd->in[0], *b = nd->in[1];
    float *da = grad_of(t, a), *db = grad_of(t, b);
    long inner = b->n, outer = a->n / inner;
    switch (nd->iarg[0]) {
    case BIN_ADD: vlp_add_backward(da, db, nd->out->grad, outer, inner); break;
    case BIN_SUB: vlp_sub_backward(da, db, nd->out->grad, outer, inner); break;
    case BIN_MUL: vlp_mul_backward(da, db, nd->out->grad, a->data, b->data, outer, inner); break;
    }
}

static vlp_tensor *binary(vlp_tape *t, vlp_tensor *a, vlp_tensor *b, int kind, const char *op) {
    long inner = broadcast_inner(a, b, op), outer = a->n / inner;
    vlp_tensor *out = vlp_tape_tensor_like(t, a);
    switch (kind) {
    case BIN_ADD: vlp_add_forward(out->data, a->data, b->data, outer, inner); break;
    case BIN_SUB: vlp_sub_forward(out->data, a->data, b->data, outer, inner); break;
    case BIN_MUL: vlp_mul_forward(out->data, a->data, b->data, outer, inner); break;
    }
    vlp_node *nd = vlp_tape_record(t, binary_backward, op, out, 2, a, b);
    if (nd) nd->iarg[0] = kind;
    return out;
}

vlp_tensor *vlp_op_add(vlp_tape *t, vlp_tensor *a, vlp_tensor *b) { return binary(t, a, b, BIN_ADD, "add"); }
vlp_tensor *vlp_op_sub(vlp_tape *t, vlp_tensor *a, vlp_tensor *b) { return binary(t, a, b, BIN_SUB, "sub"); }
vlp_tensor *vlp_op_mul(vlp_tape *t, vlp_tensor *a, vlp_tensor *b) { return binary(t, a, b, BIN_MUL, "mul"); }

static void scale_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0], *s = nd->in[1];
    float sv = s ? s->data[0] : nd->farg[0];
    vlp_scale_backward(grad_of(t, x), s ? grad_of(t, s) : NULL, nd->out->grad, x->data, sv, x->n);
}

vlp_tensor *vlp_op_scale(vlp_tape *t, vlp_tensor *x, vlp_tensor *s) {
    VLP_ASSERT(s->n == 1, "scale: the scale %s is not one element", shape_str(s));
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_scale_forward(out->data, x->data, s->data[0], x->n);
    vlp_tape_record(t, scale_backward, "scale", out, 2, x, s);
    return out;
}

vlp_tensor *vlp_op_mul_const(vlp_tape *t, vlp_tensor *x, float c) {
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_scale_forward(out->data, x->data, c, x->n);
    vlp_node *nd = vlp_tape_record(t, scale_backward, "mul_const", out, 2, x, NULL);
    if (nd) nd->farg[0] = c;
    return out;
}

static void exp_backward(vlp_tape *t, vlp_node *nd) {
    vlp_exp_backward(grad_of(t, nd->in[0]), nd->out->grad, nd->out->data, nd->out->n);
}

vlp_tensor *vlp_op_exp(vlp_tape *t, vlp_tensor *x) {
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_exp_forward(out->data, x->data, x->n);
    vlp_tape_record(t, exp_backward, "exp", out, 1, x);
    return out;
}

static void reciprocal_backward(vlp_tape *t, vlp_node *nd) {
    vlp_reciprocal_backward(grad_of(t, nd->in[0]), nd->out->grad, nd->out->data, nd->out->n);
}

vlp_tensor *vlp_op_reciprocal(vlp_tape *t, vlp_tensor *x) {
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_reciprocal_forward(out->data, x->data, x->n);
    vlp_tape_record(t, reciprocal_backward, "reciprocal", out, 1, x);
    return out;
}

/* ---- reductions ---------------------------------------------------------- */

static void sum_rows_backward(vlp_tape *t, vlp_node *nd) {
    vlp_sum_rows_backward(grad_of(t, nd->in[0]), nd->out->grad, nd->iarg[0], (int)nd->iarg[1],
                          nd->farg[0]);
}

static vlp_tensor *sum_rows(vlp_tape *t, vlp_tensor *x, bool all, bool mean, const char *op) {
    long C = all ? x->n : x->shape[x->ndim - 1], rows = x->n / C;
    VLP_ASSERT(C <= INT_MAX, "%s over %ld elements", op, C);
    int one = 1;
    vlp_tensor *out = all || x->ndim == 1 ? vlp_tape_tensor(t, 1, &one)
                                          : vlp_tape_tensor(t, x->ndim - 1, x->shape);
    float scale = mean ? 1.0f / (float)C : 1.0f;
    vlp_sum_rows_forward(out->data, x->data, rows, (int)C, scale);
    vlp_node *nd = vlp_tape_record(t, sum_rows_backward, op, out, 1, x);
    if (nd) {
        nd->iarg[0] = rows;
        nd->iarg[1] = C;
        nd->farg[0] = scale;
    }
    return out;
}

vlp_tensor *vlp_op_sum_last(vlp_tape *t, vlp_tensor *x) { return sum_rows(t, x, false, false, "sum_last"); }
vlp_tensor *vlp_op_mean_last(vlp_tape *t, vlp_tensor *x) { return sum_rows(t, x, false, true, "mean_last"); }
vlp_tensor *vlp_op_sum(vlp_tape *t, vlp_tensor *x) { return sum_rows(t, x, true, false, "sum"); }
vlp_tensor *vlp_op_mean(vlp_tape *t, vlp_tensor *x) { return sum_rows(t, x, true, true, "mean"); }

/* ---- activations ---------------------------------------------------------- */

#define UNARY_OP(name)                                                                \
    static void name##_backward(vlp_tape *t, vlp_node *nd) {                          \
        vlp_##name##_backward(grad_of(t, nd->in[0]), nd->out->grad, nd->in[0]->data,  \
                              nd->in[0]->n);                                          \
    }                                                                                 \
    vlp_tensor *vlp_op_##name(vlp_tape *t, vlp_tensor *x) {                           \
        vlp_tensor *out = vlp_tape_tensor_like(t, x);                                 \
        vlp_##name##_forward(out->data, x->data, x->n);                               \
        vlp_tape_record(t, name##_backward, #name, out, 1, x);                        \
        return out;                                                                   \
    }

UNARY_OP(gelu)
UNARY_OP(quick_gelu)
UNARY_OP(relu)

vlp_tensor *vlp_op_activation(vlp_tape *t, vlp_tensor *x, vlp_activation act) {
    switch (act) {
    case VLP_ACTIVATION_GELU: return vlp_op_gelu(t, x);
    case VLP_ACTIVATION_QUICK_GELU: return vlp_op_quick_gelu(t, x);
    case VLP_ACTIVATION_RELU: return vlp_op_relu(t, x);
    }
    vlp_fatal(__FILE__, __LINE__, "unknown activation %d", (int)act);
}

/* ---- normalisation and softmax -------------------------------------------- */

static void layernorm_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    vlp_layernorm_backward(grad_of(t, x), grad_of(t, w), grad_of(t, b), nd->out->grad, x->data,
                           w->data, nd->saved[0], nd->saved[1], vlp_tensor_rows(x),
                           vlp_tensor_dim(x, -1));
}

/* The forward's own kernel again: the same output, mean and rstd, bit for bit. */
static void layernorm_recompute(vlp_tape *t, vlp_node *nd) {
    (void)t;
    vlp_tensor *x = nd->in[0];
    vlp_layernorm_forward(nd->out->data, nd->saved[0], nd->saved[1], x->data, nd->in[1]->data,
                          nd->in[2]->data, vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_layernorm(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *b) {
    int C = vlp_tensor_dim(x, -1);
    VLP_ASSERT(w->n == C && b->n == C, "layernorm: %s with weight %s and bias %s", shape_str(x),
               shape_str(w), shape_str(b));
    long rows = vlp_tensor_rows(x);
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    float *mean = vlp_tape_alloc(t, rows * sizeof(float));
    float *rstd = vlp_tape_alloc(t, rows * sizeof(float));
    vlp_layernorm_forward(out->data, mean, rstd, x->data, w->data, b->data, rows, C);
    vlp_node *nd = vlp_tape_record(t, layernorm_backward, "layernorm", out, 3, x, w, b);
    if (nd) {
        nd->saved[0] = mean;
        nd->saved[1] = rstd;
        nd->recompute = layernorm_recompute;
    }
    return out;
}

static void softmax_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_softmax_backward(grad_of(t, x), nd->out->grad, nd->out->data, vlp_tensor_rows(x),
                         vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_softmax(vlp_tape *t, vlp_tensor *x) {
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_softmax_forward(out->data, x->data, vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
    vlp_tape_record(t, softmax_backward, "softmax", out, 1, x);
    return out;
}

static void log_softmax_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_log_softmax_backward(grad_of(t, x), nd->out->grad, nd->out->data, vlp_tensor_rows(x),
                             vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_log_softmax(vlp_tape *t, vlp_tensor *x) {
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_log_softmax_forward(out->data, x->data, vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
    vlp_tape_record(t, log_softmax_backward, "log_softmax", out, 1, x);
    return out;
}

/* ---- attention ----------------------------------------------------------- */

/* iarg: NH, causal, packed; saved[1]: key mask. Packed: in[0] is
 * (B, T, 3C), q, k and v side by side in each row. */
static vlp_attention_dims attention_dims(const vlp_node *nd) {
    const vlp_tensor *q = nd->in[0], *k = nd->in[nd->iarg[2] ? 0 : 1];
    int C = nd->out->shape[2], ld = nd->iarg[2] ? 3 * C : C;
    return (vlp_attention_dims){
        .B = q->shape[0], .Tq = q->shape[1], .Tk = k->shape[1], .C = C, .NH = (int)nd->iarg[0],
        .ldq = ld, .ldk = ld, .ldv = ld, .causal = nd->iarg[1], .key_mask = nd->saved[1]};
}

static void attention_backward(vlp_tape *t, vlp_node *nd) {
    vlp_attention_dims d = attention_dims(nd);
    float *scratch = vlp_tape_alloc(t, vlp_attention_scratch_floats(&d) * sizeof(float));
    if (nd->iarg[2]) {
        vlp_tensor *qkv = nd->in[0];
        float *g = vlp_tape_grad(t, qkv);
        vlp_attention_backward(g, g + d.C, g + 2 * d.C, scratch, nd->out->grad, qkv->data,
                               qkv->data + d.C, qkv->data + 2 * d.C, &d);
        return;
    }
    vlp_tensor *q = nd->in[0], *k = nd->in[1], *v = nd->in[2];
    vlp_attention_backward(grad_of(t, q), grad_of(t, k), grad_of(t, v), scratch, nd->out->grad,
                           q->data, k->data, v->data, &d);
}

/* Runs the kernel for d (key_mask copied into the arena) and records the node. */
static vlp_tensor *attention(vlp_tape *t, vlp_attention_dims d, vlp_tensor *q, vlp_tensor *k,
                             vlp_tensor *v, bool packed) {
    vlp_tensor *out = vlp_tape_tensor(t, 3, (int[]){d.B, d.Tq, d.C});
    uint8_t *mask = NULL;
    if (d.key_mask) {
        mask = vlp_tape_alloc(t, (size_t)d.B * d.Tk);
        memcpy(mask, d.key_mask, (size_t)d.B * d.Tk);
        d.key_mask = mask;
    }
    const float *qd = q->data, *kd = packed ? q->data + d.C : k->data;
    const float *vd = packed ? q->data + 2 * d.C : v->data;
    size_t scratch_bytes = vlp_attention_scratch_floats(&d) * sizeof(float);
    float *scratch = vlp_tape_alloc(t, scratch_bytes);
    vlp_attention_forward(out->data, scratch, qd, kd, vd, &d);
    vlp_tape_release(t, scratch, scratch_bytes);
    vlp_node *nd = packed ? vlp_tape_record(t, attention_backward, "attention_qkv", out, 1, q)
                          : vlp_tape_record(t, attention_backward, "attention", out, 3, q, k, v);
    if (nd) {
        nd->iarg[0] = d.NH;
        nd->iarg[1] = d.causal;
        nd->iarg[2] = packed;
        nd->saved[1] = mask;
    }
    return out;
}

vlp_tensor *vlp_op_attention(vlp_tape *t, vlp_tensor *q, vlp_tensor *k, vlp_tensor *v, int NH,
                             bool causal, const uint8_t *key_mask) {
    VLP_ASSERT(q->ndim == 3 && k->ndim == 3 && vlp_tensor_same_shape(k, v) &&
                   q->shape[0] == k->shape[0] && q->shape[2] == k->shape[2],
               "attention: q %s, k %s, v %s", shape_str(q), shape_str(k), shape_str(v));
    VLP_ASSERT(NH > 0 && q->shape[2] % NH == 0, "attention: width %d, %d heads", q->shape[2], NH);
    int C = q->shape[2];
    vlp_attention_dims d = {.B = q->shape[0], .Tq = q->shape[1], .Tk = k->shape[1], .C = C,
                            .NH = NH, .ldq = C, .ldk = C, .ldv = C, .causal = causal,
                            .key_mask = key_mask};
    return attention(t, d, q, k, v, false);
}

vlp_tensor *vlp_op_attention_qkv(vlp_tape *t, vlp_tensor *qkv, int NH, bool causal,
                                 const uint8_t *key_mask) {
    VLP_ASSERT(qkv->ndim == 3 && qkv->shape[2] % 3 == 0,
               "attention_qkv: %s is not (B, T, 3C)", shape_str(qkv));
    int C = qkv->shape[2] / 3, T = qkv->shape[1];
    VLP_ASSERT(NH > 0 && C % NH == 0, "attention_qkv: width %d, %d heads", C, NH);
    vlp_attention_dims d = {.B = qkv->shape[0], .Tq = T, .Tk = T, .C = C, .NH = NH,
                            .ldq = 3 * C, .ldk = 3 * C, .ldv = 3 * C, .causal = causal,
                            .key_mask = key_mask};
    return attention(t, d, qkv, NULL, NULL, true);
}

/* ---- embedding -------------------------------------------------------------- */

static void embedding_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *table = nd->in[0];
    vlp_embedding_backward(grad_of(t, table), nd->out->grad, nd->saved[0], nd->out->shape[0],
                           table->shape[1]);
}

vlp_tensor *vlp_op_embedding(vlp_tape *t, vlp_tensor *table, const int *ids, long n) {
    VLP_ASSERT(table->ndim == 2, "embedding: table %s is not 2-d", shape_str(table));
    int V = table->shape[0];
    int *saved = vlp_tape_alloc(t, (size_t)n * sizeof *saved);
    for (long i = 0; i < n; i++) {
        VLP_ASSERT(ids[i] >= 0 && ids[i] < V, "embedding: id %d outside [0, %d)", ids[i], V);
        saved[i] = ids[i];
    }
    int shape[2] = {(int)n, table->shape[1]};
    vlp_tensor *out = vlp_tape_tensor(t, 2, shape);
    vlp_embedding_forward(out->data, table->data, saved, n, table->shape[1]);
    vlp_node *nd = vlp_tape_record(t, embedding_backward, "embedding", out, 1, table);
    if (nd) nd->saved[0] = saved;
    return out;
}

/* ---- concat, slice, views ------------------------------------------------- */

/* x viewed as (outer, shape[dim], inner). */
static void split_at(const vlp_tensor *x, int dim, long *outer, long *inner) {
    *outer = vlp_shape_numel(dim, x->shape);
    *inner = vlp_shape_numel(x->ndim - dim - 1, x->shape + dim + 1);
}

static void concat_backward(vlp_tape *t, vlp_node *nd) {
    int dim = (int)nd->iarg[0], at = 0, total = nd->out->shape[dim];
    long outer, inner;
    split_at(nd->out, dim, &outer, &inner);
    for (int i = 0; i < nd->n_in; i++) {
        vlp_tensor *x = nd->in[i];
        int len = x->shape[dim];
        if (x->requires_grad)
            vlp_copy_strided(vlp_tape_grad(t, x), len * inner, nd->out->grad + at * inner,
                             total * inner, outer, len * inner, true);
        at += len;
    }
}

vlp_tensor *vlp_op_concat(vlp_tape *t, int n, vlp_tensor *const *xs, int dim) {
    VLP_ASSERT(n >= 1 && n <= VLP_NODE_MAX_INPUTS, "concat of %d tensors", n);
    if (dim < 0) dim += xs[0]->ndim;
    VLP_ASSERT(dim >= 0 && dim < xs[0]->ndim, "concat along dim %d of %s", dim, shape_str(xs[0]));
    int shape[VLP_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == xs[0]->ndim;
        for (int j = 0; ok && j < xs[0]->ndim; j++) ok = j == dim || xs[i]->shape[j] == shape[j];
        VLP_ASSERT(ok, "concat along %d: %s and %s", dim, shape_str(xs[0]), shape_str(xs[i]));
        shape[dim] += xs[i]->shape[dim];
    }
    vlp_tensor *out = vlp_tape_tensor(t, xs[0]->ndim, shape);
    long outer, inner;
    split_at(out, dim, &outer, &inner);
    int at = 0;
    for (int i = 0; i < n; i++) {
        int len = xs[i]->shape[dim];
        vlp_copy_strided(out->data + at * inner, shape[dim] * inner, xs[i]->data, len * inner,
                         outer, len * inner, false);
        at += len;
    }
    vlp_tensor *in[VLP_NODE_MAX_INPUTS] = {0};
    memcpy(in, xs, (size_t)n * sizeof *in);
    vlp_node *nd = vlp_tape_record(t, concat_backward, "concat", out, n, in[0], in[1], in[2], in[3],
                                   in[4], in[5]);
    if (nd) nd->iarg[0] = dim;
    return out;
}

static void slice_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    int dim = (int)nd->iarg[0], start = (int)nd->iarg[1], len = nd->out->shape[dim];
    long outer, inner;
    split_at(x, dim, &outer, &inner);
    vlp_copy_strided(vlp_tape_grad(t, x) + start * inner, x->shape[dim] * inner, nd->out->grad,
                     len * inner, outer, len * inner, true);
}

vlp_tensor *vlp_op_slice(vlp_tape *t, vlp_tensor *x, int dim, int start, int len) {
    if (dim < 0) dim += x->ndim;
    VLP_ASSERT(dim >= 0 && dim < x->ndim && start >= 0 && len > 0 && start + len <= x->shape[dim],
               "slice [%d, %d) along dim %d of %s", start, start + len, dim, shape_str(x));
    int shape[VLP_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    vlp_tensor *out = vlp_tape_tensor(t, x->ndim, shape);
    long outer, inner;
    split_at(x, dim, &outer, &inner);
    vlp_copy_strided(out->data, len * inner, x->data + start * inner, x->shape[dim] * inner,
                     outer, len * inner, false);
    vlp_node *nd = vlp_tape_record(t, slice_backward, "slice", out, 1, x);
    if (nd) {
        nd->iarg[0] = dim;
        nd->iarg[1] = start;
    }
    return out;
}

/* A tensor struct over x's memory; shares x's gradient (through base, so
 * it is allocated only when a gradient flows) when x needs one. */
static vlp_tensor *view(vlp_tape *t, vlp_tensor *x, int ndim, const int *shape, bool grad) {
    vlp_tensor *v = vlp_tape_alloc(t, sizeof *v);
    memset(v, 0, sizeof *v);
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    v->n = x->n;
    v->data = x->data;
    if (grad && x->requires_grad && t->no_grad == 0) {
        v->base = x->base ? x->base : x;
        v->requires_grad = true;
    }
    return v;
}

vlp_tensor *vlp_op_reshape(vlp_tape *t, vlp_tensor *x, int ndim, const int *shape) {
    VLP_ASSERT(ndim >= 1 && ndim <= VLP_MAX_DIMS, "reshape to %d dims", ndim);
    int s[VLP_MAX_DIMS], infer = -1;
    long known = 1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            VLP_ASSERT(infer < 0, "reshape: more than one -1");
            infer = i;
        } else {
            VLP_ASSERT(s[i] > 0, "reshape: size %d", s[i]);
            known *= s[i];
        }
    }
    if (infer >= 0) {
        VLP_ASSERT(x->n % known == 0, "reshape %s: %ld does not divide it", shape_str(x), known);
        s[infer] = (int)(x->n / known);
    }
    VLP_ASSERT(vlp_shape_numel(ndim, s) == x->n, "reshape %s to %ld elements", shape_str(x),
               vlp_shape_numel(ndim, s));
    return view(t, x, ndim, s, true);
}

vlp_tensor *vlp_op_stop_gradient(vlp_tape *t, vlp_tensor *x) {
    return view(t, x, x->ndim, x->shape, false);
}

static void transpose_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    int R = vlp_tensor_dim(x, -2), C = vlp_tensor_dim(x, -1);
    /* The gradient (.., C, R) transposes back to (.., R, C). */
    vlp_transpose_forward(vlp_tape_grad(t, x), nd->out->grad, x->n / ((long)R * C), C, R, true);
}

vlp_tensor *vlp_op_transpose(vlp_tape *t, vlp_tensor *x) {
    VLP_ASSERT(x->ndim >= 2, "transpose of %s", shape_str(x));
    int shape[VLP_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    int R = shape[x->ndim - 2], C = shape[x->ndim - 1];
    shape[x->ndim - 2] = C;
    shape[x->ndim - 1] = R;
    vlp_tensor *out = vlp_tape_tensor(t, x->ndim, shape);
    vlp_transpose_forward(out->data, x->data, x->n / ((long)R * C), R, C, false);
    vlp_tape_record(t, transpose_backward, "transpose", out, 1, x);
    return out;
}

/* Head split and merge both swap axes 1 and 2 of a 4-d view; iarg holds the
 * input's 4-d view so backward can swap the gradient back. */
static void swap12_backward(vlp_tape *t, vlp_node *nd) {
    const long *s = nd->iarg;
    vlp_swap12_forward(vlp_tape_grad(t, nd->in[0]), nd->out->grad, (int)s[0], (int)s[2], (int)s[1],
                       (int)s[3], true);
}

static vlp_tensor *swap12(vlp_tape *t, vlp_tensor *x, const int in4[4], int ndim_out,
                          const int *shape_out, const char *op) {
    vlp_tensor *out = vlp_tape_tensor(t, ndim_out, shape_out);
    vlp_swap12_forward(out->data, x->data, in4[0], in4[1], in4[2], in4[3], false);
    vlp_node *nd = vlp_tape_record(t, swap12_backward, op, out, 1, x);
    if (nd)
        for (int i = 0; i < 4; i++) nd->iarg[i] = in4[i];
    return out;
}

vlp_tensor *vlp_op_split_heads(vlp_tape *t, vlp_tensor *x, int NH) {
    VLP_ASSERT(x->ndim == 3 && NH > 0 && x->shape[2] % NH == 0, "split_heads: %s into %d heads",
               shape_str(x), NH);
    int B = x->shape[0], T = x->shape[1], HS = x->shape[2] / NH;
    return swap12(t, x, (int[4]){B, T, NH, HS}, 4, (int[4]){B, NH, T, HS}, "split_heads");
}

vlp_tensor *vlp_op_merge_heads(vlp_tape *t, vlp_tensor *x) {
    VLP_ASSERT(x->ndim == 4, "merge_heads: %s is not (B, NH, T, HS)", shape_str(x));
    int B = x->shape[0], NH = x->shape[1], T = x->shape[2], HS = x->shape[3];
    return swap12(t, x, (int[4]){B, NH, T, HS}, 3, (int[3]){B, T, NH * HS}, "merge_heads");
}

/* ---- normalisation, losses ------------------------------------------------ */

static void l2_normalize_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_l2_normalize_backward(grad_of(t, x), nd->out->grad, nd->out->data, nd->saved[0],
                              vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_l2_normalize(vlp_tape *t, vlp_tensor *x) {
    long rows = vlp_tensor_rows(x);
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    float *norm = vlp_tape_alloc(t, rows * sizeof(float));
    vlp_l2_normalize_forward(out->data, norm, x->data, rows, vlp_tensor_dim(x, -1));
    vlp_node *nd = vlp_tape_record(t, l2_normalize_backward, "l2_normalize", out, 1, x);
    if (nd) nd->saved[0] = norm;
    return out;
}

static void sum_normalize_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_sum_normalize_backward(grad_of(t, x), nd->out->grad, nd->out->data, nd->saved[0],
                               vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_sum_normalize(vlp_tape *t, vlp_tensor *x, float eps) {
    long rows = vlp_tensor_rows(x);
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    float *denom = vlp_tape_alloc(t, rows * sizeof(float));
    vlp_sum_normalize_forward(out->data, denom, x->data, rows, vlp_tensor_dim(x, -1), eps);
    vlp_node *nd = vlp_tape_record(t, sum_normalize_backward, "sum_normalize", out, 1, x);
    if (nd) nd->saved[0] = denom;
    return out;
}

/* saved: probs, targets (ids), soft targets; iarg: count, ignore_index. */
static void cross_entropy_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_cross_entropy_backward(grad_of(t, x), nd->out->grad[0], nd->saved[0], nd->saved[1],
                               nd->saved[2], (int)nd->iarg[0], x->shape[0], x->shape[1],
                               (int)nd->iarg[1], nd->farg[0]);
}

static vlp_tensor *cross_entropy(vlp_tape *t, vlp_tensor *logits, const int *targets,
                                 const float *soft, int ignore_index, float smoothing) {
    VLP_ASSERT(logits->ndim == 2, "cross_entropy: logits %s are not (N, C)", shape_str(logits));
    VLP_ASSERT(smoothing >= 0.0f && smoothing < 1.0f, "label smoothing %g", smoothing);
    long N = logits->shape[0];
    int C = logits->shape[1], one = 1, count = 0;
    float *probs = vlp_tape_alloc(t, (size_t)logits->n * sizeof(float));
    int *ids = NULL;
    if (targets) {
        ids = vlp_tape_alloc(t, (size_t)N * sizeof *ids);
        memcpy(ids, targets, (size_t)N * sizeof *ids);
    }
    vlp_tensor *out = vlp_tape_tensor(t, 1, &one);
    out->data[0] = vlp_cross_entropy_forward(probs, &count, logits->data, ids, soft, N, C,
                                             ignore_index, smoothing);
    vlp_node *nd = vlp_tape_record(t, cross_entropy_backward, "cross_entropy", out, 1, logits);
    if (nd) {
        nd->saved[0] = probs;
        nd->saved[1] = ids;
        nd->saved[2] = (void *)soft;
        nd->iarg[0] = count;
        nd->iarg[1] = ignore_index;
        nd->farg[0] = smoothing;
    }
    return out;
}

vlp_tensor *vlp_op_cross_entropy(vlp_tape *t, vlp_tensor *logits, const int *targets,
                                 int ignore_index, float smoothing) {
    return cross_entropy(t, logits, targets, NULL, ignore_index, smoothing);
}

vlp_tensor *vlp_op_cross_entropy_soft(vlp_tape *t, vlp_tensor *logits, vlp_tensor *targets) {
    VLP_ASSERT(vlp_tensor_same_shape(logits, targets), "cross_entropy_soft: logits %s, targets %s",
               shape_str(logits), shape_str(targets));
    return cross_entropy(t, logits, NULL, targets->data, 0, 0.0f);
}

/* ---- gumbel-softmax, dropout ------------------------------------------------- */

/* saved[0]: the soft assignment; farg[0]: tau. Hard or soft, the gradient is
 * the soft one: straight-through. */
static void gumbel_softmax_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    float *g = vlp_tape_alloc(t, (size_t)x->n * sizeof(float));
    vlp_scale_forward(g, nd->out->grad, 1.0f / nd->farg[0], x->n);
    vlp_softmax_backward(grad_of(t, x), g, nd->saved[0], vlp_tensor_rows(x), vlp_tensor_dim(x, -1));
}

vlp_tensor *vlp_op_gumbel_softmax(vlp_tape *t, vlp_tensor *x, float tau, bool hard, vlp_rng *rng) {
    float *noise = NULL;
    if (rng) {
        noise = vlp_tape_alloc(t, (size_t)x->n * sizeof(float));
        for (long i = 0; i < x->n; i++) { /* -log(-log(u)) with u strictly inside (0, 1) */
            double u = ((double)(vlp_rng_u64(rng) >> 11) + 0.5) * 0x1.0p-53;
            noise[i] = (float)-log(-log(u));
        }
    }
    return vlp_op_gumbel_softmax_noise(t, x, tau, hard, noise);
}

vlp_tensor *vlp_op_gumbel_softmax_noise(vlp_tape *t, vlp_tensor *x, float tau, bool hard,
                                        const float *noise) {
    VLP_ASSERT(tau > 0.0f, "gumbel_softmax: tau %g", tau);
    long rows = vlp_tensor_rows(x);
    int C = vlp_tensor_dim(x, -1);
    float *soft = vlp_tape_alloc(t, (size_t)x->n * sizeof(float));
    for (long i = 0; i < x->n; i++) soft[i] = (x->data[i] + (noise ? noise[i] : 0.0f)) / tau;
    vlp_softmax_forward(soft, soft, rows, C);
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    if (hard) {
        memset(out->data, 0, (size_t)x->n * sizeof(float));
        for (long r = 0; r < rows; r++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (soft[r * C + c] > soft[r * C + best]) best = c;
            out->data[r * C + best] = 1.0f;
        }
    } else {
        memcpy(out->data, soft, (size_t)x->n * sizeof(float));
    }
    vlp_node *nd = vlp_tape_record(t, gumbel_softmax_backward, "gumbel_softmax", out, 1, x);
    if (nd) {
        nd->saved[0] = soft;
        nd->farg[0] = tau;
    }
    return out;
}

static void dropout_backward(vlp_tape *t, vlp_node *nd) {
    vlp_tensor *x = nd->in[0];
    vlp_mul_backward(grad_of(t, x), NULL, nd->out->grad, NULL, nd->saved[0], 1, x->n);
}

vlp_tensor *vlp_op_dropout(vlp_tape *t, vlp_tensor *x, float p, vlp_rng *rng) {
    VLP_ASSERT(p >= 0.0f && p < 1.0f, "dropout probability %g", p);
    if (p == 0.0f || !rng) return x;
    float *mask = vlp_tape_alloc(t, (size_t)x->n * sizeof(float));
    float keep = 1.0f / (1.0f - p);
    for (long i = 0; i < x->n; i++) mask[i] = vlp_rng_uniform(rng) < p ? 0.0f : keep;
    vlp_tensor *out = vlp_tape_tensor_like(t, x);
    vlp_mul_forward(out->data, x->data, mask, 1, x->n);
    vlp_node *nd = vlp_tape_record(t, dropout_backward, "dropout", out, 1, x);
    if (nd) nd->saved[0] = mask;
    return out;
}
