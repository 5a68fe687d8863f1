/* The parameter store: every weight of a model in one contiguous buffer, with
 * a table {name, offset, shape} in a fixed registration order. Gradients and
 * AdamW's m and v share the layout, so zeroing, all-reduce, the optimizer
 * step and checkpointing are each one walk over flat memory.
 * It does not initialise values: models do, with their own scheme. */
#ifndef VLP_PARAMS_H
#define VLP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/tensor.h"

#define VLP_PARAM_NAME_MAX 128

typedef struct vlp_param {
    char name[VLP_PARAM_NAME_MAX]; /* OpenCLIP state_dict key */
    size_t offset;                 /* in floats, into every buffer */
    vlp_tensor *t;                 /* data/grad point into the store */
    bool decay;                    /* weight decay applies: 2 or more dims */
} vlp_param;

typedef struct vlp_params {
    vlp_param *table;
    int count, cap;
    size_t n; /* floats in each buffer */
    float *data, *grad, *m, *v;
} vlp_params;

void vlp_params_init(vlp_params *p);
void vlp_params_free(vlp_params *p);

/* Registers a parameter; its data is usable after vlp_params_alloc. The
 * returned tensor pointer stays valid until vlp_params_free. A duplicate
 * name or registration after alloc is a programmer error. */
vlp_tensor *vlp_params_add(vlp_params *p, const char *name, int ndim, const int *shape);

/* Allocates the four zeroed buffers and points every tensor into them.
 * Returns VLP_OK: a failed allocation aborts (base/mem.h). */
int vlp_params_alloc(vlp_params *p);

vlp_param *vlp_params_find(const vlp_params *p, const char *name);
void vlp_params_zero_grad(vlp_params *p);

/* Freezes (or unfreezes) every parameter whose name starts with prefix
 * ("visual." locks the image tower). Returns how many matched. */
int vlp_params_set_trainable(vlp_params *p, const char *prefix, bool trainable);

#endif
