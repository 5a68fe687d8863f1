/* Differentiable ops: each runs its kernel (kernels.h), allocates its output
 * in the tape's arena and records a node when a gradient is needed.
 * Shape mistakes are programmer errors and abort with the shapes involved.
 * Ops never allocate on the heap. */
#ifndef VLP_OPS_H
#define VLP_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/rng.h"
#include "autograd/tape.h"

/* a (..., M, K) @ b (..., K, N) -> (..., M, N); ta/tb use a or b transposed
 * (their last two dims swapped). b has a's leading dims, or is 2-d and shared
 * by the whole batch. */
vlp_tensor *vlp_op_matmul(vlp_tape *t, vlp_tensor *a, vlp_tensor *b, bool ta, bool tb);

/* x (..., I) w^T + bias: w (O, I), bias (O) or NULL -> (..., O). */
vlp_tensor *vlp_op_linear(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias);

/* residual + linear(x, w, bias), residual of the output's shape: a residual
 * block's last layer. One node: the product accumulates onto the residual,
 * with no intermediate tensor (nor its zeroed gradient) between them. */
vlp_tensor *vlp_op_linear_residual(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias,
                                   vlp_tensor *residual);

/* Elementwise; b has a's shape, or a's trailing dims (broadcast over the
 * leading ones: a row vector, a (T, C) positional table). */
vlp_tensor *vlp_op_add(vlp_tape *t, vlp_tensor *a, vlp_tensor *b);
vlp_tensor *vlp_op_sub(vlp_tape *t, vlp_tensor *a, vlp_tensor *b);
vlp_tensor *vlp_op_mul(vlp_tape *t, vlp_tensor *a, vlp_tensor *b);

/* x * s, where s is a one-element tensor (exp(logit_scale)); or a constant. */
vlp_tensor *vlp_op_scale(vlp_tape *t, vlp_tensor *x, vlp_tensor *s);
vlp_tensor *vlp_op_mul_const(vlp_tape *t, vlp_tensor *x, float c);

vlp_tensor *vlp_op_exp(vlp_tape *t, vlp_tensor *x);
/* 1 / x elementwise (BLIP's logits = sims / temp). */
vlp_tensor *vlp_op_reciprocal(vlp_tape *t, vlp_tensor *x);

/* Over the last dim (dropping it; a 1-d input gives one element) or all. */
vlp_tensor *vlp_op_sum_last(vlp_tape *t, vlp_tensor *x);
vlp_tensor *vlp_op_mean_last(vlp_tape *t, vlp_tensor *x);
vlp_tensor *vlp_op_sum(vlp_tape *t, vlp_tensor *x);
vlp_tensor *vlp_op_mean(vlp_tape *t, vlp_tensor *x);

vlp_tensor *vlp_op_gelu(vlp_tape *t, vlp_tensor *x);       /* exact, erf */
vlp_tensor *vlp_op_quick_gelu(vlp_tape *t, vlp_tensor *x); /* x sigmoid(1.702 x) */
vlp_tensor *vlp_op_relu(vlp_tape *t, vlp_tensor *x);

/* The activation a model's config names (CLIP: gelu or quick_gelu). */
typedef enum vlp_activation {
    VLP_ACTIVATION_GELU,
    VLP_ACTIVATION_QUICK_GELU,
    VLP_ACTIVATION_RELU,
} vlp_activation;
vlp_tensor *vlp_op_activation(vlp_tape *t, vlp_tensor *x, vlp_activation act);

/* act(linear(x, w, bias)), the MLP's first layer. GELU is one fused node:
 * it saves the pre-activation, and its backward writes d(pre-activation)
 * into scratch (no zeroed gradient buffer, no accumulate pass) and takes
 * the bias gradient from it. Other activations are the two ops. */
vlp_tensor *vlp_op_linear_activation(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *bias,
                                     vlp_activation act);

/* residual + linear(act(linear(x, fc_w, fc_b)), proj_w, proj_b): a residual
 * block's whole MLP. GELU is one node that keeps only the pre-activation
 * (rows, hidden); backward recomputes the activation from it instead of
 * keeping it through the step, which halves the MLP's memory. Other
 * activations are vlp_op_linear_activation then vlp_op_linear_residual. */
vlp_tensor *vlp_op_mlp_residual(vlp_tape *t, vlp_tensor *x, vlp_tensor *fc_w, vlp_tensor *fc_b,
                                vlp_tensor *proj_w, vlp_tensor *proj_b, vlp_tensor *residual,
                                vlp_activation act);

/* Over the last dim; w, b: (C). */
vlp_tensor *vlp_op_layernorm(vlp_tape *t, vlp_tensor *x, vlp_tensor *w, vlp_tensor *b);
vlp_tensor *vlp_op_softmax(vlp_tape *t, vlp_tensor *x);
vlp_tensor *vlp_op_log_softmax(vlp_tape *t, vlp_tensor *x);

/* Multi-head attention: q (B, Tq, C), k and v (B, Tk, C) -> (B, Tq, C).
 * Self-attention passes the same source for q, k, v; cross-attention passes
 * text queries and image keys/values. key_mask (B, Tk), 0 = padding, may be
 * NULL; it is copied. causal needs Tq == Tk. */
vlp_tensor *vlp_op_attention(vlp_tape *t, vlp_tensor *q, vlp_tensor *k, vlp_tensor *v, int NH,
                             bool causal, const uint8_t *key_mask);

/* Self-attention on a packed qkv (B, T, 3C): each row holds q, k and v side
 * by side, as the output of OpenCLIP's in_proj (x in_proj_weight^T +
 * in_proj_bias). Same result as slicing q, k, v out and calling
 * vlp_op_attention, without the three copies: the kernel reads qkv with a
 * row stride of 3C and backward writes straight into qkv's gradient. */
vlp_tensor *vlp_op_attention_qkv(vlp_tape *t, vlp_tensor *qkv, int NH, bool causal,
                                 const uint8_t *key_mask);

/* Rows of table (V, C) at ids -> (n, C). ids are copied; each in [0, V). */
vlp_tensor *vlp_op_embedding(vlp_tape *t, vlp_tensor *table, const int *ids, long n);

/* Concatenates n (<= 4) tensors along dim; they agree on every other dim. */
vlp_tensor *vlp_op_concat(vlp_tape *t, int n, vlp_tensor *const *xs, int dim);
/* x[..., start:start+len, ...] along dim. */
vlp_tensor *vlp_op_slice(vlp_tape *t, vlp_tensor *x, int dim, int start, int len);

/* A view with another shape (same data and gradient buffer, no copy). One
 * size may be -1 (inferred). */
vlp_tensor *vlp_op_reshape(vlp_tape *t, vlp_tensor *x, int ndim, const int *shape);

/* Swaps the last two dims (batched over the leading ones). */
vlp_tensor *vlp_op_transpose(vlp_tape *t, vlp_tensor *x);

/* (B, T, NH*HS) <-> (B, NH, T, HS). */
vlp_tensor *vlp_op_split_heads(vlp_tape *t, vlp_tensor *x, int NH);
vlp_tensor *vlp_op_merge_heads(vlp_tape *t, vlp_tensor *x);

/* Row-wise x / max(||x||, 1e-12) over the last dim. */
vlp_tensor *vlp_op_l2_normalize(vlp_tape *t, vlp_tensor *x);

/* Row-wise x / (sum(x) + eps) over the last dim: GroupViT's normalisation
 * of an assignment over the patches a group takes (eps 1 there). */
vlp_tensor *vlp_op_sum_normalize(vlp_tape *t, vlp_tensor *x, float eps);

/* Mean cross-entropy of logits (N, C) against class ids (copied), skipping
 * rows equal to ignore_index, with label smoothing in [0, 1). One element. */
vlp_tensor *vlp_op_cross_entropy(vlp_tape *t, vlp_tensor *logits, const int *targets,
                                 int ignore_index, float smoothing);
/* Same against target distributions (N, C); no gradient flows to targets. */
vlp_tensor *vlp_op_cross_entropy_soft(vlp_tape *t, vlp_tensor *logits, vlp_tensor *targets);

/* softmax((x + g) / tau) over the last dim with Gumbel noise g drawn from
 * rng (no noise when rng is NULL, as at evaluation). hard: the forward value
 * is the one-hot argmax and the gradient is the soft one (straight-through,
 * y_hard - stop_grad(y_soft) + y_soft). */
vlp_tensor *vlp_op_gumbel_softmax(vlp_tape *t, vlp_tensor *x, float tau, bool hard, vlp_rng *rng);
/* The same with the noise given (x's shape; NULL: none): fixed noise for
 * tests and for parity with a reference that drew its own. */
vlp_tensor *vlp_op_gumbel_softmax_noise(vlp_tape *t, vlp_tensor *x, float tau, bool hard,
                                        const float *noise);

/* Inverted dropout with probability p, masks drawn from rng. Returns x
 * itself when p == 0 or rng is NULL (evaluation). */
vlp_tensor *vlp_op_dropout(vlp_tape *t, vlp_tensor *x, float p, vlp_rng *rng);

/* Same values, no gradient: backward stops here. */
vlp_tensor *vlp_op_stop_gradient(vlp_tape *t, vlp_tensor *x);

#endif
