/* Central-difference gradient check (see gradcheck.h). */
#include "autograd/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/rng.h"

/* sum(r * fn()) in double, without recording. */
static double probe(vlp_tape *tape, vlp_gradcheck_fn fn, void *ctx, const float *r) {
    vlp_tape_no_grad_begin(tape);
    vlp_tensor *out = fn(tape, ctx);
    double loss = 0.0;
    for (long i = 0; i < out->n; i++) loss += (double)r[i] * out->data[i];
    vlp_tape_no_grad_end(tape);
    vlp_tape_reset(tape);
    return loss;
}

bool vlp_gradcheck(vlp_params *params, vlp_gradcheck_fn fn, void *ctx,
                   const vlp_gradcheck_opts *opts, vlp_gradcheck_report *report) {
    double h = opts->step > 0 ? opts->step : 1e-2;
    double tol = opts->tol > 0 ? opts->tol : 1e-2;
    double floor = opts->floor > 0 ? opts->floor : 1e-2;
    vlp_rng rng;
    vlp_rng_init(&rng, opts->seed);
    memset(report, 0, sizeof *report);

    vlp_tape tape;
    vlp_tape_init(&tape);
    vlp_tensor *out = fn(&tape, ctx);
    float *r = vlp_malloc((size_t)out->n * sizeof *r);
    float *analytic = vlp_malloc(params->n * sizeof *analytic);
    vlp_rng_fill_uniform(&rng, r, out->n, -1.0f, 1.0f);
    vlp_params_zero_grad(params);
    vlp_tape_backward(&tape, out, r);
    memcpy(analytic, params->grad, params->n * sizeof *analytic);
    vlp_tape_reset(&tape);

    for (int p = 0; p < params->count; p++) {
        const vlp_param *e = &params->table[p];
        if (!e->t->requires_grad) continue;
        long n = e->t->n, count = opts->max_per_tensor > 0 && opts->max_per_tensor < n
                                      ? opts->max_per_tensor : n;
        double worst = 0.0, scale = floor, wa = 0.0, wn = 0.0;
        long wi = 0;
        for (long k = 0; k < count; k++) {
            long i = count == n ? k : (long)vlp_rng_below(&rng, (uint64_t)n);
            float *x = &e->t->data[i], orig = *x;
            float hi = (float)(orig + h), lo = (float)(orig - h);
            *x = hi;
            double fp = probe(&tape, fn, ctx, r);
            *x = lo;
            double fm = probe(&tape, fn, ctx, r);
            *x = orig;
            double num = (fp - fm) / ((double)hi - (double)lo);
            double ana = analytic[e->offset + i];
            scale = fmax(scale, fmax(fabs(num), fabs(ana)));
            if (fabs(ana - num) >= worst) {
                worst = fabs(ana - num);
                wi = i;
                wa = ana;
                wn = num;
            }
            report->checked++;
        }
        double err = worst / scale;
        if (err >= report->max_error) {
            report->max_error = err;
            snprintf(report->worst_param, sizeof report->worst_param, "%s", e->name);
            report->worst_index = wi;
            report->analytic = wa;
            report->numeric = wn;
        }
    }
    free(r);
    free(analytic);
    vlp_tape_free(&tape);
    return report->max_error <= tol;
}
