/* Parameter store: registration, one allocation, lookup, freezing. */
#include "autograd/params.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

void vlp_params_init(vlp_params *p) { memset(p, 0, sizeof *p); }

void vlp_params_free(vlp_params *p) {
    for (int i = 0; i < p->count; i++) free(p->table[i].t);
    free(p->table);
    free(p->data);
    free(p->grad);
    free(p->m);
    free(p->v);
    memset(p, 0, sizeof *p);
}

vlp_param *vlp_params_find(const vlp_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->table[i].name, name) == 0) return &p->table[i];
    return NULL;
}

vlp_tensor *vlp_params_add(vlp_params *p, const char *name, int ndim, const int *shape) {
    VLP_ASSERT(!p->data, "parameter %s registered after vlp_params_alloc", name);
    VLP_ASSERT(strlen(name) < VLP_PARAM_NAME_MAX, "parameter name too long: %s", name);
    VLP_ASSERT(!vlp_params_find(p, name), "parameter %s registered twice", name);
    VLP_ASSERT(ndim >= 1 && ndim <= VLP_MAX_DIMS, "parameter %s has %d dimensions", name, ndim);
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        p->table = vlp_realloc(p->table, (size_t)cap * sizeof *p->table);
        p->cap = cap;
    }
    vlp_tensor *t = vlp_calloc(1, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        VLP_ASSERT(shape[i] > 0, "parameter %s: dimension %d has size %d", name, i, shape[i]);
        t->shape[i] = shape[i];
    }
    t->n = vlp_shape_numel(ndim, shape);
    t->requires_grad = true;

    vlp_param *e = &p->table[p->count++];
    strcpy(e->name, name);
    e->offset = p->n;
    e->t = t;
    e->decay = ndim >= 2; /* OpenCLIP: no decay on gains, biases, scalars */
    p->n += (size_t)t->n;
    return t;
}

int vlp_params_alloc(vlp_params *p) {
    VLP_ASSERT(!p->data, "vlp_params_alloc called twice");
    size_t bytes = (p->n ? p->n : 1) * sizeof(float);
    p->data = vlp_calloc(1, bytes);
    p->grad = vlp_calloc(1, bytes);
    p->m = vlp_calloc(1, bytes);
    p->v = vlp_calloc(1, bytes);
    for (int i = 0; i < p->count; i++) {
        vlp_param *e = &p->table[i];
        e->t->data = p->data + e->offset;
        e->t->grad = p->grad + e->offset;
    }
    return VLP_OK;
}

void vlp_params_zero_grad(vlp_params *p) { memset(p->grad, 0, p->n * sizeof(float)); }

int vlp_params_set_trainable(vlp_params *p, const char *prefix, bool trainable) {
    int matched = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < p->count; i++) {
        if (strncmp(p->table[i].name, prefix, len) == 0) {
            p->table[i].t->requires_grad = trainable;
            matched++;
        }
    }
    return matched;
}
