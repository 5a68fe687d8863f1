/* Raw forward/backward kernels on float pointers, in llm.c's style: outputs
 * first, then inputs, then sizes. They know nothing of tensors or the tape
 * (ops.c wraps them). Every backward accumulates (+=) into its input
 * gradients; a NULL gradient pointer means "not needed, skip".
 *
 * Kernels run on vlp_kernel_threads() threads (OpenMP) when the work is
 * large enough, in static splits: a run is deterministic for a given number
 * of threads. Outside OpenBLAS each output value is computed in the same
 * order whatever the number of threads; OpenBLAS's rounding depends on the
 * block of rows it is given, so products may differ in the last bits
 * between thread counts (as with OpenBLAS's own threads). */
#ifndef VLP_KERNELS_H
#define VLP_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The number of threads kernels use: OpenBLAS's count (OPENBLAS_NUM_THREADS,
 * else OMP_NUM_THREADS, else the number of cores; at most the number of
 * cores), lowered to OMP_NUM_THREADS when that is set; 1 without OpenMP.
 * The first call decides (so an openblas_set_num_threads before it counts)
 * and sets OpenBLAS itself to one thread: vlp_gemm splits large products
 * over these threads, and small ones run on the calling thread (attention's
 * per-head products, one head per thread). */
int vlp_kernel_threads(void);

/* A one-line warning when OpenBLAS runs its kernels for an older
 * instruction set than this CPU has (OPENBLAS_CORETYPE=Haswell, AVX2, on a
 * CPU with AVX-512), else "". The programs print it at start; nothing
 * changes the variable: it may be set on purpose (the same rounding on
 * every machine). Returns buf. */
const char *vlp_blas_kernel_note(char *buf, size_t n);
/* The same decision from its inputs: OpenBLAS's core name
 * (openblas_get_corename()), the CPU's feature flags (/proc/cpuinfo's
 * "flags" line, NULL if unknown) and OPENBLAS_CORETYPE (NULL if unset). */
const char *vlp_blas_kernel_note_for(char *buf, size_t n, const char *core, const char *cpu_flags,
                                     const char *coretype);

/* C = alpha * op(A) op(B) + beta * C, row-major, op = transpose when t*. */
void vlp_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* Batched matmul. a: (batch, M, K) or (batch, K, M) when ta; b: (batch, K, N)
 * or (batch, N, K) when tb, or one matrix shared by the batch (b_shared). */
void vlp_matmul_forward(float *c, const float *a, const float *b, int batch, int M, int N,
                        int K, bool ta, bool tb, bool b_shared);
void vlp_matmul_backward(float *da, float *db, const float *dc, const float *a, const float *b,
                         int batch, int M, int N, int K, bool ta, bool tb, bool b_shared);

/* out (rows, O) = x (rows, In) w^T (O, In) + bias (O); bias may be NULL. */
void vlp_linear_forward(float *out, const float *x, const float *w, const float *bias, int rows,
                        int In, int O);
/* out (rows, O) = residual (rows, O) + bias (O) + x (rows, In) w^T (O, In):
 * a linear layer that ends on a residual connection; bias may be NULL.
 * Backward: vlp_linear_backward, and dresidual += dout. */
void vlp_linear_residual_forward(float *out, const float *x, const float *w, const float *bias,
                                 const float *residual, int rows, int In, int O);
void vlp_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                         const float *w, int rows, int In, int O);

/* Elementwise a op b where b (inner) repeats over outer: a is (outer, inner). */
void vlp_add_forward(float *out, const float *a, const float *b, long outer, long inner);
void vlp_add_backward(float *da, float *db, const float *dout, long outer, long inner);
void vlp_sub_forward(float *out, const float *a, const float *b, long outer, long inner);
void vlp_sub_backward(float *da, float *db, const float *dout, long outer, long inner);
void vlp_mul_forward(float *out, const float *a, const float *b, long outer, long inner);
void vlp_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                      long outer, long inner);

/* out = x * s for one scalar s; ds += sum(dout * x). */
void vlp_scale_forward(float *out, const float *x, float s, long n);
void vlp_scale_backward(float *dx, float *ds, const float *dout, const float *x, float s, long n);

void vlp_exp_forward(float *out, const float *x, long n);
void vlp_exp_backward(float *dx, const float *dout, const float *out, long n);
/* out = 1 / x; dx += -dout out^2. */
void vlp_reciprocal_forward(float *out, const float *x, long n);
void vlp_reciprocal_backward(float *dx, const float *dout, const float *out, long n);

/* out (rows) = scale * sum over the last dim of x (rows, C). */
void vlp_sum_rows_forward(float *out, const float *x, long rows, int C, float scale);
void vlp_sum_rows_backward(float *dx, const float *dout, long rows, int C, float scale);

/* x Phi(x), Phi the standard normal cdf (erf GELU), to float precision. */
void vlp_gelu_forward(float *out, const float *x, long n);
void vlp_gelu_backward(float *dx, const float *dout, const float *x, long n);
/* Backward of gelu(u), u = x w^T + bias (rows, C), fused with the bias
 * gradient: writes (=, not +=) du = dout * gelu'(u) and adds du's column
 * sums to dbias (NULL: skipped). */
void vlp_gelu_bias_backward(float *du, float *dbias, const float *dout, const float *u,
                            long rows, int C);
void vlp_quick_gelu_forward(float *out, const float *x, long n); /* x * sigmoid(1.702 x) */
void vlp_quick_gelu_backward(float *dx, const float *dout, const float *x, long n);
void vlp_relu_forward(float *out, const float *x, long n);
void vlp_relu_backward(float *dx, const float *dout, const float *x, long n);

/* LayerNorm over the last dim (eps 1e-5, as torch.nn.LayerNorm); saves
 * mean and rstd (rows) for backward. */
void vlp_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, long rows, int C);
void vlp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, long rows,
                            int C);

/* Softmax over the last dim; rows of -inf become rows of zeros. */
void vlp_softmax_forward(float *out, const float *x, long rows, int C);
void vlp_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C);
void vlp_log_softmax_forward(float *out, const float *x, long rows, int C);
void vlp_log_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C);

/* Multi-head scaled-dot-product attention. q: (B, Tq, .) with row stride
 * ldq, heads side by side in the first C columns; k, v: (B, Tk, .) with
 * strides ldk, ldv; out: (B, Tq, C) contiguous. causal masks key j > query
 * i (needs Tq == Tk); key_mask (B, Tk), when not NULL, masks keys whose
 * entry is 0. A query that may see no key gets a zero output. Nothing is
 * saved: backward recomputes each head's probabilities (Tq, Tk) from q and
 * k, bit for bit, so a step keeps no (B, NH, Tq, Tk) buffer. */
typedef struct vlp_attention_dims {
    int B, Tq, Tk, C, NH;
    int ldq, ldk, ldv;
    bool causal;
    const uint8_t *key_mask;
} vlp_attention_dims;

/* scratch, both ways: vlp_attention_scratch_floats(d) floats (2 Tq Tk per
 * thread). dq, dk, dv use the strides of q, k, v, and may share one buffer
 * (the packed gradient of a packed qkv). */
size_t vlp_attention_scratch_floats(const vlp_attention_dims *d);
void vlp_attention_forward(float *out, float *scratch, const float *q, const float *k,
                           const float *v, const vlp_attention_dims *d);
void vlp_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *q, const float *k, const float *v,
                            const vlp_attention_dims *d);

/* out (n, C) = table[ids[i]]; dtable[ids[i]] += dout[i]. */
void vlp_embedding_forward(float *out, const float *table, const int *ids, long n, int C);
void vlp_embedding_backward(float *dtable, const float *dout, const int *ids, long n, int C);

/* out = x / max(||x||, eps) per row, eps 1e-12 as F.normalize; saves norm. */
void vlp_l2_normalize_forward(float *out, float *norm, const float *x, long rows, int C);
void vlp_l2_normalize_backward(float *dx, const float *dout, const float *out,
                               const float *norm, long rows, int C);

/* out = x / (sum(x) + eps) per row (GroupViT's assignment normalisation);
 * saves the denominator. */
void vlp_sum_normalize_forward(float *out, float *denom, const float *x, long rows, int C,
                               float eps);
void vlp_sum_normalize_backward(float *dx, const float *dout, const float *out,
                                const float *denom, long rows, int C);

/* Mean cross-entropy over rows whose target is not ignore_index. Targets are
 * class ids (targets) with label smoothing, or distributions (soft, rows x C)
 * when soft is not NULL. Saves softmax probabilities; *count gets the number
 * of rows that count. Returns the mean loss (0 when no row counts). */
float vlp_cross_entropy_forward(float *probs, int *count, const float *logits, const int *targets,
                                const float *soft, long rows, int C, int ignore_index,
                                float smoothing);
void vlp_cross_entropy_backward(float *dlogits, float dloss, const float *probs,
                                const int *targets, const float *soft, int count, long rows,
                                int C, int ignore_index, float smoothing);

/* For o < outer: dst[o*dst_stride + i] (+)= src[o*src_stride + i], i < chunk.
 * Concat and slice along any dim are this copy with the right strides. */
void vlp_copy_strided(float *dst, long dst_stride, const float *src, long src_stride, long outer,
                      long chunk, bool accumulate);

/* out (batch, C, R) = x (batch, R, C) transposed; accumulates when asked. */
void vlp_transpose_forward(float *out, const float *x, long batch, int R, int C, bool accumulate);

/* out (A, C, B, D) = x (A, B, C, D): swaps the middle axes (head split and merge). */
void vlp_swap12_forward(float *out, const float *x, int A, int B, int C, int D, bool accumulate);

#endif
