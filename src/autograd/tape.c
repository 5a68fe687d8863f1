/* Tape recording, lazy gradient buffers and the reverse sweep. */
#include "autograd/tape.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/error.h"

void vlp_tape_init(vlp_tape *tape) {
    memset(tape, 0, sizeof *tape);
    vlp_arena_init(&tape->arena);
}

void vlp_tape_free(vlp_tape *tape) {
    vlp_arena_free(&tape->arena);
    free(tape->nodes);
    memset(tape, 0, sizeof *tape);
}

void vlp_tape_reset(vlp_tape *tape) {
    VLP_ASSERT(tape->no_grad == 0, "tape reset inside a no-grad region");
    vlp_arena_reset(&tape->arena);
    tape->n_nodes = 0;
}

void vlp_tape_no_grad_begin(vlp_tape *tape) { tape->no_grad++; }

void vlp_tape_no_grad_end(vlp_tape *tape) {
    VLP_ASSERT(tape->no_grad > 0, "no-grad end without a begin");
    tape->no_grad--;
}

void *vlp_tape_alloc(vlp_tape *tape, size_t bytes) { return vlp_arena_alloc(&tape->arena, bytes); }

vlp_tensor *vlp_tape_tensor(vlp_tape *tape, int ndim, const int *shape) {
    VLP_ASSERT(ndim >= 1 && ndim <= VLP_MAX_DIMS, "tensor of %d dimensions", ndim);
    vlp_tensor *t = vlp_arena_calloc(&tape->arena, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        VLP_ASSERT(shape[i] > 0, "dimension %d has size %d", i, shape[i]);
        t->shape[i] = shape[i];
    }
    t->n = vlp_shape_numel(ndim, shape);
    t->data = vlp_arena_alloc(&tape->arena, (size_t)t->n * sizeof(float));
    return t;
}

vlp_tensor *vlp_tape_wrap(vlp_tape *tape, float *data, int ndim, const int *shape) {
    VLP_ASSERT(ndim >= 1 && ndim <= VLP_MAX_DIMS, "tensor of %d dimensions", ndim);
    vlp_tensor *t = vlp_arena_calloc(&tape->arena, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->n = vlp_shape_numel(ndim, shape);
    t->data = data;
    return t;
}

vlp_tensor *vlp_tape_zeros(vlp_tape *tape, int ndim, const int *shape) {
    vlp_tensor *t = vlp_tape_tensor(tape, ndim, shape);
    memset(t->data, 0, (size_t)t->n * sizeof(float));
    return t;
}

vlp_tensor *vlp_tape_tensor_like(vlp_tape *tape, const vlp_tensor *t) {
    return vlp_tape_tensor(tape, t->ndim, t->shape);
}

vlp_node *vlp_tape_record(vlp_tape *tape, vlp_backward_fn backward, const char *op,
                          vlp_tensor *out, int n, ...) {
    VLP_ASSERT(n >= 1 && n <= VLP_NODE_MAX_INPUTS, "op %s has %d inputs", op, n);
    vlp_tensor *in[VLP_NODE_MAX_INPUTS];
    bool any = false;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        in[i] = va_arg(ap, vlp_tensor *);
        any |= in[i] && in[i]->requires_grad;
    }
    va_end(ap);
    if (!any || tape->no_grad > 0) return NULL;

    if (tape->n_nodes == tape->cap_nodes) {
        int cap = tape->cap_nodes ? 2 * tape->cap_nodes : 256;
        vlp_node *nodes = realloc(tape->nodes, (size_t)cap * sizeof *nodes);
        VLP_ASSERT(nodes, "out of memory growing the tape to %d nodes", cap);
        tape->nodes = nodes;
        tape->cap_nodes = cap;
    }
    vlp_node *node = &tape->nodes[tape->n_nodes++];
    memset(node, 0, sizeof *node);
    node->backward = backward;
    node->op = op;
    node->out = out;
    node->n_in = n;
    memcpy(node->in, in, (size_t)n * sizeof in[0]);
    out->requires_grad = true;
    return node;
}

float *vlp_tape_grad(vlp_tape *tape, vlp_tensor *t) {
    if (!t->grad) t->grad = vlp_arena_calloc(&tape->arena, (size_t)t->n * sizeof(float));
    return t->grad;
}

void vlp_tape_backward(vlp_tape *tape, vlp_tensor *out, const float *seed) {
    VLP_ASSERT(out->requires_grad, "backward from a tensor that does not require a gradient");
    float *g = vlp_tape_grad(tape, out);
    if (seed) {
        for (long i = 0; i < out->n; i++) g[i] += seed[i];
    } else {
        VLP_ASSERT(out->n == 1, "backward without a seed needs a scalar, got %ld elements", out->n);
        g[0] += 1.0f;
    }
    for (int i = tape->n_nodes - 1; i >= 0; i--) {
        vlp_node *node = &tape->nodes[i];
        /* No gradient reached this node's output: nothing to propagate. */
        if (node->out->grad) node->backward(tape, node);
    }
}
