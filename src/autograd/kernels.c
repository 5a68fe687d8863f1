/* Forward/backward kernels (see kernels.h). Matmuls go through OpenBLAS;
 * the rest are plain loops the compiler can vectorise, split over OpenMP
 * threads. Reductions that decide a loss or a normalisation accumulate in double. */
#include "autograd/kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/error.h"

/* ---- threads ------------------------------------------------------------ */

/* Every kernel splits its work into static, contiguous ranges of
 * independent rows, columns or elements, and no reduction is ever split
 * across threads, so each output value is computed by the same operations
 * in the same order whatever the number of threads. The one exception is
 * OpenBLAS itself: its rounding depends on the block of rows it is handed,
 * so a product split over another number of threads can differ in the last
 * bits (as with OpenBLAS's own threads). */

static int threads_max = 1;
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void threads_init(void) {
#ifdef _OPENMP
    /* OpenBLAS has read OPENBLAS_NUM_THREADS (or GOTO_, OMP_NUM_THREADS, or
     * the core count); OMP_NUM_THREADS, when set, may only lower it. */
    int n = openblas_get_num_threads();
    const char *omp = getenv("OMP_NUM_THREADS");
    if (omp && *omp && omp_get_max_threads() < n) n = omp_get_max_threads();
    threads_max = n > 1 ? n : 1;
    /* vlp_gemm splits large products over our threads and attention runs
     * its heads on them: OpenBLAS's own threads would only nest inside ours
     * (and its threaded driver mallocs on every call). */
    openblas_set_num_threads(1);
#endif
}

int vlp_kernel_threads(void) {
    pthread_once(&threads_once, threads_init);
    return threads_max;
}

/* ---- which OpenBLAS kernel ------------------------------------------------ */

/* Instruction sets in order: what a kernel uses, what a CPU has. */
enum isa { ISA_UNKNOWN = -1, ISA_SSE, ISA_AVX, ISA_AVX2, ISA_AVX512 };
static const char *const ISA_NAME[] = {"SSE", "AVX", "AVX2", "AVX-512"};
/* The core to ask for, per instruction set (OPENBLAS_CORETYPE values). */
static const char *const ISA_CORE[] = {"Nehalem", "Sandybridge", "Haswell", "SkylakeX"};

/* The instruction set of the sgemm kernels of OpenBLAS's x86-64 cores;
 * unknown for cores whose kernels we have not checked (Bulldozer family). */
static enum isa core_isa(const char *core) {
    static const struct { const char *name; enum isa isa; } cores[] = {
        {"SkylakeX", ISA_AVX512}, {"Cooperlake", ISA_AVX512}, {"SapphireRapids", ISA_AVX512},
        {"Haswell", ISA_AVX2}, {"Zen", ISA_AVX2}, {"Sandybridge", ISA_AVX},
        {"Prescott", ISA_SSE}, {"Core2", ISA_SSE}, {"Penryn", ISA_SSE}, {"Dunnington", ISA_SSE},
        {"Nehalem", ISA_SSE}, {"Atom", ISA_SSE}, {"Barcelona", ISA_SSE}, {"Opteron", ISA_SSE},
        {"Opteron_SSE3", ISA_SSE}, {"Nano", ISA_SSE},
    };
    for (size_t i = 0; core && i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(core, cores[i].name)) return cores[i].isa;
    return ISA_UNKNOWN;
}

/* flag is one of the space-separated words of flags. */
static bool has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)); p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
            return true;
    return false;
}

/* What the CPU runs: AVX-512 as OpenBLAS's SkylakeX kernels need it
 * (F, BW, VL, DQ), AVX2 with FMA, AVX, else SSE. */
static enum isa cpu_isa(const char *flags) {
    if (has_flag(flags, "avx512f") && has_flag(flags, "avx512bw") && has_flag(flags, "avx512vl") &&
        has_flag(flags, "avx512dq"))
        return ISA_AVX512;
    if (has_flag(flags, "avx2") && has_flag(flags, "fma")) return ISA_AVX2;
    return has_flag(flags, "avx") ? ISA_AVX : ISA_SSE;
}

const char *vlp_blas_kernel_note_for(char *buf, size_t n, const char *core, const char *cpu_flags,
                                     const char *coretype) {
    if (n) buf[0] = '\0';
    enum isa used = core_isa(core);
    if (!cpu_flags || used == ISA_UNKNOWN) return buf;
    enum isa has = cpu_isa(cpu_flags);
    if (used >= has) return buf;
    if (coretype && *coretype)
        snprintf(buf, n, "OpenBLAS runs its %s kernels (%s) on a CPU with %s because "
                 "OPENBLAS_CORETYPE=%s forces them; unset it for the faster %s kernels "
                 "(vlp leaves it as it is; scripts/bench.sh --kernels both times Haswell against the "
                 "variable unset)",
                 core, ISA_NAME[used], ISA_NAME[has], coretype, ISA_NAME[has]);
    else
        snprintf(buf, n, "OpenBLAS chose its %s kernels (%s) for a CPU with %s (a build older "
                 "than the CPU?); OPENBLAS_CORETYPE=%s may be faster (scripts/bench.sh measures it)",
                 core, ISA_NAME[used], ISA_NAME[has], ISA_CORE[has]);
    return buf;
}

/* The first "flags" line of /proc/cpuinfo (Linux x86), or NULL; free it. */
static char *read_cpu_flags(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        if (!strncmp(line, "flags", 5)) break;
    bool found = line && !strncmp(line, "flags", 5);
    fclose(f);
    if (!found) free(line);
    return found ? line : NULL;
}

const char *vlp_blas_kernel_note(char *buf, size_t n) {
    char *flags = read_cpu_flags();
    vlp_blas_kernel_note_for(buf, n, openblas_get_corename(), flags, getenv("OPENBLAS_CORETYPE"));
    free(flags);
    return buf;
}

/* Work (about one unit per float touched) below which starting the thread
 * team costs more than it saves. */
#define MIN_PARALLEL_WORK 32768.0

/* The number of threads worth using for `work`: 1 for small work and inside
 * a parallel region (no nesting). */
static int team(double work) {
#ifdef _OPENMP
    int n = vlp_kernel_threads();
    if (n > 1 && work >= MIN_PARALLEL_WORK && !omp_in_parallel()) return n;
#endif
    (void)work;
    return 1;
}

/* Runs `body` once per thread with [lo, hi), that thread's contiguous share
 * of [0, n), and tid, its number (scratch index). A one-thread team never
 * enters a parallel region: libgomp allocates a new team for every region
 * of one thread, and a warm step must not allocate. */
#ifdef _OPENMP
#define OMP(directive) _Pragma(directive)
#define PARALLEL(tid, lo, hi, n, work, ...)                                  \
    do {                                                                     \
        long n_ = (n);                                                       \
        int team_ = team(work);                                              \
        if (team_ > 1) {                                                     \
            OMP("omp parallel num_threads(team_)")                           \
            {                                                                \
                int tid = omp_get_thread_num(), nt_ = omp_get_num_threads(); \
                long lo = n_ * tid / nt_, hi = n_ * (tid + 1) / nt_;         \
                (void)tid;                                                   \
                __VA_ARGS__;                                                 \
            }                                                                \
        } else {                                                             \
            int tid = 0;                                                     \
            long lo = 0, hi = n_;                                            \
            (void)tid;                                                       \
            __VA_ARGS__;                                                     \
        }                                                                    \
    } while (0)
#else
#define OMP(directive)
#define PARALLEL(tid, lo, hi, n, work, ...) \
    do {                                    \
        int tid = 0;                        \
        long lo = 0, hi = (n);              \
        (void)tid;                          \
        (void)(work);                       \
        __VA_ARGS__;                        \
    } while (0)
#endif

/* The hot loops (GELU, softmax, LayerNorm, attention's softmax) get a
 * second copy built for AVX2 + FMA (x86-64-v3), picked once at load time by
 * the CPU (GNU ifunc); the portable copy runs everywhere else. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

/* ---- vectorisable exp and the normal distribution ------------------------ */

/* e^x for x <= 0 (exact 0 below -87.33, so -inf gives 0; NaN stays NaN),
 * within about 1 ulp: Cody-Waite reduction by ln 2 and Cephes' expf
 * polynomial. No libm call, so loops over it vectorise. */
static inline __attribute__((always_inline)) float exp_nonpos(float x) {
    /* NaN goes through the polynomial as -87.33: float-to-int of NaN is UB */
    float xc = x >= -87.33f ? x : -87.33f;
    /* round(xc / ln 2) by the 1.5 * 2^23 trick: exact for |n| < 2^22 */
    float n = xc * 1.44269504f + 12582912.0f;
    n -= 12582912.0f;
    float r = xc - n * 0.693359375f;
    r -= n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) << 23};
    return x >= -87.33f ? p * scale.f : x < -87.33f ? 0.0f : x;
}

/* The standard normal cdf Phi(x) and, through *pdf, phi(x), with one exp.
 * Measured against double erfc: Phi within 1.2e-7 absolute everywhere, and
 * within 1.5e-6 relative down to x = -6 (4e-6 to -13), where 0.5 (1 +
 * erff(x / sqrt 2)) in float loses everything to cancellation; phi within
 * 5e-8 absolute. Two regions of z = |x| / sqrt 2 (least-squares fits to
 * mpmath values):
 *   z < 1:  erf(z) = z P(z^2), P of degree 6;
 *   z >= 1: erfc(z) = e^{-z^2} erfcx(z), erfcx rational of degree 3/4.
 * Both are computed and one is selected, so the loop has no branch. */
static inline __attribute__((always_inline)) float normal_cdf_pdf(float x, float *pdf) {
    float z = x * 0.70710678f, w = z * z;
    float e = exp_nonpos(-0.5f * x * x); /* e^{-z^2} */
    *pdf = 0.39894228f * e;
    /* z < 1: Phi = 1/2 + erf(z) / 2 */
    float p = 7.970430755e-05f;
    p = p * w - 8.043210252e-04f;
    p = p * w + 5.191817235e-03f;
    p = p * w - 2.685550214e-02f;
    p = p * w + 1.128362191e-01f;
    p = p * w - 3.761262873e-01f;
    p = p * w + 1.128379166e+00f;
    float near = 0.5f + 0.5f * (z * p);
    /* z >= 1: the tail mass q = erfc(|z|) / 2 (the 1/2 folded into num) */
    float a = fabsf(z);
    a = a < 10.0f ? a : 10.0f; /* beyond, e is 0; this keeps the ratio finite */
    float num = 7.894098715e-02f;
    num = num * a + 3.051052507e-01f;
    num = num * a + 5.852227940e-01f;
    num = num * a + 4.993841941e-01f;
    float den = 2.798429946e-01f;
    den = den * a + 1.081413703e+00f;
    den = den * a + 2.216808228e+00f;
    den = den * a + 2.291484657e+00f;
    den = den * a + 1.0f;
    float q = e * (num / den);
    float far = x < 0.0f ? q : 1.0f - q;
    return w < 1.0f ? near : far;
}

/* ---- matmul ---------------------------------------------------------- */

/* Part `part` of `parts` of [0, len), cut at multiples of 16 (whole
 * micro-kernel tiles) where possible. */
static int split_at(int len, int part, int parts) {
    if (part <= 0) return 0;
    if (part >= parts) return len;
    long at = ((long)len * part / parts + 8) / 16 * 16;
    return at < len ? (int)at : len;
}

void vlp_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    /* Large products split C's rows (or columns) over the threads, one
     * single-threaded OpenBLAS call each; K is never split. */
    int nt = team((double)M * N * K / 32.0);
    if (nt == 1 || (M < 32 && N < 32)) {
        cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    bool rows = M >= N;
    int len = rows ? M : N;
    OMP("omp parallel num_threads(nt)") {
#ifdef _OPENMP
        int id = omp_get_thread_num(), parts = omp_get_num_threads();
#else
        int id = 0, parts = 1;
#endif
        int a0 = split_at(len, id, parts), a1 = split_at(len, id + 1, parts);
        if (a1 > a0 && rows)
            cblas_sgemm(CblasRowMajor, opa, opb, a1 - a0, N, K, alpha,
                        A + (ta ? (long)a0 : (long)a0 * lda), lda, B, ldb, beta,
                        C + (long)a0 * ldc, ldc);
        else if (a1 > a0)
            cblas_sgemm(CblasRowMajor, opa, opb, M, a1 - a0, K, alpha, A, lda,
                        B + (tb ? (long)a0 * ldb : (long)a0), ldb, beta, C + a0, ldc);
    }
}

void vlp_matmul_forward(float *c, const float *a, const float *b, int batch, int M, int N,
                        int K, bool ta, bool tb, bool b_shared) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (b_shared && !ta) { /* the batch is just more rows of a */
        vlp_gemm(false, tb, batch * M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
        return;
    }
    /* One product per thread when the batch is large, else threads inside each. */
    if (batch >= 2 * vlp_kernel_threads())
        PARALLEL(tid, lo, hi, batch, (double)batch * M * N * K / 32.0, {
            for (long i = lo; i < hi; i++) {
                const float *bi = b_shared ? b : b + i * K * N;
                vlp_gemm(ta, tb, M, N, K, 1.0f, a + i * M * K, lda, bi, ldb, 0.0f, c + i * M * N, N);
            }
        });
    else
        for (long i = 0; i < batch; i++) {
            const float *bi = b_shared ? b : b + i * K * N;
            vlp_gemm(ta, tb, M, N, K, 1.0f, a + i * M * K, lda, bi, ldb, 0.0f, c + i * M * N, N);
        }
}

/* Batch entry i of the matmul backward; db is shared (accumulated by every
 * entry) when b_shared. */
static void matmul_backward_one(float *da, float *db, const float *dc, const float *a,
                                const float *b, long i, int M, int N, int K, bool ta, bool tb,
                                bool b_shared) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    const float *ai = a + i * M * K;
    const float *bi = b_shared ? b : b + i * K * N;
    const float *dci = dc + i * M * N;
    if (da) {
        float *dai = da + i * M * K;
        if (!ta) vlp_gemm(false, !tb, M, K, N, 1.0f, dci, N, bi, ldb, 1.0f, dai, lda);
        else vlp_gemm(tb, true, K, M, N, 1.0f, bi, ldb, dci, N, 1.0f, dai, lda);
    }
    if (db) {
        float *dbi = b_shared ? db : db + i * K * N;
        if (!tb) vlp_gemm(!ta, false, K, N, M, 1.0f, ai, lda, dci, N, 1.0f, dbi, ldb);
        else vlp_gemm(true, ta, N, K, M, 1.0f, dci, N, ai, lda, 1.0f, dbi, ldb);
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
    /* A shared db sums over the batch in batch order: not split. */
    if (!b_shared && batch >= 2 * vlp_kernel_threads())
        PARALLEL(tid, lo, hi, batch, (double)batch * M * N * K / 16.0, {
            for (long i = lo; i < hi; i++)
                matmul_backward_one(da, db, dc, a, b, i, M, N, K, ta, tb, b_shared);
        });
    else
        for (long i = 0; i < batch; i++)
            matmul_backward_one(da, db, dc, a, b, i, M, N, K, ta, tb, b_shared);
}

/* ---- column sums ---------------------------------------------------------- */

/* Reductions over rows (bias, LayerNorm and broadcast gradients) cut the
 * rows into SUM_CHUNKS fixed blocks, however many threads there are: each
 * block sums its rows in order into a partial row of its own, and the
 * partials are added in block order. The sums are the same for any number
 * of threads, and each thread streams whole rows. */
enum { SUM_CHUNKS = 8, SUM_TILE = 512 };

/* What a column reduction sums over rows: g, or g * a, or LayerNorm's
 * g * (a - mean) * rstd together with g. All (rows, C). */
typedef struct colsum {
    const float *g, *a, *mean, *rstd;
    long rows;
    int C;
} colsum;

/* p0 (and p1 for LayerNorm) = sums over rows [r0, r1) of columns [t0, t0 + n). */
HOT static void colsum_block(float *p0, float *p1, const colsum *s, long r0, long r1, long t0,
                             long n) {
    memset(p0, 0, (size_t)n * sizeof *p0);
    if (p1) memset(p1, 0, (size_t)n * sizeof *p1);
    for (long r = r0; r < r1; r++) {
        const float *g = s->g + r * s->C + t0, *a = s->a ? s->a + r * s->C + t0 : NULL;
        if (s->mean) {
            float m = s->mean[r], sd = s->rstd[r];
            OMP("omp simd")
            for (long c = 0; c < n; c++) {
                p0[c] += g[c] * ((a[c] - m) * sd);
                p1[c] += g[c];
            }
        } else if (a) {
            OMP("omp simd")
            for (long c = 0; c < n; c++) p0[c] += g[c] * a[c];
        } else {
            OMP("omp simd")
            for (long c = 0; c < n; c++) p0[c] += g[c];
        }
    }
}

/* dst0[c] += sign * (first sum), dst1[c] += second sum (LayerNorm's db);
 * either may be NULL. */
static void column_sums(float *dst0, float *dst1, float sign, const colsum *s) {
    float part[SUM_CHUNKS][2][SUM_TILE];
    long rows = s->rows;
    int chunks = rows < SUM_CHUNKS ? (rows > 0 ? (int)rows : 1) : SUM_CHUNKS;
    for (long t0 = 0; t0 < s->C; t0 += SUM_TILE) {
        long n = s->C - t0 < SUM_TILE ? s->C - t0 : SUM_TILE;
        PARALLEL(tid, k0, k1, chunks, (double)rows * n * 2, {
            for (long k = k0; k < k1; k++)
                colsum_block(part[k][0], s->mean ? part[k][1] : NULL, s, rows * k / chunks,
                             rows * (k + 1) / chunks, t0, n);
        });
        for (long c = 0; c < n; c++) {
            float a0 = 0.0f, a1 = 0.0f;
            for (int k = 0; k < chunks; k++) {
                a0 += part[k][0][c];
                if (s->mean) a1 += part[k][1][c];
            }
            if (dst0) dst0[t0 + c] += sign * a0;
            if (dst1) dst1[t0 + c] += a1;
        }
    }
}

/* dst[c] (+ or -)= sum over r of src[r C + c]. */
static void column_sums_plain(float *dst, const float *src, long rows, int C, bool negate) {
    colsum s = {.g = src, .rows = rows, .C = C};
    column_sums(dst, NULL, negate ? -1.0f : 1.0f, &s);
}

/* c rounded to a column where &base[c] starts a 64-byte line (when C allows):
 * threads that split a row-major buffer by columns there share no line. */
static long align_col(long c, long C, const void *base) {
    if (c <= 0 || c >= C) return c;
    long off = (long)(((uintptr_t)base / sizeof(float)) % 16);
    long a = (c + off + 8) / 16 * 16 - off;
    return a < 0 ? 0 : a > C ? C : a;
}

/* ---- linear ---------------------------------------------------------- */

void vlp_linear_forward(float *out, const float *x, const float *w, const float *bias, int rows,
                        int In, int O) {
    if (!bias) {
        vlp_gemm(false, true, rows, O, In, 1.0f, x, In, w, In, 0.0f, out, O);
        return;
    }
    /* Start from the bias and let the product accumulate onto it: OpenBLAS
     * would otherwise clear C in a pass of its own. */
    PARALLEL(tid, r0, r1, rows, (double)rows * O, {
        for (long r = r0; r < r1; r++) memcpy(out + r * O, bias, (size_t)O * sizeof *out);
    });
    vlp_gemm(false, true, rows, O, In, 1.0f, x, In, w, In, 1.0f, out, O);
}

void vlp_linear_residual_forward(float *out, const float *x, const float *w, const float *bias,
                                 const float *residual, int rows, int In, int O) {
    PARALLEL(tid, r0, r1, rows, (double)rows * O * 2, {
        for (long r = r0; r < r1; r++) {
            float *o = out + r * O;
            const float *res = residual + r * O;
            if (bias) {
                OMP("omp simd")
                for (int c = 0; c < O; c++) o[c] = res[c] + bias[c];
            } else {
                memcpy(o, res, (size_t)O * sizeof *o);
            }
        }
    });
    vlp_gemm(false, true, rows, O, In, 1.0f, x, In, w, In, 1.0f, out, O);
}

void vlp_linear_backward(float *dx, float *dw, float *dbias, const float *dout, const float *x,
                         const float *w, int rows, int In, int O) {
    if (dx) vlp_gemm(false, false, rows, In, O, 1.0f, dout, O, w, In, 1.0f, dx, In);
    if (dw) vlp_gemm(true, false, O, In, rows, 1.0f, dout, O, x, In, 1.0f, dw, In);
    if (dbias) column_sums_plain(dbias, dout, rows, O, false);
}

/* ---- broadcasting elementwise ------------------------------------------ */

/* out = a op b[i] over (outer, inner), split over outer rows when there are
 * enough of them, else over inner. */
#define BROADCAST_LOOP(outer, inner, ...)                                           \
    do {                                                                            \
        bool by_rows_ = (outer) >= 16;                                              \
        PARALLEL(tid, lo_, hi_, by_rows_ ? (outer) : (inner), (double)(outer) * (inner), { \
            long o0 = by_rows_ ? lo_ : 0, o1 = by_rows_ ? hi_ : (outer);            \
            long i0 = by_rows_ ? 0 : lo_, i1 = by_rows_ ? (inner) : hi_;            \
            for (long o = o0; o < o1; o++) {                                        \
                OMP("omp simd")                                                     \
                for (long i = i0; i < i1; i++) { __VA_ARGS__; }                     \
            }                                                                       \
        });                                                                         \
    } while (0)

void vlp_add_forward(float *out, const float *a, const float *b, long outer, long inner) {
    BROADCAST_LOOP(outer, inner, out[o * inner + i] = a[o * inner + i] + b[i]);
}

void vlp_add_backward(float *da, float *db, const float *dout, long outer, long inner) {
    if (da) BROADCAST_LOOP(outer, inner, da[o * inner + i] += dout[o * inner + i]);
    if (db) column_sums_plain(db, dout, outer, (int)inner, false);
}

void vlp_sub_forward(float *out, const float *a, const float *b, long outer, long inner) {
    BROADCAST_LOOP(outer, inner, out[o * inner + i] = a[o * inner + i] - b[i]);
}

void vlp_sub_backward(float *da, float *db, const float *dout, long outer, long inner) {
    if (da) BROADCAST_LOOP(outer, inner, da[o * inner + i] += dout[o * inner + i]);
    if (db) column_sums_plain(db, dout, outer, (int)inner, true);
}

void vlp_mul_forward(float *out, const float *a, const float *b, long outer, long inner) {
    BROADCAST_LOOP(outer, inner, out[o * inner + i] = a[o * inner + i] * b[i]);
}

void vlp_mul_backward(float *da, float *db, const float *dout, const float *a, const float *b,
                      long outer, long inner) {
    if (da) BROADCAST_LOOP(outer, inner, da[o * inner + i] += dout[o * inner + i] * b[i]);
    if (db) {
        colsum s = {.g = dout, .a = a, .rows = outer, .C = (int)inner};
        column_sums(db, NULL, 1.0f, &s);
    }
}

/* Elementwise over [0, n). */
#define ELEMENTWISE(n, work_per, ...)                                          \
    PARALLEL(tid, lo_, hi_, (n), (double)(n) * (work_per), {                   \
        OMP("omp simd")                                                        \
        for (long i = lo_; i < hi_; i++) { __VA_ARGS__; }                      \
    })

void vlp_scale_forward(float *out, const float *x, float s, long n) {
    ELEMENTWISE(n, 1, out[i] = x[i] * s);
}

void vlp_scale_backward(float *dx, float *ds, const float *dout, const float *x, float s, long n) {
    if (dx) ELEMENTWISE(n, 1, dx[i] += dout[i] * s);
    if (ds) {
        double acc = 0.0;
        for (long i = 0; i < n; i++) acc += (double)dout[i] * x[i];
        *ds += (float)acc;
    }
}

void vlp_exp_forward(float *out, const float *x, long n) {
    PARALLEL(tid, lo, hi, n, (double)n * 8, {
        for (long i = lo; i < hi; i++) out[i] = expf(x[i]);
    });
}

void vlp_exp_backward(float *dx, const float *dout, const float *out, long n) {
    ELEMENTWISE(n, 1, dx[i] += dout[i] * out[i]);
}

void vlp_reciprocal_forward(float *out, const float *x, long n) {
    ELEMENTWISE(n, 1, out[i] = 1.0f / x[i]);
}

void vlp_reciprocal_backward(float *dx, const float *dout, const float *out, long n) {
    ELEMENTWISE(n, 1, dx[i] -= dout[i] * out[i] * out[i]);
}

void vlp_sum_rows_forward(float *out, const float *x, long rows, int C, float scale) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C, {
        for (long r = r0; r < r1; r++) {
            double acc = 0.0;
            for (int c = 0; c < C; c++) acc += x[r * C + c];
            out[r] = (float)(acc * scale);
        }
    });
}

void vlp_sum_rows_backward(float *dx, const float *dout, long rows, int C, float scale) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C, {
        for (long r = r0; r < r1; r++) {
            float g = dout[r] * scale;
            OMP("omp simd")
            for (int c = 0; c < C; c++) dx[r * C + c] += g;
        }
    });
}

/* ---- activations ------------------------------------------------------- */

HOT static void gelu_forward_range(float *out, const float *x, long lo, long hi) {
    OMP("omp simd")
    for (long i = lo; i < hi; i++) {
        float pdf;
        out[i] = x[i] * normal_cdf_pdf(x[i], &pdf);
    }
}

void vlp_gelu_forward(float *out, const float *x, long n) {
    PARALLEL(tid, lo, hi, n, (double)n * 8, gelu_forward_range(out, x, lo, hi));
}

HOT static void gelu_backward_range(float *dx, const float *dout, const float *x, long lo,
                                    long hi) {
    OMP("omp simd")
    for (long i = lo; i < hi; i++) {
        float pdf, cdf = normal_cdf_pdf(x[i], &pdf);
        dx[i] += dout[i] * (cdf + x[i] * pdf);
    }
}

void vlp_gelu_backward(float *dx, const float *dout, const float *x, long n) {
    PARALLEL(tid, lo, hi, n, (double)n * 8, gelu_backward_range(dx, dout, x, lo, hi));
}

HOT static void gelu_du_range(float *du, const float *dout, const float *u, long lo, long hi) {
    OMP("omp simd")
    for (long i = lo; i < hi; i++) {
        float pdf, cdf = normal_cdf_pdf(u[i], &pdf);
        du[i] = dout[i] * (cdf + u[i] * pdf);
    }
}

void vlp_gelu_bias_backward(float *du, float *dbias, const float *dout, const float *u,
                            long rows, int C) {
    /* du elementwise, then its column sums (by row blocks, see column_sums). */
    PARALLEL(tid, lo, hi, rows * C, (double)rows * C * 8, gelu_du_range(du, dout, u, lo, hi));
    if (dbias) column_sums_plain(dbias, du, rows, C, false);
}

/* sigmoid(a x) from one exp of a non-positive argument. */
static inline __attribute__((always_inline)) float sigmoid_scaled(float x, float a) {
    float ax = a * x, e = exp_nonpos(ax < 0.0f ? ax : -ax);
    float s = 1.0f / (1.0f + e);
    return ax < 0.0f ? e * s : s;
}

HOT static void quick_gelu_forward_range(float *out, const float *x, long lo, long hi) {
    OMP("omp simd")
    for (long i = lo; i < hi; i++) out[i] = x[i] * sigmoid_scaled(x[i], 1.702f);
}

void vlp_quick_gelu_forward(float *out, const float *x, long n) {
    PARALLEL(tid, lo, hi, n, (double)n * 8, quick_gelu_forward_range(out, x, lo, hi));
}

HOT static void quick_gelu_backward_range(float *dx, const float *dout, const float *x, long lo,
                                          long hi) {
    OMP("omp simd")
    for (long i = lo; i < hi; i++) {
        float s = sigmoid_scaled(x[i], 1.702f);
        dx[i] += dout[i] * (s + 1.702f * x[i] * s * (1.0f - s));
    }
}

void vlp_quick_gelu_backward(float *dx, const float *dout, const float *x, long n) {
    PARALLEL(tid, lo, hi, n, (double)n * 8, quick_gelu_backward_range(dx, dout, x, lo, hi));
}

void vlp_relu_forward(float *out, const float *x, long n) {
    ELEMENTWISE(n, 1, out[i] = x[i] > 0.0f ? x[i] : 0.0f);
}

void vlp_relu_backward(float *dx, const float *dout, const float *x, long n) {
    ELEMENTWISE(n, 1, dx[i] += x[i] > 0.0f ? dout[i] : 0.0f);
}

/* ---- normalisation ------------------------------------------------------- */

HOT static void layernorm_rows(float *out, float *mean, float *rstd, const float *x,
                               const float *w, const float *b, long r0, long r1, int C) {
    for (long r = r0; r < r1; r++) {
        const float *xr = x + r * C;
        double m = 0.0, var = 0.0;
        OMP("omp simd reduction(+ : m)")
        for (int c = 0; c < C; c++) m += xr[c];
        m /= C;
        OMP("omp simd reduction(+ : var)")
        for (int c = 0; c < C; c++) var += (xr[c] - m) * (xr[c] - m);
        var /= C; /* biased, as torch */
        float s = (float)(1.0 / sqrt(var + 1e-5));
        float mf = (float)m;
        float *o = out + r * C;
        OMP("omp simd")
        for (int c = 0; c < C; c++) o[c] = (xr[c] - mf) * s * w[c] + b[c];
        mean[r] = mf;
        rstd[r] = s;
    }
}

void vlp_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2,
             layernorm_rows(out, mean, rstd, x, w, b, r0, r1, C));
}

HOT static void layernorm_dx_rows(float *dx, const float *dout, const float *x, const float *w,
                                  const float *mean, const float *rstd, long r0, long r1, int C) {
    for (long r = r0; r < r1; r++) {
        const float *xr = x + r * C, *g = dout + r * C;
        float m = mean[r], s = rstd[r];
        double dnorm_mean = 0.0, dnorm_norm_mean = 0.0;
        OMP("omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)")
        for (int c = 0; c < C; c++) {
            float norm = (xr[c] - m) * s;
            float dnorm = g[c] * w[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        float a = (float)(dnorm_mean / C), bb = (float)(dnorm_norm_mean / C);
        float *d = dx + r * C;
        OMP("omp simd")
        for (int c = 0; c < C; c++) {
            float norm = (xr[c] - m) * s;
            d[c] += s * (g[c] * w[c] - a - norm * bb);
        }
    }
}

void vlp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, long rows,
                            int C) {
    if (dx)
        PARALLEL(tid, r0, r1, rows, (double)rows * C * 3,
                 layernorm_dx_rows(dx, dout, x, w, mean, rstd, r0, r1, C));
    if (!dw && !db) return;
    colsum s = {.g = dout, .a = x, .mean = mean, .rstd = rstd, .rows = rows, .C = C};
    column_sums(dw, db, 1.0f, &s);
}

/* ---- softmax ------------------------------------------------------------- */

/* o = softmax(x) over n entries (o may be x); a row of -inf gives zeros. */
static inline __attribute__((always_inline)) void softmax_row(float *o, const float *x, int n) {
    float mx = -INFINITY;
    OMP("omp simd reduction(max : mx)")
    for (int c = 0; c < n; c++) mx = x[c] > mx ? x[c] : mx;
    if (mx == -INFINITY) { /* every entry masked */
        memset(o, 0, (size_t)n * sizeof *o);
        return;
    }
    double sum = 0.0;
    OMP("omp simd reduction(+ : sum)")
    for (int c = 0; c < n; c++) {
        float e = exp_nonpos(x[c] - mx);
        o[c] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    OMP("omp simd")
    for (int c = 0; c < n; c++) o[c] *= inv;
}

HOT static void softmax_rows(float *out, const float *x, long r0, long r1, int C) {
    for (long r = r0; r < r1; r++) softmax_row(out + r * C, x + r * C, C);
}

void vlp_softmax_forward(float *out, const float *x, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 4, softmax_rows(out, x, r0, r1, C));
}

/* d (+)= y * (g - sum(g * y)) per row: the softmax backward. */
HOT static void softmax_backward_rows(float *dx, const float *dout, const float *out, long r0,
                                      long r1, int C, bool accumulate) {
    for (long r = r0; r < r1; r++) {
        const float *y = out + r * C, *g = dout + r * C;
        float *d = dx + r * C;
        double dot = 0.0;
        OMP("omp simd reduction(+ : dot)")
        for (int c = 0; c < C; c++) dot += (double)g[c] * y[c];
        float df = (float)dot;
        if (accumulate) {
            OMP("omp simd")
            for (int c = 0; c < C; c++) d[c] += y[c] * (g[c] - df);
        } else {
            OMP("omp simd")
            for (int c = 0; c < C; c++) d[c] = y[c] * (g[c] - df);
        }
    }
}

void vlp_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2,
             softmax_backward_rows(dx, dout, out, r0, r1, C, true));
}

void vlp_log_softmax_forward(float *out, const float *x, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 8, {
        for (long r = r0; r < r1; r++) {
            const float *xr = x + r * C;
            float mx = -INFINITY;
            for (int c = 0; c < C; c++) mx = fmaxf(mx, xr[c]);
            double sum = 0.0;
            for (int c = 0; c < C; c++) sum += exp((double)xr[c] - mx);
            float lse = mx + (float)log(sum);
            for (int c = 0; c < C; c++) out[r * C + c] = xr[c] - lse;
        }
    });
}

void vlp_log_softmax_backward(float *dx, const float *dout, const float *out, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 8, {
        for (long r = r0; r < r1; r++) {
            const float *y = out + r * C, *g = dout + r * C;
            double gsum = 0.0;
            for (int c = 0; c < C; c++) gsum += g[c];
            float s = (float)gsum;
            for (int c = 0; c < C; c++) dx[r * C + c] += g[c] - expf(y[c]) * s;
        }
    });
}

/* ---- attention ------------------------------------------------------------ */

/* Scores (Tq, Tk) of one (batch, head) -> probabilities, in place: keys
 * with km[j] == 0 and, when causal, keys j > i get exactly zero weight. */
HOT static void attention_softmax(float *p, int Tq, int Tk, bool causal, const uint8_t *km) {
    for (int i = 0; i < Tq; i++) {
        float *pi = p + (long)i * Tk;
        if (km)
            for (int j = 0; j < Tk; j++)
                if (!km[j]) pi[j] = -INFINITY;
        int n = causal ? i + 1 : Tk;
        softmax_row(pi, pi, n);
        if (n < Tk) memset(pi + n, 0, (size_t)(Tk - n) * sizeof *pi);
    }
}

/* One (batch, head): scores, masked softmax into p (Tq, Tk), then p V. */
static void attention_head_forward(float *out, float *p, const float *qh, const float *kh,
                                   const float *vh, const uint8_t *km, const vlp_attention_dims *d,
                                   float scale) {
    int Tq = d->Tq, Tk = d->Tk, HS = d->C / d->NH;
    vlp_gemm(false, true, Tq, Tk, HS, scale, qh, d->ldq, kh, d->ldk, 0.0f, p, Tk);
    attention_softmax(p, Tq, Tk, d->causal, km);
    vlp_gemm(false, false, Tq, HS, Tk, 1.0f, p, Tk, vh, d->ldv, 0.0f, out, d->C);
}

void vlp_attention_forward(float *out, float *scratch, const float *q, const float *k,
                           const float *v, const vlp_attention_dims *d) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    VLP_ASSERT(C % NH == 0, "width %d not divisible by %d heads", C, NH);
    VLP_ASSERT(!d->causal || Tq == Tk, "causal attention needs Tq == Tk (%d, %d)", Tq, Tk);
    float scale = 1.0f / sqrtf((float)HS);
    /* (batch, head) pairs write disjoint blocks: one pair per thread at a time. */
    double work = 4.0 * B * NH * Tq * Tk * (HS + 4);
    PARALLEL(tid, lo, hi, (long)B * NH, work, {
        float *p = scratch + 2L * tid * Tq * Tk; /* this thread's probabilities */
        for (long bh = lo; bh < hi; bh++) {
            long b = bh / NH, h = bh % NH;
            attention_head_forward(out + b * Tq * C + h * HS, p, q + b * Tq * d->ldq + h * HS,
                                   k + b * Tk * d->ldk + h * HS, v + b * Tk * d->ldv + h * HS,
                                   d->key_mask ? d->key_mask + b * Tk : NULL, d, scale);
        }
    });
}

size_t vlp_attention_scratch_floats(const vlp_attention_dims *d) {
    return 2 * (size_t)vlp_kernel_threads() * d->Tq * d->Tk;
}

void vlp_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                            const float *q, const float *k, const float *v,
                            const vlp_attention_dims *d) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    /* Pairs of different batch entries or heads touch disjoint blocks of
     * dq, dk, dv, even when q, k and v share one buffer. */
    double work = 8.0 * B * NH * Tq * Tk * (HS + 2);
    PARALLEL(tid, lo, hi, (long)B * NH, work, {
        float *p = scratch + 2L * tid * Tq * Tk, *ds = p + (long)Tq * Tk; /* P; dP, then dS */
        for (long bh = lo; bh < hi; bh++) {
            long b = bh / NH, h = bh % NH;
            long qo = b * Tq * d->ldq + h * HS;
            long ko = b * Tk * d->ldk + h * HS;
            long vo = b * Tk * d->ldv + h * HS;
            const float *go = dout + b * Tq * C + h * HS;
            /* P again, by the forward's own steps: the same bits, for no
             * (B, NH, Tq, Tk) buffer kept through the step. */
            vlp_gemm(false, true, Tq, Tk, HS, scale, q + qo, d->ldq, k + ko, d->ldk, 0.0f, p, Tk);
            attention_softmax(p, Tq, Tk, d->causal, d->key_mask ? d->key_mask + b * Tk : NULL);
            if (dv) vlp_gemm(true, false, Tk, HS, Tq, 1.0f, p, Tk, go, C, 1.0f, dv + vo, d->ldv);
            if (!dq && !dk) continue;
            /* dP = dO V^T, then dS = P * (dP - rowsum(dP * P)): softmax backward. */
            vlp_gemm(false, true, Tq, Tk, HS, 1.0f, go, C, v + vo, d->ldv, 0.0f, ds, Tk);
            softmax_backward_rows(ds, ds, p, 0, Tq, Tk, false);
            if (dq) vlp_gemm(false, false, Tq, HS, Tk, scale, ds, Tk, k + ko, d->ldk, 1.0f,
                             dq + qo, d->ldq);
            if (dk) vlp_gemm(true, false, Tk, HS, Tq, scale, ds, Tk, q + qo, d->ldq, 1.0f,
                             dk + ko, d->ldk);
        }
    });
}

/* ---- embedding, normalisation, losses --------------------------------- */

void vlp_embedding_forward(float *out, const float *table, const int *ids, long n, int C) {
    PARALLEL(tid, lo, hi, n, (double)n * C, {
        for (long i = lo; i < hi; i++)
            memcpy(out + i * C, table + (long)ids[i] * C, (size_t)C * sizeof *out);
    });
}

void vlp_embedding_backward(float *dtable, const float *dout, const int *ids, long n, int C) {
    /* ids repeat: split over columns (on cache lines of dtable), rows in order. */
    PARALLEL(tid, lo, hi, C, (double)n * C, {
        long c0 = align_col(lo, C, dtable), c1 = align_col(hi, C, dtable);
        for (long i = 0; i < n; i++) {
            float *d = dtable + (long)ids[i] * C;
            const float *g = dout + i * C;
            OMP("omp simd")
            for (long c = c0; c < c1; c++) d[c] += g[c];
        }
    });
}

void vlp_l2_normalize_forward(float *out, float *norm, const float *x, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2, {
        for (long r = r0; r < r1; r++) {
            double ss = 0.0;
            for (int c = 0; c < C; c++) ss += (double)x[r * C + c] * x[r * C + c];
            float nrm = (float)sqrt(ss);
            norm[r] = nrm;
            float inv = 1.0f / fmaxf(nrm, 1e-12f);
            for (int c = 0; c < C; c++) out[r * C + c] = x[r * C + c] * inv;
        }
    });
}

void vlp_l2_normalize_backward(float *dx, const float *dout, const float *out,
                               const float *norm, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2, {
        for (long r = r0; r < r1; r++) {
            const float *y = out + r * C, *g = dout + r * C;
            float inv = 1.0f / fmaxf(norm[r], 1e-12f);
            /* Below eps the op is a plain scaling: no projection term. */
            double dot = 0.0;
            if (norm[r] > 1e-12f)
                for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
            for (int c = 0; c < C; c++) dx[r * C + c] += (g[c] - y[c] * (float)dot) * inv;
        }
    });
}

void vlp_sum_normalize_forward(float *out, float *denom, const float *x, long rows, int C,
                               float eps) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2, {
        for (long r = r0; r < r1; r++) {
            double s = eps;
            for (int c = 0; c < C; c++) s += x[r * C + c];
            denom[r] = (float)s;
            float inv = 1.0f / (float)s;
            for (int c = 0; c < C; c++) out[r * C + c] = x[r * C + c] * inv;
        }
    });
}

void vlp_sum_normalize_backward(float *dx, const float *dout, const float *out,
                                const float *denom, long rows, int C) {
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2, {
        for (long r = r0; r < r1; r++) {
            const float *y = out + r * C, *g = dout + r * C;
            /* d(x_j / s)/d x_i = (delta_ij - y_j) / s, as s = sum x + eps */
            double dot = 0.0;
            for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
            float inv = 1.0f / denom[r];
            for (int c = 0; c < C; c++) dx[r * C + c] += (g[c] - (float)dot) * inv;
        }
    });
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
    PARALLEL(tid, r0, r1, rows, (double)rows * C * 2, {
        for (long r = r0; r < r1; r++) {
            if (!soft && targets[r] == ignore_index) continue;
            /* Soft targets need not sum to one: d/dx of sum_c t_c (lse - x_c). */
            float tsum = 1.0f;
            if (soft) {
                tsum = 0.0f;
                for (int c = 0; c < C; c++) tsum += soft[r * C + c];
            }
            for (int c = 0; c < C; c++)
                dlogits[r * C + c] += g * (tsum * probs[r * C + c] -
                                           target_prob(targets, soft, r, C, c, smoothing));
        }
    });
}

/* ---- data movement ------------------------------------------------------ */

void vlp_copy_strided(float *dst, long dst_stride, const float *src, long src_stride, long outer,
                      long chunk, bool accumulate) {
    PARALLEL(tid, o0, o1, outer, (double)outer * chunk, {
        for (long o = o0; o < o1; o++) {
            float *d = dst + o * dst_stride;
            const float *s = src + o * src_stride;
            if (accumulate) {
                OMP("omp simd")
                for (long i = 0; i < chunk; i++) d[i] += s[i];
            } else {
                memcpy(d, s, (size_t)chunk * sizeof *d);
            }
        }
    });
}

void vlp_transpose_forward(float *out, const float *x, long batch, int R, int C, bool accumulate) {
    /* Each (batch, row) of x fills one column of out. */
    PARALLEL(tid, lo, hi, batch * R, (double)batch * R * C, {
        for (long br = lo; br < hi; br++) {
            long b = br / R, r = br % R;
            const float *xr = x + b * R * C + r * C;
            float *ob = out + b * R * C + r;
            for (int c = 0; c < C; c++) {
                if (accumulate) ob[(long)c * R] += xr[c];
                else ob[(long)c * R] = xr[c];
            }
        }
    });
}

void vlp_swap12_forward(float *out, const float *x, int A, int B, int C, int D, bool accumulate) {
    PARALLEL(tid, lo, hi, (long)A * B, (double)A * B * C * D, {
        for (long ab = lo; ab < hi; ab++) {
            long a = ab / B, b = ab % B;
            for (int c = 0; c < C; c++) {
                const float *s = x + ((ab * C) + c) * D;
                float *dd = out + ((a * C + c) * B + b) * D;
                if (accumulate) {
                    OMP("omp simd")
                    for (int i = 0; i < D; i++) dd[i] += s[i];
                } else {
                    memcpy(dd, s, (size_t)D * sizeof *dd);
                }
            }
        }
    });
}
