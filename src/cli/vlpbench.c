/* vlpbench: times a CLIP training step (forward, backward, AdamW; random
 * data, no loading) of issue 7's configs, and OpenBLAS sgemm on the step's
 * shapes, and prints JSON (scripts/bench.sh runs it against PyTorch).
 *   vlpbench --config A|B [--steps N] [--warmup W] [--json OUT] [--sgemm-reps R]
 * Under mpirun each of W ranks takes batch/W pairs of the same global batch.
 * Argument parsing and printing; the measuring is in src/apps/bench.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
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

static const char *const VALUE_OPTIONS[] = {"--config", "--steps", "--warmup", "--json", "--sgemm-reps",
                                             "--comm-reps", NULL};

/* 0 or 2: exit with it; -1: go on. */
static int parse(vlp_bench_opts *o, const char **json, int argc, char **argv) {
    const char *config = NULL;
    *o = (vlp_bench_opts){.steps = 10, .warmup = 2, .sgemm_reps = 3};
    *json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        if (!strcmp(a, "--config") && has) config = argv[++i];
        else if (!strcmp(a, "--steps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 1, 1000000, &o->steps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--warmup") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->warmup)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--json") && has) *json = argv[++i];
        else if (!strcmp(a, "--sgemm-reps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->sgemm_reps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--comm-reps") && has) {
            if (!vlp_arg_int("vlpbench", a, argv[++i], 0, 1000000, &o->comm_reps)) return usage(stderr), 2;
        }
        else if (!strcmp(a, "--no-overlap")) o->no_overlap = true;
        else return vlp_arg_reject("vlpbench", a, VALUE_OPTIONS), usage(stderr), 2;
    }
    if (!config || !(o->config = vlp_bench_config_find(config))) {
        fprintf(stderr, "vlpbench: --config must be A or B\n");
        return usage(stderr), 2;
    }
    if (vlp_output_check("--json", *json, NULL, 0))
        return fprintf(stderr, "vlpbench: %s\n", vlp_error_message()), 2;
    return -1;
}

static void fail(const vlp_dist *d, const char *what) {
    fprintf(stderr, "vlpbench: rank %d: %s\n", d->rank, what);
    vlp_dist_abort(d, 1);
}

int main(int argc, char **argv) {
    vlp_bench_opts o;
    const char *json;
    int rc = parse(&o, &json, argc, argv);
    if (rc >= 0) return rc;
    vlp_dist d;
    if (vlp_dist_init(&d, &argc, &argv)) return fprintf(stderr, "vlpbench: %s\n", vlp_error_message()), 1;
    if (o.config->batch % d.world) fail(&d, "the ranks must divide the batch"); /* before the note */
    char note[512];
    if (d.rank == 0 && *vlp_blas_kernel_note(note, sizeof note)) fprintf(stderr, "vlpbench: note: %s\n", note);
    cJSON *out;
    if (vlp_bench_run(&o, &d, &out)) fail(&d, vlp_error_message());
    if (out) { /* rank 0 */
        char *text = cJSON_Print(out);
        FILE *f = json && strcmp(json, "-") ? fopen(json, "w") : stdout;
        if (!f) fail(&d, "cannot write the --json file");
        fprintf(f, "%s\n", text);
        if (f != stdout) fclose(f);
        free(text);
        cJSON_Delete(out);
    }
    vlp_dist_finalize(&d);
    return 0;
}
