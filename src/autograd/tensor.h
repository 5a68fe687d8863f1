/* The float32 tensor: contiguous, row-major, up to four dimensions.
 * A tensor does not own its memory: data and grad live in a tape's arena
 * (activations) or in a parameter store (weights). */
#ifndef VLP_TENSOR_H
#define VLP_TENSOR_H

#include <stdbool.h>

#define VLP_MAX_DIMS 4

typedef struct vlp_tensor {
    float *data;
    float *grad; /* same shape as data; NULL until a gradient flows in */
    /* A view (reshape): the tensor whose data and gradient it shares; its
     * own grad stays NULL, vlp_tape_grad() hands out the base's. */
    struct vlp_tensor *base;
    int ndim;
    int shape[VLP_MAX_DIMS];
    long n; /* number of elements */
    bool requires_grad;
    bool keep_grad; /* an op's output whose grad outlives backward (vlp_tape_keep_grad) */
} vlp_tensor;

long vlp_shape_numel(int ndim, const int *shape);

/* Size of dimension d; negative d counts from the end (-1 is the last). */
int vlp_tensor_dim(const vlp_tensor *t, int d);

/* Product of the sizes of every dimension but the last: the "rows". */
long vlp_tensor_rows(const vlp_tensor *t);

bool vlp_tensor_same_shape(const vlp_tensor *a, const vlp_tensor *b);

/* "(2, 3, 4)" into buf, for messages. Returns buf. */
char *vlp_tensor_shape_str(const vlp_tensor *t, char *buf, int size);

#endif
