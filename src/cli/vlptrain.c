/* vlptrain: train CLIP, BLIP or GroupViT from an INI recipe, on one process or under mpirun.
 *   vlptrain CONFIG.ini [--set section.key=value ...] [--resume PATH|latest]
 *   vlptrain --help-config [--markdown]
 * Argument parsing only; the work is in src/train. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "autograd/kernels.h"
#include "train/config.h"
#include "train/dist.h"
#include "eval/eval.h"
#include "train/trainer.h"
#include "args.h"

static void usage(FILE *f) {
    fputs("usage: vlptrain CONFIG.ini [--set section.key=value ...] [--resume PATH|latest]\n"
          "       vlptrain --help-config [--markdown]\n"
          "Under mpirun, every rank trains on its shard and the contrastive loss sees the\n"
          "global batch. --resume latest continues from the newest checkpoint of [log] dir.\n",
          f);
}

static volatile sig_atomic_t stop_requested;
static atomic_int signals_seen, notice_written;

/* First SIGINT/SIGTERM: finish the step, checkpoint, exit 0. Second: now.
 * BLAS and MPI threads take signals too, so the two handlers may run at once
 * on two threads (sa_mask keeps them from nesting on one): the counter picks
 * the first, and the second waits for its notice before ending the process. */
static void on_signal(int sig) {
    (void)sig;
    if (atomic_fetch_add(&signals_seen, 1) == 0) {
        stop_requested = 1;
        static const char msg[] = "\nvlptrain: stopping after this step (again to stop now)\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) _exit(130);
        atomic_store(&notice_written, 1);
        return;
    }
    struct timespec ms = {0, 1000000};
    for (int waited = 0; waited < 1000 && !atomic_load(&notice_written); waited++) nanosleep(&ms, NULL);
    _exit(130);
}

int main(int argc, char **argv) {
    const char *config_path = NULL, *resume = NULL;
    const char *sets[argc]; /* on the stack: every early return is clean */
    int n_sets = 0;
    bool help_config = false, markdown = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--help-config")) {
            help_config = true;
        } else if (!strcmp(a, "--markdown")) {
            markdown = true;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(a, "--resume") && i + 1 < argc) {
            resume = argv[++i];
        } else if (a[0] != '-' && !config_path) {
            config_path = a;
        } else {
            vlp_arg_reject("vlptrain", a, (const char *const[]){"--set", "--resume", NULL});
            usage(stderr);
            return 2;
        }
    }
    if (help_config) {
        vlp_config_help(stdout, markdown);
        return 0;
    }
    if (!config_path) {
        usage(stderr);
        return 2;
    }
    vlp_config cfg;
    if (vlp_config_load(&cfg, config_path, sets, n_sets) != VLP_OK) {
        fprintf(stderr, "vlptrain: %s\n", vlp_error_message());
        return 2;
    }
    vlp_dist dist;
    if (vlp_dist_init(&dist, &argc, &argv) != VLP_OK) {
        fprintf(stderr, "vlptrain: %s\n", vlp_error_message());
        return 1;
    }
    /* A slower BLAS kernel than the CPU has is worth knowing before a long run. */
    char note[512];
    if (dist.rank == 0 && *vlp_blas_kernel_note(note, sizeof note)) fprintf(stderr, "vlptrain: note: %s\n", note);
    vlp_trainer t;
    int rc = vlp_trainer_open(&t, &cfg, config_path, resume, &dist);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    t.stop = &stop_requested;
    t.evaluate = vlp_eval_during_training;
    if (rc == VLP_OK) rc = vlp_trainer_run(&t);
    if (rc != VLP_OK && t.error_on_all_ranks) { /* every rank stopped here: end together */
        if (dist.rank == 0) fprintf(stderr, "vlptrain: %s\n", vlp_error_message());
        vlp_trainer_close(&t);
        vlp_dist_finalize(&dist);
        return 1;
    }
    if (rc != VLP_OK) {
        if (dist.world > 1) fprintf(stderr, "vlptrain: rank %d: %s\n", dist.rank, vlp_error_message());
        else fprintf(stderr, "vlptrain: %s\n", vlp_error_message());
        vlp_trainer_close(&t); /* stops the loader's threads before exit */
        vlp_dist_abort(&dist, 1); /* the other ranks may be waiting in a collective */
    }
    vlp_trainer_close(&t);
    vlp_dist_finalize(&dist);
    return 0;
}
