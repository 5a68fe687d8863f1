/* vlpdemo: the engine end to end, until vlptrain exists. Trains the spirals
 * MLP with a progress line and writes a picture of what it learned.
 * Argument parsing only; the work is in apps/demo.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/output.h"
#include "apps/demo.h"
#include "train/progress.h"
#include "args.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vlpdemo [--steps N] [--lr LR] [--seed S] [--png PATH]\n"
               "Trains a small MLP on 2-d spirals through vlp's autograd engine and\n"
               "draws its decision regions (default spirals.png).\n");
}

int main(int argc, char **argv) {
    long steps = 2000, seed = 2026;
    float lr = 1e-2f;
    const char *png = "spirals.png";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--steps") && v) {
            ok = vlp_arg_long("vlpdemo", a, v, 1, 100000000, &steps);
        } else if (!strcmp(a, "--lr") && v) {
            ok = vlp_arg_float("vlpdemo", a, v, 1e-9, 10, &lr);
        } else if (!strcmp(a, "--seed") && v) {
            ok = vlp_arg_long("vlpdemo", a, v, 0, 1000000000000000, &seed);
        } else if (!strcmp(a, "--png") && v) {
            png = v;
        } else {
            vlp_arg_reject("vlpdemo", a, (const char *const[]){"--steps", "--lr", "--seed", "--png", NULL});
            ok = false;
        }
        if (!ok) {
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (vlp_output_check("--png", png, NULL, 0)) {
        fprintf(stderr, "vlpdemo: %s\n", vlp_error_message());
        return 2;
    }

    vlp_demo d;
    if (vlp_demo_init(&d, 3, 100, seed) != VLP_OK) {
        fprintf(stderr, "vlpdemo: %s\n", vlp_error_message());
        return 1;
    }
    printf("vlpdemo: %d spiral points, 3 classes, MLP 2-64-64-3 (%zu parameters), %ld steps\n",
           d.n, d.params.n, steps);
    vlp_progress progress;
    vlp_progress_init(&progress, stdout, steps, d.n, "samples", 0);
    for (long step = 0; step < steps; step++) {
        float rate = vlp_lr_schedule(step, steps / 20, steps, lr, 0.0f);
        float loss = vlp_demo_step(&d, rate);
        vlp_progress_update(&progress, step + 1, "loss %.4g | lr %.2e", loss, rate);
    }
    printf("training accuracy %.1f%%; arena high-water %.1f KiB per step\n",
           100.0f * vlp_demo_accuracy(&d), d.tape.arena.high_water / 1024.0);
    int rc = vlp_demo_plot(&d, png, 320);
    if (rc == VLP_OK) printf("wrote %s (decision regions and the training points)\n", png);
    else fprintf(stderr, "vlpdemo: %s\n", vlp_error_message());
    vlp_demo_free(&d);
    return rc == VLP_OK ? 0 : 1;
}
