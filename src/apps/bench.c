/* Benchmark pieces for vlpbench (see bench.h). */
#include "apps/bench.h"

#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "autograd/kernels.h"
#include "base/rng.h"
#include "train/trainer.h"

/* Issue 7's configs. B's vocabulary is not given there: A's 1024 (the
 * embedding is a gather, its size barely matters to the step). */
static const vlp_bench_config CONFIGS[] = {
    {"A", {.embed_dim = 128, .image_size = 32, .patch_size = 4, .vision_width = 128,
           .vision_layers = 4, .vision_heads = 4, .vocab_size = 1024, .context_length = 32,
           .text_width = 128, .text_layers = 4, .text_heads = 4, .mlp_ratio = 4.0f,
           .act = VLP_ACTIVATION_GELU}, 128},
    {"B", {.embed_dim = 256, .image_size = 64, .patch_size = 8, .vision_width = 256,
           .vision_layers = 6, .vision_heads = 8, .vocab_size = 1024, .context_length = 32,
           .text_width = 256, .text_layers = 6, .text_heads = 8, .mlp_ratio = 4.0f,
           .act = VLP_ACTIVATION_GELU}, 256},
};

const vlp_bench_config *vlp_bench_config_find(const char *name) {
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        if (!strcmp(CONFIGS[i].name, name)) return &CONFIGS[i];
    return NULL;
}

/* ---- FLOPs ---------------------------------------------------------------- */

/* One tower's blocks: four linear layers per block on B T rows, and
 * attention's two (T, T) products per head, HS wide: 2 B T^2 C each. */
static double blocks_flops(int B, int T, int C, int mlp, int layers) {
    double rows = (double)B * T;
    double linears = 2.0 * rows * C * (3.0 * C + C + 2.0 * mlp);
    double attention = 2.0 * 2.0 * B * (double)T * T * C;
    return layers * (linears + attention);
}

double vlp_bench_forward_flops(const vlp_clip_config *c, int B, int N) {
    int G = c->image_size / c->patch_size, P = c->patch_size, D = c->embed_dim;
    int Cv = c->vision_width, Ct = c->text_width;
    double vision = blocks_flops(B, G * G + 1, Cv, (int)(c->mlp_ratio * Cv), c->vision_layers) +
                    2.0 * B * G * G * (3.0 * P * P) * Cv + 2.0 * B * Cv * D;
    double text = blocks_flops(B, c->context_length, Ct, (int)(c->mlp_ratio * Ct), c->text_layers) +
                  2.0 * B * Ct * D;
    double logits = 2.0 * (2.0 * B * N * D);
    return vision + text + logits;
}

/* ---- sgemm shapes and rates -------------------------------------------------- */

/* A linear layer (In -> O) on `rows` rows as vlp_linear_forward/backward
 * call vlp_gemm: out = x w^T; dx += dout w; dw += dout^T x. */
static int add_linear(vlp_bench_gemm *g, const char *tower, const char *name, int rows, int In,
                      int O, int count) {
    static const char *form[3] = {"forward", "dX", "dW"};
    vlp_bench_gemm f[3] = {
        {.ta = false, .tb = true, .M = rows, .N = O, .K = In, .beta = 0.0f},
        {.ta = false, .tb = false, .M = rows, .N = In, .K = O, .beta = 1.0f},
        {.ta = true, .tb = false, .M = O, .N = In, .K = rows, .beta = 1.0f},
    };
    for (int i = 0; i < 3; i++) {
        g[i] = f[i];
        g[i].count = count;
        snprintf(g[i].what, sizeof g[i].what, "%s %s %s", tower, name, form[i]);
    }
    return 3;
}

static int add_tower(vlp_bench_gemm *g, const char *tower, int rows, int C, int mlp, int layers) {
    int n = 0;
    n += add_linear(g + n, tower, "qkv", rows, C, 3 * C, layers);
    n += add_linear(g + n, tower, "out", rows, C, C, layers);
    n += add_linear(g + n, tower, "fc", rows, C, mlp, layers);
    n += add_linear(g + n, tower, "proj", rows, mlp, C, layers);
    return n;
}

int vlp_bench_gemm_shapes(const vlp_clip_config *c, int B, vlp_bench_gemm *g) {
    int G = c->image_size / c->patch_size, n = 0;
    n += add_tower(g + n, "visual", B * (G * G + 1), c->vision_width,
                   (int)(c->mlp_ratio * c->vision_width), c->vision_layers);
    n += add_tower(g + n, "text", B * c->context_length, c->text_width,
                   (int)(c->mlp_ratio * c->text_width), c->text_layers);
    VLP_ASSERT(n <= VLP_BENCH_GEMM_MAX, "%d shapes", n);
    return n;
}

double vlp_bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of the best of reps calls, after a warm-up call (page faults,
 * OpenBLAS's buffers, thread start). */
static double time_gemm(const vlp_bench_gemm *g, bool use_vlp, int reps, const float *A,
                        const float *Bm, float *C) {
    int lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
    CBLAS_TRANSPOSE opa = g->ta ? CblasTrans : CblasNoTrans, opb = g->tb ? CblasTrans : CblasNoTrans;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = vlp_bench_now();
        if (use_vlp) vlp_gemm(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, Bm, ldb, g->beta, C, g->N);
        else cblas_sgemm(CblasRowMajor, opa, opb, g->M, g->N, g->K, 1.0f, A, lda, Bm, ldb, g->beta, C, g->N);
        double t = vlp_bench_now() - t0;
        if (r > 0 && t < best) best = t;
    }
    return 2.0 * g->M * g->N * g->K / best * 1e-9;
}

int vlp_bench_gemm_measure(vlp_bench_gemm *g, int n, int reps) {
    int threads = vlp_kernel_threads(); /* first: it sets OpenBLAS to one thread */
    long na = 1, nb = 1, nc = 1;
    for (int i = 0; i < n; i++) {
        long a = (long)g[i].M * g[i].K, b = (long)g[i].K * g[i].N, c = (long)g[i].M * g[i].N;
        na = a > na ? a : na, nb = b > nb ? b : nb, nc = c > nc ? c : nc;
    }
    float *A = malloc(sizeof(float) * na), *Bm = malloc(sizeof(float) * nb), *C = calloc((size_t)nc, sizeof(float));
    if (!A || !Bm || !C) {
        free(A), free(Bm), free(C);
        return vlp_error_set(VLP_ENOMEM, "sgemm operands: %ld floats", na + nb + nc);
    }
    vlp_rng rng;
    vlp_rng_init(&rng, 1);
    vlp_rng_fill_uniform(&rng, A, na, -1.0f, 1.0f);
    vlp_rng_fill_uniform(&rng, Bm, nb, -1.0f, 1.0f);
    /* OpenBLAS's own threads first, all shapes, then vlp's: idle OpenMP
     * threads spin for a while after a region and would steal its cores. */
    openblas_set_num_threads(threads);
    for (int i = 0; i < n; i++) g[i].gflops_blas = time_gemm(&g[i], false, reps, A, Bm, C);
    openblas_set_num_threads(1); /* vlp's invariant: see vlp_kernel_threads() */
    for (int i = 0; i < n; i++) g[i].gflops_vlp = time_gemm(&g[i], true, reps, A, Bm, C);
    free(A), free(Bm), free(C);
    return VLP_OK;
}

double vlp_bench_gemm_blas(const vlp_bench_gemm *g) { return g->gflops_blas; }
double vlp_bench_gemm_vlp(const vlp_bench_gemm *g) { return g->gflops_vlp; }
double vlp_bench_gemm_best(const vlp_bench_gemm *g) {
    return g->gflops_blas > g->gflops_vlp ? g->gflops_blas : g->gflops_vlp;
}

double vlp_bench_gemm_weighted(const vlp_bench_gemm *g, int n, double (*rate)(const vlp_bench_gemm *)) {
    double flops = 0.0, seconds = 0.0;
    for (int i = 0; i < n; i++) {
        double f = 2.0 * g[i].M * g[i].N * g[i].K * g[i].count;
        flops += f;
        seconds += f / (rate(&g[i]) * 1e9);
    }
    return flops / seconds * 1e-9;
}

/* ---- the step ------------------------------------------------------------------ */

void vlp_bench_random_pairs(const vlp_clip_config *c, int n, uint64_t seed, float *images, int *ids) {
    int S = c->image_size, T = c->context_length, V = c->vocab_size;
    vlp_rng root, rng;
    vlp_rng_init(&root, seed);
    rng = vlp_rng_split(&root, VLP_RNG_STREAM_DATA);
    vlp_rng_fill_normal(&rng, images, (long)n * 3 * S * S, 0.0f, 1.0f);
    memset(ids, 0, sizeof(int) * (size_t)n * T);
    for (int i = 0; i < n; i++) {
        int *row = ids + (long)i * T, len = 1 + (int)vlp_rng_below(&rng, (uint64_t)(T - 2));
        row[0] = V - 2;
        for (int j = 1; j <= len; j++) row[j] = 1 + (int)vlp_rng_below(&rng, (uint64_t)(V - 3));
        row[len + 1] = V - 1; /* EOT: the largest id, where the text tower pools */
    }
}

float vlp_bench_step(vlp_clip *m, vlp_tape *tp, vlp_adamw *opt, const vlp_dist *d, int B,
                     float *images, const int *ids) {
    vlp_step_batch b = {.K = 1, .B = B, .images = images, .ids = ids};
    float loss = vlp_clip_gradients(m, tp, d, &b, true);
    vlp_grad_clip(&m->params, 0.0f); /* the trainer's norm (logged, NaN guard); no clipping */
    vlp_adamw_step(opt, &m->params, 5e-4f);
    vlp_clip_clamp_logit_scale(m);
    return loss;
}

/* ---- communication ----------------------------------------------------------- */

static int cmp_seconds(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of t[0..n), sorting t. */
static double median_of(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_seconds);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int vlp_bench_comm_measure(const vlp_dist *d, int B, int D, long P, int reps, vlp_bench_comm *r) {
    memset(r, 0, sizeof *r);
    r->gather_bytes = 2.0 * B * D * sizeof(float);
    r->allreduce_bytes = (double)P * sizeof(float);
    if (!d->mpi || reps < 1) return VLP_OK; /* one process: nothing to time */
    long local = (long)B * D, all = local * d->world;
    float *mine = calloc((size_t)local, sizeof(float)), *gathered = calloc((size_t)all, sizeof(float));
    float *grads = calloc((size_t)P, sizeof(float));
    double *t[3];
    for (int k = 0; k < 3; k++) t[k] = malloc(sizeof(double) * (size_t)reps);
    if (!mine || !gathered || !grads || !t[0] || !t[1] || !t[2])
        return vlp_error_set(VLP_ENOMEM, "out of memory for the communication benchmark");
    for (int i = 0; i <= reps; i++) { /* i = 0 warms the connections up */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = vlp_bench_now();
        for (int tower = 0; tower < 2; tower++)
            MPI_Allgather(mine, (int)local, MPI_FLOAT, gathered, (int)local, MPI_FLOAT, MPI_COMM_WORLD);
        double t1 = vlp_bench_now();
        for (int tower = 0; tower < 2; tower++)
            MPI_Reduce_scatter_block(gathered, mine, (int)local, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t2 = vlp_bench_now();
        vlp_dist_allreduce_sum(d, grads, (size_t)P);
        double t3 = vlp_bench_now();
        if (i) t[0][i - 1] = t1 - t0, t[1][i - 1] = t2 - t1, t[2][i - 1] = t3 - t2;
    }
    r->gather_s = median_of(t[0], reps);
    r->scatter_s = median_of(t[1], reps);
    r->allreduce_s = median_of(t[2], reps);
    for (int k = 0; k < 3; k++) free(t[k]);
    free(mine), free(gathered), free(grads);
    return VLP_OK;
}
