/* Shape helpers for vlp_tensor. */
#include "autograd/tensor.h"

#include <stdio.h>

#include "base/error.h"

long vlp_shape_numel(int ndim, const int *shape) {
    long n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int vlp_tensor_dim(const vlp_tensor *t, int d) {
    if (d < 0) d += t->ndim;
    VLP_ASSERT(d >= 0 && d < t->ndim, "dimension %d out of range for a %d-d tensor", d, t->ndim);
    return t->shape[d];
}

long vlp_tensor_rows(const vlp_tensor *t) { return t->n / t->shape[t->ndim - 1]; }

bool vlp_tensor_same_shape(const vlp_tensor *a, const vlp_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

char *vlp_tensor_shape_str(const vlp_tensor *t, char *buf, int size) {
    int len = snprintf(buf, size, "(");
    for (int i = 0; i < t->ndim && len < size; i++)
        len += snprintf(buf + len, size - len, i ? ", %d" : "%d", t->shape[i]);
    if (len < size) snprintf(buf + len, size - len, ")");
    return buf;
}
