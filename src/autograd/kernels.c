/* Forward/backward kernels (see kernels.h). Matmuls go through OpenBLAS;
 * the rest are plain loops the compiler can vectorise. Reductions that decide
 * a loss or a normalisation accumulate in double. */
#include "autograd/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "autograd/error.h"

void vlp_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- matmul ---------------------------------------------------------- */

void vlp_matmul_forward(float *c, const float *a, const float *b, int batch, int M, int N,
                        int K, bool ta, bool tb, bool b_shared) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (b_shared && !ta) { /* the batch is just more rows of a */
        vlp_gemm(false, tb, batch * M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
        return;
    }
    for (int i = 0; i < batch; i++) {
        const float *bi = b_shared ? b : b + (long)i * K * N;
        vlp_gemm(ta, tb, M, N, K, 1.0f, a + (long)i * M * K, lda, bi, ldb, 0.0f,
                 c + (long)i * M * N, N);
    }
}

void vlp_matmul_backward(float *da, float *db, const float *dc, const float *a, const float *b,
                         int batch, int M, int N, int K, bool ta, bool tb, bool b_shared) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (b_shared && !ta) {
        int rows = batch * M;
        /* dA = dC op(B)^T */
        if (da) vlp_gemm(false, !tb, rows, K, N, 1.0f, dc, N, b, ldb, 1.0f, da, lda);
        /* dB = A^T dC, or its transpose dC^T A when b is stored transposed */
        if (db) {
            if (tb) vlp_gemm(true, false, N, K, rows, 1.0f, dc, N, a, lda, 1.0f, db, ldb);
            else vlp_gemm(true, false, K, N, rows, 1.0f, a, lda, dc, N, 1.0f, db, ldb);
        }
        return;
    }
    for (int i = 0; i < batch; i++) {
        const float *ai = a + (long)i * M * K;
        const float *bi = b_shared ? b : b + (long)i * K * N;
        const float *dci = dc + (long)i * M * N;
        if (da) {
            float *dai = da + (long)i * M * K;
            if (!ta) vlp_gemm(false, !tb, M, K, N, 1.0f, dci, N, bi, ldb, 1.0f, dai, lda);
            else vlp_gemm(tb, true, K, M, N, 1.0f, bi, ldb, dci, N, 1.0f, dai, lda);
        }
        if (db) {
            float *dbi = b_shared ? db : db + (long)i * K * N;
            if (!tb) vlp_gemm(!ta, false, K, N, M, 1.0f, ai, lda, dci, N, 1.0f, dbi, ldb);
            else vlp_gemm(true, ta, N, K, M, 1.0f, dci, N, ai, lda, 1.0f, dbi, ldb);
        }
    }
}

/* ---- linear ---------------------------------------------------------- */

void vlp_linear_forward(float *out, const float *x, const float *w, const float *bias, int rows,
                        int In, int O) {
    vlp_gemm(false, true, rows, O, In, 1.0f, x, In, w, In, 0.0f, out, O);
    if (bias)
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < O; o++) out[(long)r * O + o] += bias[o];
}

void vlp_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                         const float *w, int rows, int In, int O) {
    if (dx) vlp_gemm(false, false, rows, In, O, 1.0f, dout, O, w, In, 1.0f, dx, In);
    if (dw) vlp_gemm(true, false, O, In, rows, 1.0f, dout, O, x, In, 1.0f, dw, In);
    if (dbias)
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < O; o++) dbias[o] += dout[(long)r * O + o];
}

/* ---- broadcasting elementwise ------------------------------------------ */

void vlp_add_forward(float *out, const float *a, const float *b, long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) out[o * inner + i] = a[o * inner + i] + b[i];
}

void vlp_add_backward(float *da, float *db, const float *dout, long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            if (da) da[o * inner + i] += dout[o * inner + i];
            if (db) db[i] += dout[o * inner + i];
        }
}

void vlp_sub_forward(float *out, const float *a, const float *b, long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) out[o * inner + i] = a[o * inner + i] - b[i];
}

void vlp_sub_backward(float *da, float *db, const float *dout, long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            if (da) da[o * inner + i] += dout[o * inner + i];
            if (db) db[i] -= dout[o * inner + i];
        }
}

void vlp_mul_forward(float *out, const float *a, const float *b, long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) out[o * inner + i] = a[o * inner + i] * b[i];
}

void vlp_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                      long outer, long inner) {
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < inner; i++) {
            float g = dout[o * inner + i];
            if (da) da[o * inner + i] += g * b[i];
            if (db) db[i] += g * a[o * inner + i];
        }
}

void vlp_scale_forward(float *out, const float *x, float s, long n) {
    for (long i = 0; i < n; i++) out[i] = x[i] * s;
}

void vlp_scale_backward(float *dx, float *ds, const float *dout, const float *x, float s, long n) {
    if (dx)
        for (long i = 0; i < n; i++) dx[i] += dout[i] * s;
    if (ds) {
        double acc = 0.0;
        for (long i = 0; i < n; i++) acc += (double)dout[i] * x[i];
        *ds += (float)acc;
    }
}

void vlp_exp_forward(float *out, const float *x, long n) {
    for (long i = 0; i < n; i++) out[i] = expf(x[i]);
}

void vlp_exp_backward(float *dx, const float *dout, const float *out, long n) {
    for (long i = 0; i < n; i++) dx[i] += dout[i] * out[i];
}

void vlp_sum_rows_forward(float *out, const float *x, long rows, int C, float scale) {
    for (long r = 0; r < rows; r++) {
        double acc = 0.0;
        for (int c = 0; c < C; c++) acc += x[r * C + c];
        out[r] = (float)(acc * scale);
    }
}

void vlp_sum_rows_backward(float *dx, const float *dout, long rows, int C, float scale) {
    for (long r = 0; r < rows; r++) {
        float g = dout[r] * scale;
        for (int c = 0; c < C; c++) dx[r * C + c] += g;
    }
}

/* ---- activations ------------------------------------------------------- */

void vlp_gelu_forward(float *out, const float *x, long n) {
    for (long i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void vlp_gelu_backward(float *dx, const float *dout, const float *x, long n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
    for (long i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * x[i] * x[i]);
        dx[i] += dout[i] * (cdf + x[i] * pdf);
    }
}

void vlp_quick_gelu_forward(float *out, const float *x, long n) {
    for (long i = 0; i < n; i++) out[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void vlp_quick_gelu_backward(float *dx, const float *dout, const float *x, long n) {
    for (long i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-1.702f * x[i]));
        dx[i] += dout[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
}

void vlp_relu_forward(float *out, const float *x, long n) {
    for (long i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void vlp_relu_backward(float *dx, const float *dout, const float *x, long n) {
    for (long i = 0; i < n; i++)
        if (x[i] > 0.0f) dx[i] += dout[i];
}

/* ---- normalisation ------------------------------------------------------- */

void vlp_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double m = 0.0, var = 0.0;
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        for (int c = 0; c < C; c++) var += (xr[c] - m) * (xr[c] - m);
        var /= C; /* biased, as torch */
        float s = (float)(1.0 / sqrt(var + 1e-5));
        float mf = (float)m;
        float *o = out + r * C;
        for (int c = 0; c < C; c++) o[c] = (xr[c] - mf) * s * w[c] + b[c];
        mean[r] = mf;
        rstd[r] = s;
    }
}

void vlp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, long rows,
                            int C) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * C, *g = dout + r * C;
        float m = mean[r], s = rstd[r];
        double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
        for (int c = 0; c < C; c++) {
            float norm = (xr[c] - m) * s;
            float dnorm = g[c] * w[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
            if (dw) dw[c] += g[c] * norm;
            if (db) db[c] += g[c];
        }
        if (!dx) continue;
        float a = (float)(dnorm_mean / C), bb = (float)(dnorm_norm_mean / C);
        float *d = dx + r * C;
        for (int c = 0; c < C; c++) {
            float norm = (xr[c] - m) * s;
            d[c] += s * (g[c] * w[c] - a - norm * bb);
        }
    }
}

/* ---- softmax ------------------------------------------------------------- */

void vlp_softmax_forward(float *out, const float *x, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float *o = out + r * C;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) mx = fmaxf(mx, xr[c]);
        if (mx == -INFINITY) { /* every entry masked */
            memset(o, 0, (size_t)C * sizeof *o);
            continue;
        }
        double sum = 0.0;
        for (int c = 0; c < C; c++) {
            o[c] = expf(xr[c] - mx);
            sum += o[c];
        }
        float inv = (float)(1.0 / sum);
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

void vlp_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *y = out + r * C, *g = dout + r * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) dot += (double)g[c] * y[c];
        float d = (float)dot;
        for (int c = 0; c < C; c++) dx[r * C + c] += y[c] * (g[c] - d);
    }
}

void vlp_log_softmax_forward(float *out, const float *x, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) mx = fmaxf(mx, xr[c]);
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += exp((double)xr[c] - mx);
        float lse = mx + (float)log(sum);
        for (int c = 0; c < C; c++) out[r * C + c] = xr[c] - lse;
    }
}

void vlp_log_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *y = out + r * C, *g = dout + r * C;
        double gsum = 0.0;
        for (int c = 0; c < C; c++) gsum += g[c];
        float s = (float)gsum;
        for (int c = 0; c < C; c++) dx[r * C + c] += g[c] - expf(y[c]) * s;
    }
}

/* ---- attention ------------------------------------------------------------ */

void vlp_attention_forward(float *out, float *probs, const float *q, const float *k,
                           const float *v, const vlp_attention_dims *d) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    VLP_ASSERT(C % NH == 0, "width %d not divisible by %d heads", C, NH);
    VLP_ASSERT(!d->causal || Tq == Tk, "causal attention needs Tq == Tk (%d, %d)", Tq, Tk);
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++) {
        const uint8_t *km = d->key_mask ? d->key_mask + (long)b * Tk : NULL;
        for (int h = 0; h < NH; h++) {
            const float *qh = q + (long)b * Tq * d->ldq + h * HS;
            const float *kh = k + (long)b * Tk * d->ldk + h * HS;
            const float *vh = v + (long)b * Tk * d->ldv + h * HS;
            float *p = probs + ((long)b * NH + h) * Tq * Tk;
            vlp_gemm(false, true, Tq, Tk, HS, scale, qh, d->ldq, kh, d->ldk, 0.0f, p, Tk);
            if (d->causal || km)
                for (int i = 0; i < Tq; i++)
                    for (int j = 0; j < Tk; j++)
                        if ((d->causal && j > i) || (km && !km[j])) p[(long)i * Tk + j] = -INFINITY;
            vlp_softmax_forward(p, p, Tq, Tk);
            vlp_gemm(false, false, Tq, HS, Tk, 1.0f, p, Tk, vh, d->ldv, 0.0f,
                     out + (long)b * Tq * C + h * HS, C);
        }
    }
}

void vlp_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *q, const float *k, const float *v, const float *probs,
                            const vlp_attention_dims *d) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            long qo = (long)b * Tq * d->ldq + h * HS;
            long ko = (long)b * Tk * d->ldk + h * HS;
            long vo = (long)b * Tk * d->ldv + h * HS;
            const float *p = probs + ((long)b * NH + h) * Tq * Tk;
            const float *go = dout + (long)b * Tq * C + h * HS;
            if (dv) vlp_gemm(true, false, Tk, HS, Tq, 1.0f, p, Tk, go, C, 1.0f, dv + vo, d->ldv);
            if (!dq && !dk) continue;
            /* dP = dO V^T, then dS = P * (dP - rowsum(dP * P)): softmax backward. */
            vlp_gemm(false, true, Tq, Tk, HS, 1.0f, go, C, v + vo, d->ldv, 0.0f, scratch, Tk);
            for (int i = 0; i < Tq; i++) {
                float *ds = scratch + (long)i * Tk;
                const float *pi = p + (long)i * Tk;
                double dot = 0.0;
                for (int j = 0; j < Tk; j++) dot += (double)ds[j] * pi[j];
                for (int j = 0; j < Tk; j++) ds[j] = pi[j] * (ds[j] - (float)dot);
            }
            if (dq) vlp_gemm(false, false, Tq, HS, Tk, scale, scratch, Tk, k + ko, d->ldk, 1.0f,
                             dq + qo, d->ldq);
            if (dk) vlp_gemm(true, false, Tk, HS, Tq, scale, scratch, Tk, q + qo, d->ldq, 1.0f,
                             dk + ko, d->ldk);
        }
}

/* ---- embedding, normalisation, losses --------------------------------- */

void vlp_embedding_forward(float *out, const float *table, const int *ids, long n, int C) {
    for (long i = 0; i < n; i++)
        memcpy(out + i * C, table + (long)ids[i] * C, (size_t)C * sizeof *out);
}

void vlp_embedding_backward(float *dtable, const float *dout, const int *ids, long n, int C) {
    for (long i = 0; i < n; i++) {
        float *d = dtable + (long)ids[i] * C;
        for (int c = 0; c < C; c++) d[c] += dout[i * C + c];
    }
}

void vlp_l2_normalize_forward(float *out, float *norm, const float *x, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[r * C + c] * x[r * C + c];
        float nrm = (float)sqrt(ss);
        norm[r] = nrm;
        float inv = 1.0f / fmaxf(nrm, 1e-12f);
        for (int c = 0; c < C; c++) out[r * C + c] = x[r * C + c] * inv;
    }
}

void vlp_l2_normalize_backward(float *dx, const float *dout, const float *out,
                               const float *norm, long rows, int C) {
    for (long r = 0; r < rows; r++) {
        const float *y = out + r * C, *g = dout + r * C;
        float inv = 1.0f / fmaxf(norm[r], 1e-12f);
        /* Below eps the op is a plain scaling: no projection term. */
        double dot = 0.0;
        if (norm[r] > 1e-12f)
            for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
        for (int c = 0; c < C; c++) dx[r * C + c] += (g[c] - y[c] * (float)dot) * inv;
    }
}

/* Target probability of class c in row r. */
static float target_prob(const int *targets, const float *soft, long r, int C, int c,
                         float smoothing) {
    if (soft) return soft[r * C + c];
    return (c == targets[r] ? 1.0f - smoothing : 0.0f) + smoothing / C;
}

float vlp_cross_entropy_forward(float *probs, int *count, const float *logits, const int *targets,
                                const float *soft, long rows, int C, int ignore_index,
                                float smoothing) {
    double total = 0.0;
    int n = 0;
    vlp_softmax_forward(probs, logits, rows, C);
    for (long r = 0; r < rows; r++) {
        if (!soft) {
            if (targets[r] == ignore_index) continue;
            VLP_ASSERT(targets[r] >= 0 && targets[r] < C, "target %d outside [0, %d)",
                       targets[r], C);
        }
        const float *x = logits + r * C;
        float mx = -INFINITY;
        for (int c = 0; c < C; c++) mx = fmaxf(mx, x[c]);
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += exp((double)x[c] - mx);
        double lse = mx + log(sum), loss = 0.0;
        for (int c = 0; c < C; c++) {
            float t = target_prob(targets, soft, r, C, c, smoothing);
            if (t != 0.0f) loss += t * (lse - x[c]);
        }
        total += loss;
        n++;
    }
    *count = n;
    return n ? (float)(total / n) : 0.0f;
}

void vlp_cross_entropy_backward(float *dlogits, float dloss, const float *probs,
                                const int *targets, const float *soft, int count, long rows,
                                int C, int ignore_index, float smoothing) {
    if (count == 0) return;
    float g = dloss / count;
    for (long r = 0; r < rows; r++) {
        if (!soft && targets[r] == ignore_index) continue;
        /* Soft targets need not sum to one: d/dx of sum_c t_c (lse - x_c). */
        float tsum = 1.0f;
        if (soft) {
            tsum = 0.0f;
            for (int c = 0; c < C; c++) tsum += soft[r * C + c];
        }
        for (int c = 0; c < C; c++)
            dlogits[r * C + c] +=
                g * (tsum * probs[r * C + c] - target_prob(targets, soft, r, C, c, smoothing));
    }
}

/* ---- data movement ------------------------------------------------------ */

void vlp_copy_strided(float *dst, long dst_stride, const float *src, long src_stride, long outer,
                      long chunk, bool accumulate) {
    for (long o = 0; o < outer; o++) {
        float *d = dst + o * dst_stride;
        const float *s = src + o * src_stride;
        if (accumulate)
            for (long i = 0; i < chunk; i++) d[i] += s[i];
        else
            memcpy(d, s, (size_t)chunk * sizeof *d);
    }
}

void vlp_transpose_forward(float *out, const float *x, long batch, int R, int C, bool accumulate) {
    for (long b = 0; b < batch; b++) {
        const float *xb = x + b * R * C;
        float *ob = out + b * R * C;
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) {
                float val = xb[(long)r * C + c];
                if (accumulate) ob[(long)c * R + r] += val;
                else ob[(long)c * R + r] = val;
            }
    }
}

void vlp_swap12_forward(float *out, const float *x, int A, int B, int C, int D, bool accumulate) {
    for (int a = 0; a < A; a++)
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                const float *s = x + (((long)a * B + b) * C + c) * D;
                float *d = out + (((long)a * C + c) * B + b) * D;
                vlp_copy_strided(d, 0, s, 0, 1, D, accumulate);
            }
}
