/* What vlpbench measures: the two benchmark configs of issue 7, a CLIP
 * training step on random data, the step's matmul FLOPs counted from the
 * shapes, and OpenBLAS sgemm timed on the step's main shapes; and the whole
 * run as JSON. Not a trainer (no data loading, schedule, checkpoints), not
 * a profiler, and not the command line (src/cli). */
#ifndef VLP_BENCH_H
#define VLP_BENCH_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "autograd/optim.h"
#include "models/clip.h"
#include "train/dist.h"

/* A benchmark config: the model and the global batch (all ranks). */
typedef struct vlp_bench_config {
    const char *name;
    vlp_clip_config model;
    int batch;
} vlp_bench_config;

/* "A" or "B" (issue 7); NULL for any other name. */
const vlp_bench_config *vlp_bench_config_find(const char *name);

/* Matmul FLOPs (2 M N K per product) of one forward pass of B local pairs
 * against a global batch of N: every linear layer, attention's Q K^T and
 * P V over the full T x T (the causal half included), the patch
 * embedding, both projections and the two B x N logit products. A training
 * step counts 3x this (backward: one product for dX and one for dW). */
double vlp_bench_forward_flops(const vlp_clip_config *c, int B, int N);

/* A product C (M, N) = op(A) op(B) with inner size K, as vlp_gemm calls it,
 * `count` times per step, and its measured rates in GFLOP/s. */
typedef struct vlp_bench_gemm {
    char what[48]; /* "visual fc dW" */
    bool ta, tb;
    int M, N, K;
    float beta; /* 0: the forward writes C; 1: backward accumulates */
    int count;
    double gflops_blas; /* cblas_sgemm, OpenBLAS on the kernel threads */
    double gflops_vlp;  /* vlp_gemm: split over vlp's threads, 1-thread OpenBLAS */
} vlp_bench_gemm;

#define VLP_BENCH_GEMM_MAX 32

/* The transformer blocks' linear layers of both towers, for B local pairs,
 * each as forward, dX and dW products: their FLOPs are most of a step.
 * Returns how many were written to g (at most VLP_BENCH_GEMM_MAX). */
int vlp_bench_gemm_shapes(const vlp_clip_config *c, int B, vlp_bench_gemm *g);

/* Times each shape (best of `reps` calls after one warm-up call) both ways,
 * on vlp_kernel_threads() threads. */
int vlp_bench_gemm_measure(vlp_bench_gemm *g, int n, int reps);

/* The rate a step's worth of these products runs at: their total FLOPs
 * over the total time, each shape at `rate(g)` GFLOP/s. */
double vlp_bench_gemm_weighted(const vlp_bench_gemm *g, int n, double (*rate)(const vlp_bench_gemm *));
double vlp_bench_gemm_blas(const vlp_bench_gemm *g);
double vlp_bench_gemm_vlp(const vlp_bench_gemm *g);
double vlp_bench_gemm_best(const vlp_bench_gemm *g);

/* Random pairs, from seed alone: n normalised-looking images (standard
 * normal pixels) and token rows SOT, tokens, EOT at a random position,
 * zero padding (SOT, EOT the two largest ids, as in CLIP). */
void vlp_bench_random_pairs(const vlp_clip_config *c, int n, uint64_t seed, float *images, int *ids);

/* One training step as the trainer takes it, minus the data: gradients of
 * the global batch (all-gather, all-reduce), their global norm, AdamW at a
 * constant lr, the logit_scale clamp. images/ids: this rank's B pairs. Returns the loss. */
float vlp_bench_step(vlp_clip *m, vlp_tape *tp, vlp_adamw *opt, const vlp_dist *d, int B,
                     float *images, const int *ids);

/* The collectives of a data-parallel CLIP step, timed alone (median of
 * `reps` after one warm-up), in seconds: the all-gather of this rank's B
 * image and B text embeddings (two calls of B x D floats, as the forward
 * makes them), the reduce-scatter of their gradients (the backward), and
 * the all-reduce of every gradient (P floats). */
typedef struct vlp_bench_comm {
    double gather_s, scatter_s, allreduce_s;
    double gather_bytes, allreduce_bytes; /* what one rank contributes */
} vlp_bench_comm;
int vlp_bench_comm_measure(const vlp_dist *d, int B, int D, long P, int reps, vlp_bench_comm *r);

/* Seconds on a monotonic clock. */
double vlp_bench_now(void);

/* What vlpbench runs. */
typedef struct vlp_bench_opts {
    const vlp_bench_config *config;
    int steps, warmup; /* steps timed, after warm-up steps */
    int sgemm_reps;    /* sgemm: the best of this many calls per shape; 0: not timed */
    int comm_reps;     /* the collectives alone: the median of this many; 0: not timed */
    bool no_overlap;   /* all-reduce the gradients after backward, not during it */
} vlp_bench_opts;

/* The benchmark, on every rank (collective): o->warmup + o->steps steps of
 * this rank's share of the config's global batch (which d->world must
 * divide), then the collectives and sgemm as o asks. *out: on rank 0 the
 * results as scripts/bench.sh reads them (times, rates, memory, the BLAS
 * and threads, notes on what each number is), the caller's to
 * cJSON_Delete; NULL on the other ranks. */
int vlp_bench_run(const vlp_bench_opts *o, vlp_dist *d, cJSON **out);

#endif
