/* Benchmark pieces for vlpbench (see bench.h). */
#include "apps/bench.h"

#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/error.h"
#include "base/mem.h"
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
    float *A = vlp_malloc(sizeof(float) * na), *Bm = vlp_malloc(sizeof(float) * nb);
    float *C = vlp_calloc((size_t)nc, sizeof(float));
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
    float *mine = vlp_calloc((size_t)local, sizeof(float)), *gathered = vlp_calloc((size_t)all, sizeof(float));
    float *grads = vlp_calloc((size_t)P, sizeof(float));
    double *t[3];
    for (int k = 0; k < 3; k++) t[k] = vlp_malloc(sizeof(double) * (size_t)reps);
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

/* ---- vlpbench's run ---------------------------------------------------------- */

/* Median of x[0..n), x left as it is. */
static double median(const double *x, int n) {
    double *s = vlp_malloc(sizeof(double) * (size_t)n);
    memcpy(s, x, sizeof(double) * (size_t)n);
    double m = median_of(s, n);
    free(s);
    return m;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static void add_env(cJSON *o, const char *key, const char *var) {
    const char *v = getenv(var);
    if (v) cJSON_AddStringToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* Everything about the BLAS and threads the numbers depend on. */
static void add_machine(cJSON *o) {
    char note[512];
    vlp_blas_kernel_note(note, sizeof note);
    cJSON_AddNumberToObject(o, "threads", vlp_kernel_threads());
    add_env(o, "openblas_num_threads", "OPENBLAS_NUM_THREADS");
    add_env(o, "openblas_coretype", "OPENBLAS_CORETYPE");
    add_env(o, "omp_num_threads", "OMP_NUM_THREADS");
    cJSON_AddStringToObject(o, "openblas_core", openblas_get_corename());
    cJSON_AddStringToObject(o, "openblas_config", openblas_get_config());
    if (*note) cJSON_AddStringToObject(o, "kernel_note", note);
    else cJSON_AddNullToObject(o, "kernel_note");
}

static cJSON *sgemm_json(const vlp_bench_gemm *g, int n, int reps) {
    cJSON *s = cJSON_CreateObject(), *shapes = cJSON_AddArrayToObject(s, "shapes");
    cJSON_AddNumberToObject(s, "reps", reps);
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "what", g[i].what);
        cJSON_AddStringToObject(e, "op", g[i].ta ? (g[i].tb ? "TT" : "TN") : (g[i].tb ? "NT" : "NN"));
        cJSON_AddNumberToObject(e, "M", g[i].M);
        cJSON_AddNumberToObject(e, "N", g[i].N);
        cJSON_AddNumberToObject(e, "K", g[i].K);
        cJSON_AddNumberToObject(e, "count", g[i].count);
        cJSON_AddNumberToObject(e, "gflops_openblas", g[i].gflops_blas);
        cJSON_AddNumberToObject(e, "gflops_vlp_gemm", g[i].gflops_vlp);
        cJSON_AddItemToArray(shapes, e);
    }
    cJSON_AddNumberToObject(s, "gflops_openblas", vlp_bench_gemm_weighted(g, n, vlp_bench_gemm_blas));
    cJSON_AddNumberToObject(s, "gflops_vlp_gemm", vlp_bench_gemm_weighted(g, n, vlp_bench_gemm_vlp));
    cJSON_AddNumberToObject(s, "gflops", vlp_bench_gemm_weighted(g, n, vlp_bench_gemm_best));
    cJSON_AddStringToObject(s, "note",
                            "the blocks' linear layers (forward, dX, dW) of both towers; each shape "
                            "at the better of cblas_sgemm on OpenBLAS's own threads and vlp_gemm "
                            "(vlp's threads, 1-thread OpenBLAS); gflops: the FLOP-weighted rate "
                            "(total FLOPs / total time) of one step's worth of these calls");
    return s;
}

/* What one rank measured. */
typedef struct measured {
    int B;
    const double *seconds, *waited; /* (steps) */
    float loss_first, loss;
    float rss[2]; /* this rank's peak RSS, the sum over ranks */
    size_t arena, arena_forward, grad_peak, params;
    const vlp_bench_comm *comm;
    const vlp_bench_gemm *g;
    int ng;
} measured;

static cJSON *results_json(const vlp_bench_opts *o, const vlp_dist *d, const measured *r) {
    const vlp_bench_config *bc = o->config;
    double med = median(r->seconds, o->steps);
    double flops = 3.0 * vlp_bench_forward_flops(&bc->model, r->B, bc->batch);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "program", "vlp");
    cJSON_AddStringToObject(out, "config", bc->name);
    cJSON_AddNumberToObject(out, "batch", bc->batch);
    cJSON_AddNumberToObject(out, "ranks", d->world);
    cJSON_AddNumberToObject(out, "batch_per_rank", r->B);
    cJSON_AddBoolToObject(out, "allreduce_overlapped", d->world > 1 && !o->no_overlap);
    cJSON_AddNumberToObject(out, "allreduce_wait_s", median(r->waited, o->steps));
    cJSON_AddStringToObject(out, "allreduce_wait_note",
                            "median over the steps of the time rank 0 waited, once backward "
                            "had ended, for the gradient all-reduce (the part that compute "
                            "did not hide; with --no-overlap, all of it)");
    add_machine(out);
    cJSON_AddNumberToObject(out, "params", (double)r->params);
    cJSON_AddNumberToObject(out, "warmup", o->warmup);
    cJSON_AddNumberToObject(out, "steps", o->steps);
    cJSON_AddItemToObject(out, "step_s", cJSON_CreateDoubleArray(r->seconds, o->steps));
    cJSON_AddNumberToObject(out, "median_s", med);
    cJSON_AddNumberToObject(out, "samples_per_s", bc->batch / med);
    cJSON_AddNumberToObject(out, "loss_first", r->loss_first);
    cJSON_AddNumberToObject(out, "loss_last", r->loss);
    cJSON_AddNumberToObject(out, "peak_rss_mb", r->rss[0]);
    cJSON_AddNumberToObject(out, "peak_rss_mb_all_ranks", r->rss[1]);
    cJSON_AddNumberToObject(out, "arena_mb", (double)r->arena / (1 << 20));
    cJSON_AddNumberToObject(out, "arena_forward_mb", (double)r->arena_forward / (1 << 20));
    cJSON_AddNumberToObject(out, "arena_grad_peak_mb", (double)r->grad_peak / (1 << 20));
    cJSON_AddStringToObject(out, "arena_note",
                            "arena_mb: the step's high-water mark; arena_forward_mb: in use when "
                            "backward began (activations, what ops saved); arena_grad_peak_mb: "
                            "activation gradients alive at once (backward releases each when "
                            "dead); the rest of arena_mb is backward's scratch and the holes "
                            "of released blocks no later request of that size took");
    cJSON_AddNumberToObject(out, "model_flops_per_step", flops);
    cJSON_AddStringToObject(out, "model_flops_note",
                            "matmul FLOPs of this rank's step, 3x the forward's (backward = "
                            "dX + dW): linear layers, attention QK^T and PV over the full T x T "
                            "(causal half included), patch embedding, projections, logits");
    cJSON_AddNumberToObject(out, "model_gflops_per_s", flops / med * 1e-9);
    if (o->sgemm_reps > 0) {
        cJSON *s = sgemm_json(r->g, r->ng, o->sgemm_reps);
        double rate = cJSON_GetObjectItem(s, "gflops")->valuedouble;
        cJSON_AddItemToObject(out, "sgemm", s);
        cJSON_AddNumberToObject(out, "sgemm_fraction", flops / med * 1e-9 / rate);
    } else {
        cJSON_AddNullToObject(out, "sgemm");
        cJSON_AddNullToObject(out, "sgemm_fraction");
    }
    if (o->comm_reps > 0 && d->world > 1) {
        const vlp_bench_comm *comm = r->comm;
        cJSON *c = cJSON_AddObjectToObject(out, "comm");
        cJSON_AddNumberToObject(c, "reps", o->comm_reps);
        cJSON_AddNumberToObject(c, "gather_s", comm->gather_s);
        cJSON_AddNumberToObject(c, "reduce_scatter_s", comm->scatter_s);
        cJSON_AddNumberToObject(c, "allreduce_s", comm->allreduce_s);
        cJSON_AddNumberToObject(c, "gather_bytes_per_rank", comm->gather_bytes);
        cJSON_AddNumberToObject(c, "allreduce_bytes", comm->allreduce_bytes);
        cJSON_AddNumberToObject(c, "fraction_of_step", (comm->gather_s + comm->scatter_s + comm->allreduce_s) / med);
        cJSON_AddStringToObject(c, "note",
                                "medians of the collectives timed alone: 2 all-gathers of B x D "
                                "floats (image, text embeddings), 2 reduce-scatters (their "
                                "gradients), 1 all-reduce of every gradient");
    }
    return out;
}

int vlp_bench_run(const vlp_bench_opts *o, vlp_dist *d, cJSON **out) {
    const vlp_bench_config *bc = o->config;
    *out = NULL;
    if (bc->batch % d->world) return vlp_error_set(VLP_EINVAL, "the ranks must divide the batch");
    d->no_overlap = o->no_overlap;
    int B = bc->batch / d->world, S = bc->model.image_size, T = bc->model.context_length;
    vlp_clip m;
    int rc = vlp_clip_init(&m, &bc->model, 0);
    if (rc) return rc;
    /* the global batch from one seed; this rank's rows of it */
    float *images = vlp_malloc(sizeof(float) * (size_t)bc->batch * 3 * S * S);
    int *ids = vlp_malloc(sizeof(int) * (size_t)bc->batch * T);
    double *seconds = vlp_malloc(sizeof(double) * (size_t)o->steps);
    double *waited = vlp_malloc(sizeof(double) * (size_t)o->steps); /* for the all-reduce, after backward */
    vlp_bench_random_pairs(&bc->model, bc->batch, 7, images, ids);
    float *my_images = images + (long)d->rank * B * 3 * S * S;
    const int *my_ids = ids + (long)d->rank * B * T;
    vlp_tape tp;
    vlp_tape_init(&tp);
    vlp_adamw opt;
    vlp_adamw_init(&opt);

    measured r = {.B = B, .seconds = seconds, .waited = waited};
    for (int s = 0; s < o->warmup + o->steps; s++) {
        double t0 = vlp_bench_now();
        r.loss = vlp_bench_step(&m, &tp, &opt, d, B, my_images, my_ids);
        if (s >= o->warmup) {
            seconds[s - o->warmup] = vlp_bench_now() - t0;
            waited[s - o->warmup] = vlp_dist_backward_wait_s();
        }
        if (s == 0) r.loss_first = r.loss;
    }
    r.rss[0] = r.rss[1] = (float)peak_rss_mb(); /* before sgemm's operands */
    vlp_dist_allreduce_sum(d, r.rss + 1, 1);
    r.arena = tp.arena.high_water, r.arena_forward = tp.forward_bytes, r.grad_peak = tp.grad_peak;
    r.params = m.params.n;

    vlp_bench_comm comm;
    vlp_bench_gemm g[VLP_BENCH_GEMM_MAX];
    r.comm = &comm, r.g = g;
    rc = vlp_bench_comm_measure(d, B, bc->model.embed_dim, (long)m.params.n, o->comm_reps, &comm);
    r.ng = vlp_bench_gemm_shapes(&bc->model, B, g);
    if (!rc && o->sgemm_reps > 0) rc = vlp_bench_gemm_measure(g, r.ng, o->sgemm_reps);
    if (!rc && d->rank == 0) *out = results_json(o, d, &r);
    vlp_tape_free(&tp);
    vlp_clip_free(&m);
    free(images), free(ids), free(seconds), free(waited);
    return rc;
}
