/* Kernels against naive loops written out index by index (in double), and
 * against values worked out by hand. Gradient checks prove backward matches
 * forward; these prove forward computes the right function. */
#include <math.h>
#include <string.h>

#include "autograd/kernels.h"
#include "base/rng.h"
#include "testutil.h"

static float *randn(long n, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof *x);
    vlp_rng rng;
    vlp_rng_init(&rng, seed);
    vlp_rng_fill_normal(&rng, x, n, 0.0f, 1.0f);
    return x;
}

static void expect_close(const float *got, const double *want, long n, double tol, const char *what) {
    for (long i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
                      "%s[%ld]: got %.7g, want %.7g", what, i, got[i], want[i]);
}

/* Element (i, j) of op(X) where X is stored (rows, cols) and op transposes. */
static double at(const float *x, bool t, int ld, int i, int j) {
    return t ? x[(long)j * ld + i] : x[(long)i * ld + j];
}

START_TEST(test_matmul_all_layouts) {
    int batch = 3, M = 4, N = 5, K = 6;
    for (int layout = 0; layout < 8; layout++) {
        bool ta = layout & 1, tb = layout & 2, shared = layout & 4;
        float *a = randn((long)batch * M * K, 1), *b = randn((long)batch * K * N, 2);
        float *dc = randn((long)batch * M * N, 3);
        float *c = malloc(sizeof(float) * batch * M * N);
        float *da = calloc((size_t)batch * M * K, sizeof(float));
        float *db = calloc((size_t)batch * K * N, sizeof(float));
        double *want = calloc((size_t)batch * M * K * N, sizeof(double));
        double *wda = calloc((size_t)batch * M * K, sizeof(double));
        double *wdb = calloc((size_t)batch * K * N, sizeof(double));
        int lda = ta ? M : K, ldb = tb ? K : N;
        vlp_matmul_forward(c, a, b, batch, M, N, K, ta, tb, shared);
        vlp_matmul_backward(da, db, dc, a, b, batch, M, N, K, ta, tb, shared);
        for (int s = 0; s < batch; s++) {
            const float *as = a + (long)s * M * K, *bs = shared ? b : b + (long)s * K * N;
            const float *dcs = dc + (long)s * M * N;
            double *wdas = wda + (long)s * M * K, *wdbs = shared ? wdb : wdb + (long)s * K * N;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double acc = 0.0;
                    for (int k = 0; k < K; k++) acc += at(as, ta, lda, i, k) * at(bs, tb, ldb, k, j);
                    want[(long)s * M * N + i * N + j] = acc;
                    for (int k = 0; k < K; k++) {
                        /* d op(A)[i,k] = dC[i,j] op(B)[k,j]; stored transposed when ta. */
                        wdas[ta ? (long)k * M + i : (long)i * K + k] += dcs[i * N + j] * at(bs, tb, ldb, k, j);
                        wdbs[tb ? (long)j * K + k : (long)k * N + j] += dcs[i * N + j] * at(as, ta, lda, i, k);
                    }
                }
        }
        expect_close(c, want, (long)batch * M * N, 1e-5, "matmul");
        expect_close(da, wda, (long)batch * M * K, 1e-5, "matmul da");
        expect_close(db, wdb, shared ? (long)K * N : (long)batch * K * N, 1e-5, "matmul db");
        free(a), free(b), free(c), free(dc), free(da), free(db), free(want), free(wda), free(wdb);
    }
}
END_TEST

START_TEST(test_linear) {
    int rows = 5, I = 7, O = 3;
    float *x = randn(rows * I, 4), *w = randn(O * I, 5), *b = randn(O, 6), out[15];
    double want[15];
    vlp_linear_forward(out, x, w, b, rows, I, O);
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < O; o++) {
            double acc = b[o];
            for (int i = 0; i < I; i++) acc += (double)x[r * I + i] * w[o * I + i];
            want[r * O + o] = acc;
        }
    expect_close(out, want, rows * O, 1e-5, "linear");
    free(x), free(w), free(b);
}
END_TEST

START_TEST(test_activations_by_hand) {
    /* gelu(x) = x Phi(x): Phi(1) = 0.841344746, Phi(-1) = 0.158655254.
     * quick_gelu(1) = 1 / (1 + e^-1.702) = 0.845827. */
    float x[3] = {1.0f, -1.0f, 0.0f}, y[3];
    vlp_gelu_forward(y, x, 3);
    ck_assert_float_eq_tol(y[0], 0.8413447f, 1e-6f);
    ck_assert_float_eq_tol(y[1], -0.1586553f, 1e-6f);
    ck_assert_float_eq(y[2], 0.0f);
    vlp_quick_gelu_forward(y, x, 3);
    ck_assert_float_eq_tol(y[0], (float)(1.0 / (1.0 + exp(-1.702))), 1e-6f);
    ck_assert_float_eq_tol(y[1], (float)(-1.0 / (1.0 + exp(1.702))), 1e-6f);
    vlp_relu_forward(y, x, 3);
    ck_assert(y[0] == 1.0f && y[1] == 0.0f && y[2] == 0.0f);
}
END_TEST

START_TEST(test_layernorm) {
    int rows = 3, C = 10;
    float *x = randn(rows * C, 7), *w = randn(C, 8), *b = randn(C, 9), out[30], mean[3], rstd[3];
    double want[30];
    for (int i = 0; i < C; i++) x[i] = 100.0f + x[i]; /* a large offset must not hurt */
    vlp_layernorm_forward(out, mean, rstd, x, w, b, rows, C);
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++) want[r * C + c] = (x[r * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c];
    }
    expect_close(out, want, rows * C, 1e-4, "layernorm");
    free(x), free(w), free(b);
}
END_TEST

START_TEST(test_softmax_family) {
    int rows = 4, C = 6;
    float *x = randn(rows * C, 10), sm[24], lsm[24];
    double want[24], lwant[24];
    x[0] = -INFINITY; /* a masked entry */
    vlp_softmax_forward(sm, x, rows, C);
    vlp_log_softmax_forward(lsm, x + C, rows - 1, C);
    for (int r = 0; r < rows; r++) {
        double z = 0;
        for (int c = 0; c < C; c++) z += exp((double)x[r * C + c]);
        for (int c = 0; c < C; c++) want[r * C + c] = exp((double)x[r * C + c]) / z;
        for (int c = 0; c < C && r > 0; c++) lwant[(r - 1) * C + c] = x[r * C + c] - log(z);
    }
    expect_close(sm, want, rows * C, 1e-6, "softmax");
    expect_close(lsm, lwant, (rows - 1) * C, 1e-6, "log_softmax");
    /* A row with every entry masked gives zeros, not NaN. */
    for (int c = 0; c < C; c++) x[c] = -INFINITY;
    vlp_softmax_forward(sm, x, 1, C);
    for (int c = 0; c < C; c++) ck_assert_float_eq(sm[c], 0.0f);
    free(x);
}
END_TEST

/* Attention written as the paper's formula, one (batch, head, query) at a time. */
START_TEST(test_attention) {
    int B = 2, Tq = 4, Tk = 5, C = 6, NH = 3, HS = 2;
    for (int variant = 0; variant < 3; variant++) {
        bool causal = variant == 1;
        int tk = causal ? Tq : Tk;
        uint8_t mask[10] = {1, 1, 0, 1, 0, 0, 0, 0, 0, 0}; /* batch 1 sees no key */
        const uint8_t *km = variant == 2 ? mask : NULL;
        float *q = randn(B * Tq * C, 11), *k = randn(B * tk * C, 12), *v = randn(B * tk * C, 13);
        float out[48];
        double want[48];
        vlp_attention_dims d = {.B = B, .Tq = Tq, .Tk = tk, .C = C, .NH = NH, .ldq = C, .ldk = C,
                                .ldv = C, .causal = causal, .key_mask = km};
        float *scratch = malloc(vlp_attention_scratch_floats(&d) * sizeof(float));
        vlp_attention_forward(out, scratch, q, k, v, &d);
        free(scratch);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < Tq; i++) {
                    double s[5], mx = -INFINITY, z = 0;
                    for (int j = 0; j < tk; j++) {
                        bool ok = !(causal && j > i) && !(km && !km[b * tk + j]);
                        double dot = 0;
                        for (int e = 0; e < HS; e++)
                            dot += (double)q[(b * Tq + i) * C + h * HS + e] * k[(b * tk + j) * C + h * HS + e];
                        s[j] = ok ? dot / sqrt(HS) : -INFINITY;
                        mx = fmax(mx, s[j]);
                    }
                    for (int j = 0; j < tk; j++) z += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
                    for (int e = 0; e < HS; e++) {
                        double acc = 0;
                        for (int j = 0; j < tk && z > 0; j++)
                            if (s[j] != -INFINITY) acc += exp(s[j] - mx) / z * v[(b * tk + j) * C + h * HS + e];
                        want[(b * Tq + i) * C + h * HS + e] = acc;
                    }
                }
        expect_close(out, want, B * Tq * C, 1e-5, "attention");
        free(q), free(k), free(v);
    }
}
END_TEST

START_TEST(test_cross_entropy) {
    int rows = 5, C = 4, count;
    float *x = randn(rows * C, 14), probs[20];
    int targets[5] = {3, -100, 0, 1, 1};
    for (int smoothing = 0; smoothing < 2; smoothing++) {
        float eps = smoothing ? 0.1f : 0.0f;
        float loss = vlp_cross_entropy_forward(probs, &count, x, targets, NULL, rows, C, -100, eps);
        /* torch: (1 - eps) * nll(target) + eps * mean over classes of nll(c). */
        double want = 0;
        for (int r = 0; r < rows; r++) {
            if (targets[r] == -100) continue;
            double z = 0, nll_mean = 0;
            for (int c = 0; c < C; c++) z += exp((double)x[r * C + c]);
            for (int c = 0; c < C; c++) nll_mean += (log(z) - x[r * C + c]) / C;
            want += (1 - eps) * (log(z) - x[r * C + targets[r]]) + eps * nll_mean;
        }
        ck_assert_int_eq(count, 4);
        ck_assert_double_eq_tol(loss, want / 4, 1e-6);
    }
    /* Soft one-hot targets give the plain loss. */
    float soft[20] = {0};
    int ids[5] = {3, 2, 0, 1, 1};
    for (int r = 0; r < rows; r++) soft[r * C + ids[r]] = 1.0f;
    float hard = vlp_cross_entropy_forward(probs, &count, x, ids, NULL, rows, C, -100, 0.0f);
    float softl = vlp_cross_entropy_forward(probs, &count, x, NULL, soft, rows, C, -100, 0.0f);
    ck_assert_float_eq_tol(hard, softl, 1e-6f);
    free(x);
}
END_TEST

START_TEST(test_l2_normalize_and_embedding) {
    float x[6] = {3, 4, 0, 0, 0, 0}, y[6], norm[3];
    vlp_l2_normalize_forward(y, norm, x, 3, 2);
    ck_assert_float_eq_tol(y[0], 0.6f, 1e-7f);
    ck_assert_float_eq_tol(y[1], 0.8f, 1e-7f);
    ck_assert_float_eq(norm[0], 5.0f);
    ck_assert(y[2] == 0.0f && y[3] == 0.0f); /* a zero row stays zero, no NaN */

    float table[6] = {1, 2, 3, 4, 5, 6}, out[6], dtable[6] = {0}, dout[6] = {1, 1, 1, 1, 1, 1};
    int ids[3] = {2, 0, 2};
    vlp_embedding_forward(out, table, ids, 3, 2);
    ck_assert(out[0] == 5 && out[1] == 6 && out[2] == 1 && out[3] == 2 && out[4] == 5);
    vlp_embedding_backward(dtable, dout, ids, 3, 2);
    ck_assert(dtable[0] == 1 && dtable[2] == 0 && dtable[4] == 2);
}
END_TEST

START_TEST(test_data_movement) {
    float x[24], out[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    vlp_transpose_forward(out, x, 2, 3, 4, false); /* (2, 3, 4) -> (2, 4, 3) */
    for (int b = 0; b < 2; b++)
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 4; c++) ck_assert_float_eq(out[b * 12 + c * 3 + r], x[b * 12 + r * 4 + c]);
    vlp_swap12_forward(out, x, 2, 3, 2, 2, false); /* (2, 3, 2, 2) -> (2, 2, 3, 2) */
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++)
                for (int d = 0; d < 2; d++)
                    ck_assert_float_eq(out[((a * 2 + c) * 3 + b) * 2 + d], x[((a * 3 + b) * 2 + c) * 2 + d]);
    /* concat of (2, 1, 2) and (2, 2, 2) along dim 1 by two strided copies */
    float a1[4] = {1, 2, 3, 4}, b1[8] = {5, 6, 7, 8, 9, 10, 11, 12}, cat[12];
    vlp_copy_strided(cat, 6, a1, 2, 2, 2, false);
    vlp_copy_strided(cat + 2, 6, b1, 4, 2, 4, false);
    float want[12] = {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12};
    for (int i = 0; i < 12; i++) ck_assert_float_eq(cat[i], want[i]);
}
END_TEST

/* The OpenBLAS kernel note: silent when the kernel fits the CPU or either
 * is unknown; names the forcing variable, else suggests one. */
START_TEST(test_blas_kernel_note) {
    const char *avx512 = "flags\t\t: fpu sse avx fma avx2 avx512f avx512dq avx512bw avx512vl\n";
    const char *avx2 = "flags\t\t: fpu sse avx fma avx2 avx512_bf16\n"; /* no avx512f word */
    char buf[512];
    ck_assert_str_eq(vlp_blas_kernel_note_for(buf, sizeof buf, "Haswell", avx2, "Haswell"), "");
    ck_assert_str_eq(vlp_blas_kernel_note_for(buf, sizeof buf, "Zen", avx2, NULL), "");
    ck_assert_str_eq(vlp_blas_kernel_note_for(buf, sizeof buf, "SkylakeX", avx512, NULL), "");
    ck_assert_str_eq(vlp_blas_kernel_note_for(buf, sizeof buf, "Haswell", NULL, "Haswell"), "");
    ck_assert_str_eq(vlp_blas_kernel_note_for(buf, sizeof buf, "Bulldozer", avx512, NULL), "");
    vlp_blas_kernel_note_for(buf, sizeof buf, "Haswell", avx512, "Haswell");
    ck_assert_msg(strstr(buf, "OPENBLAS_CORETYPE=Haswell forces") && strstr(buf, "AVX-512"), "%s", buf);
    vlp_blas_kernel_note_for(buf, sizeof buf, "Zen", avx512, NULL);
    ck_assert_msg(strstr(buf, "OPENBLAS_CORETYPE=SkylakeX may be faster"), "%s", buf);
    vlp_blas_kernel_note_for(buf, sizeof buf, "sandybridge", avx2, "SANDYBRIDGE");
    ck_assert_msg(strstr(buf, "(AVX)") && strstr(buf, "with AVX2"), "%s", buf);
    vlp_blas_kernel_note_for(buf, 16, "Haswell", avx512, "Haswell"); /* truncated, terminated */
    ck_assert_uint_eq(strlen(buf), 15);
}
END_TEST

VLP_SUITE(kernels_suite, "kernels", test_matmul_all_layouts, test_linear, test_activations_by_hand, test_layernorm,
          test_softmax_family, test_attention, test_cross_entropy, test_l2_normalize_and_embedding,
          test_data_movement, test_blas_kernel_note)

VLP_TEST_MAIN(kernels_suite)
