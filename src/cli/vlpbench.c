/* vlpbench: times a CLIP training step (forward, backward, AdamW; random
 * data, no loading) of issue 7's configs, and OpenBLAS sgemm on the step's
 * shapes, and prints JSON (scripts/bench.sh runs it against PyTorch).
 *   vlpbench --config A|B [--steps N] [--warmup W] [--json OUT] [--sgemm-reps R]
 * Under mpirun each of W ranks takes batch/W pairs of the same global batch.
 * Argument parsing and printing; the measuring is in src/apps/bench.c. */
#include <cjson/cJSON.h>
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/error.h"
#include "autograd/kernels.h"
#include "apps/bench.h"
#include "args.h"

static void usage(FILE *f) {
    fputs("usage: vlpbench --config A|B [--steps N] [--warmup W] [--json OUT] [--sgemm-reps R]\n"
          "                [--comm-reps C] [--no-overlap]\n"
          "Times N training steps after W warm-up steps (default 10 and 2) and sgemm on the\n"
          "step's shapes (best of R calls, default 3; 0 skips it). Threads: OPENBLAS_NUM_THREADS.\n"
          "JSON goes to OUT, or stdout. Under mpirun the global batch is split over the ranks,\n"
          "and --comm-reps C times the step's collectives alone (median of C; default 0: skip);\n"
          "--no-overlap all-reduces the gradients after backward instead of during it.\n",
          f);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *x, int n) {
    double *s = malloc(sizeof(double) * (size_t)n);
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
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
static void add_machine(cJSON *o, const char *note) {
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

typedef struct options {
    const char *config, *json;
    int steps, warmup, reps, comm_reps;
    bool no_overlap;
} options;

static int parse(options *o, int argc, char **argv) {
    *o = (options){.steps = 10, .warmup = 2, .reps = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--config") && has) o->config = argv[++i];
        else if (!strcmp(a, "--steps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 1, 1000000, &o->steps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--warmup") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->warmup)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--json") && has) o->json = argv[++i];
        else if (!strcmp(a, "--sgemm-reps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->reps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--comm-reps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->comm_reps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--no-overlap")) o->no_overlap = true;
        else return fprintf(stderr, "vlpbench: unexpected argument '%s'\n", a), usage(stderr), 2;
    }
    if (!o->config || !vlp_bench_config_find(o->config)) {
        fprintf(stderr, "vlpbench: --config must be A or B\n");
        return usage(stderr), 2;
    }
    if (o->steps < 1 || o->warmup < 0 || o->reps < 0 || o->comm_reps < 0)
        return fprintf(stderr, "vlpbench: --steps >= 1, --warmup >= 0, --sgemm-reps >= 0, --comm-reps >= 0\n"), 2;
    return -1; /* go on */
}

static void fail(const vlp_dist *d, const char *what) {
    fprintf(stderr, "vlpbench: rank %d: %s\n", d->rank, what);
    vlp_dist_abort(d, 1);
}

int main(int argc, char **argv) {
    options o;
    int rc = parse(&o, argc, argv);
    if (rc >= 0) return rc;
    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "vlpbench: %s\n", vlp_error_message()), 1;
    d.no_overlap = o.no_overlap;
    const vlp_bench_config *bc = vlp_bench_config_find(o.config);
    if (bc->batch % d.world) fail(&d, "the ranks must divide the batch");
    int B = bc->batch / d.world, S = bc->model.image_size, T = bc->model.context_length;
    char note[512];
    vlp_blas_kernel_note(note, sizeof note);
    if (d.rank == 0 && *note) fprintf(stderr, "vlpbench: note: %s\n", note);

    vlp_clip m;
    if (vlp_clip_init(&m, &bc->model, 0)) fail(&d, vlp_error_message());
    /* the global batch from one seed; this rank's rows of it */
    float *images = malloc(sizeof(float) * (size_t)bc->batch * 3 * S * S);
    int *ids = malloc(sizeof(int) * (size_t)bc->batch * T);
    double *seconds = malloc(sizeof(double) * (size_t)o.steps);
    double *waited = malloc(sizeof(double) * (size_t)o.steps); /* for the all-reduce, after backward */
    if (!images || !ids || !seconds || !waited) fail(&d, "out of memory");
    vlp_bench_random_pairs(&bc->model, bc->batch, 7, images, ids);
    float *my_images = images + (long)d.rank * B * 3 * S * S;
    const int *my_ids = ids + (long)d.rank * B * T;
    vlp_tape tp;
    vlp_tape_init(&tp);
    vlp_adamw opt;
    vlp_adamw_init(&opt);

    float loss_first = 0.0f, loss = 0.0f;
    for (int s = 0; s < o.warmup + o.steps; s++) {
        double t0 = vlp_bench_now();
        loss = vlp_bench_step(&m, &tp, &opt, &d, B, my_images, my_ids);
        if (s >= o.warmup) {
            seconds[s - o.warmup] = vlp_bench_now() - t0;
            waited[s - o.warmup] = vlp_dist_backward_wait_s();
        }
        if (s == 0) loss_first = loss;
    }
    float rss[2] = {(float)peak_rss_mb(), 0.0f}; /* before sgemm's operands */
    rss[1] = rss[0];
    vlp_dist_allreduce_sum(&d, rss + 1, 1);
    size_t arena = tp.arena.high_water, arena_forward = tp.forward_bytes, grad_peak = tp.grad_peak;

    vlp_bench_comm comm;
    if (vlp_bench_comm_measure(&d, B, bc->model.embed_dim, (long)m.params.n, o.comm_reps, &comm))
        fail(&d, vlp_error_message());

    vlp_bench_gemm g[VLP_BENCH_GEMM_MAX];
    int ng = vlp_bench_gemm_shapes(&bc->model, B, g);
    if (o.reps > 0 && vlp_bench_gemm_measure(g, ng, o.reps)) fail(&d, vlp_error_message());

    if (d.rank == 0) {
        double med = median(seconds, o.steps);
        double flops = 3.0 * vlp_bench_forward_flops(&bc->model, B, bc->batch);
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "program", "vlp");
        cJSON_AddStringToObject(out, "config", bc->name);
        cJSON_AddNumberToObject(out, "batch", bc->batch);
        cJSON_AddNumberToObject(out, "ranks", d.world);
        cJSON_AddNumberToObject(out, "batch_per_rank", B);
        cJSON_AddBoolToObject(out, "allreduce_overlapped", d.world > 1 && !o.no_overlap);
        cJSON_AddNumberToObject(out, "allreduce_wait_s", median(waited, o.steps));
        cJSON_AddStringToObject(out, "allreduce_wait_note",
                                "median over the steps of the time rank 0 waited, once backward "
                                "had ended, for the gradient all-reduce (the part that compute "
                                "did not hide; with --no-overlap, all of it)");
        add_machine(out, note);
        cJSON_AddNumberToObject(out, "params", (double)m.params.n);
        cJSON_AddNumberToObject(out, "warmup", o.warmup);
        cJSON_AddNumberToObject(out, "steps", o.steps);
        cJSON_AddItemToObject(out, "step_s", cJSON_CreateDoubleArray(seconds, o.steps));
        cJSON_AddNumberToObject(out, "median_s", med);
        cJSON_AddNumberToObject(out, "samples_per_s", bc->batch / med);
        cJSON_AddNumberToObject(out, "loss_first", loss_first);
        cJSON_AddNumberToObject(out, "loss_last", loss);
        cJSON_AddNumberToObject(out, "peak_rss_mb", rss[0]);
        cJSON_AddNumberToObject(out, "peak_rss_mb_all_ranks", rss[1]);
        cJSON_AddNumberToObject(out, "arena_mb", (double)arena / (1 << 20));
        cJSON_AddNumberToObject(out, "arena_forward_mb", (double)arena_forward / (1 << 20));
        cJSON_AddNumberToObject(out, "arena_grad_peak_mb", (double)grad_peak / (1 << 20));
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
        if (o.reps > 0) {
            cJSON *s = sgemm_json(g, ng, o.reps);
            double rate = cJSON_GetObjectItem(s, "gflops")->valuedouble;
            cJSON_AddItemToObject(out, "sgemm", s);
            cJSON_AddNumberToObject(out, "sgemm_fraction", flops / med * 1e-9 / rate);
        } else {
            cJSON_AddNullToObject(out, "sgemm");
            cJSON_AddNullToObject(out, "sgemm_fraction");
        }
        if (o.comm_reps > 0 && d.world > 1) {
            cJSON *c = cJSON_AddObjectToObject(out, "comm");
            cJSON_AddNumberToObject(c, "reps", o.comm_reps);
            cJSON_AddNumberToObject(c, "gather_s", comm.gather_s);
            cJSON_AddNumberToObject(c, "reduce_scatter_s", comm.scatter_s);
            cJSON_AddNumberToObject(c, "allreduce_s", comm.allreduce_s);
            cJSON_AddNumberToObject(c, "gather_bytes_per_rank", comm.gather_bytes);
            cJSON_AddNumberToObject(c, "allreduce_bytes", comm.allreduce_bytes);
            cJSON_AddNumberToObject(c, "fraction_of_step",
                                    (comm.gather_s + comm.scatter_s + comm.allreduce_s) / med);
            cJSON_AddStringToObject(c, "note",
                                    "medians of the collectives timed alone: 2 all-gathers of B x D "
                                    "floats (image, text embeddings), 2 reduce-scatters (their "
                                    "gradients), 1 all-reduce of every gradient");
        }
        char *text = cJSON_Print(out);
        FILE *f = o.json && strcmp(o.json, "-") ? fopen(o.json, "w") : stdout;
        if (!f) fail(&d, "cannot write the --json file");
        fprintf(f, "%s\n", text);
        if (f != stdout) fclose(f);
        free(text);
        cJSON_Delete(out);
    }
    vlp_tape_free(&tp);
    vlp_clip_free(&m);
    free(images), free(ids), free(seconds), free(waited);
    vlp_dist_finalize(&d);
    return 0;
}
