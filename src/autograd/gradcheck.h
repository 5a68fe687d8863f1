/* Finite-difference gradient checking of anything built on the tape.
 * The function under test reads its inputs from a parameter store; the check
 * compares the tape's gradient of loss = sum(r * out), r random, with central
 * differences of the same loss (accumulated in double). It proves backward
 * matches forward, not that forward is right: that is the reference's job. */
#ifndef VLP_GRADCHECK_H
#define VLP_GRADCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/params.h"
#include "autograd/tape.h"

/* Builds the output from the store's tensors. Called many times: it must be
 * deterministic (reseed any generator it uses on every call). */
typedef vlp_tensor *(*vlp_gradcheck_fn)(vlp_tape *tape, void *ctx);

typedef struct vlp_gradcheck_opts {
    double step;        /* finite-difference step; 0 means 1e-2 */
    double tol;         /* largest error allowed per tensor; 0 means 1e-2 */
    double floor;       /* smallest gradient scale an error is measured against; 0 means 1e-2 */
    int max_per_tensor; /* elements sampled per tensor; 0 checks them all */
    uint64_t seed;      /* for r and the sampling */
} vlp_gradcheck_opts;

typedef struct vlp_gradcheck_report {
    /* Worst over tensors of max|analytic - numeric| / max(max|numeric|,
     * max|analytic|, floor), over the checked elements of the tensor. */
    double max_error;
    char worst_param[VLP_PARAM_NAME_MAX];
    long worst_index;
    double analytic, numeric; /* at the worst element */
    long checked;             /* elements checked */
} vlp_gradcheck_report;

/* True when every tensor's error is within tol. Trainable tensors only. */
bool vlp_gradcheck(vlp_params *params, vlp_gradcheck_fn fn, void *ctx,
                   const vlp_gradcheck_opts *opts, vlp_gradcheck_report *report);

#endif
