/* Tape recording, lazy gradient buffers and the reverse sweep. */
#include "autograd/tape.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

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
    tape->grad_bytes = 0;
}

void vlp_tape_no_grad_begin(vlp_tape *tape) { tape->no_grad++; }

void vlp_tape_no_grad_end(vlp_tape *tape) {
    VLP_ASSERT(tape->no_grad > 0, "no-grad end without a begin");
    tape->no_grad--;
}

void *vlp_tape_alloc(vlp_tape *tape, size_t bytes) {
    void *p = vlp_arena_alloc(&tape->arena, bytes);
    if (tape->in_backward && tape->n_scratch < VLP_TAPE_SCRATCH_MAX) {
        tape->scratch[tape->n_scratch] = p;
        tape->scratch_bytes[tape->n_scratch++] = bytes;
    }
    return p;
}

void vlp_tape_release(vlp_tape *tape, void *p, size_t bytes) {
    for (int i = 0; i < tape->n_scratch && tape->in_backward; i++)
        if (tape->scratch[i] == p) { /* released now, not again when backward returns */
            tape->scratch[i] = tape->scratch[--tape->n_scratch];
            tape->scratch_bytes[i] = tape->scratch_bytes[tape->n_scratch];
            break;
        }
    vlp_arena_release(&tape->arena, p, bytes);
}

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
        tape->nodes = vlp_realloc(tape->nodes, (size_t)cap * sizeof *tape->nodes);
        tape->cap_nodes = cap;
    }
    VLP_ASSERT(!out->base && !out->grad, "op %s: the output must be a new tensor", op);
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
    if (t->base) return vlp_tape_grad(tape, t->base);
    if (!t->grad) {
        size_t bytes = (size_t)t->n * sizeof(float);
        t->grad = vlp_arena_calloc(&tape->arena, bytes);
        tape->grad_bytes += bytes;
        if (tape->grad_bytes > tape->grad_peak) tape->grad_peak = tape->grad_bytes;
    }
    return t->grad;
}

void vlp_tape_keep_grad(vlp_tensor *t) { (t->base ? t->base : t)->keep_grad = true; }

/* The node among the first `count` that made t, or NULL. */
static vlp_node *producer(vlp_tape *tape, const vlp_tensor *t, int count) {
    for (int i = count - 1; i >= 0; i--)
        if (tape->nodes[i].out == t) return &tape->nodes[i];
    return NULL;
}

void vlp_tape_drop(vlp_tape *tape, vlp_tensor *t) {
    VLP_ASSERT(!t->base && t->data, "drop of a view or of a dropped tensor");
    vlp_node *p = producer(tape, t, tape->n_nodes);
    if (!p || !p->recompute) return;
    vlp_arena_release(&tape->arena, t->data, (size_t)t->n * sizeof(float));
    t->data = NULL;
}

/* Runs node `at`'s backward with its dropped inputs refilled, then gives
 * them, its scratch and its output's gradient, now dead, to the arena's
 * free list (rules in tape.h). */
static void node_backward(vlp_tape *tape, int at) {
    vlp_node *node = &tape->nodes[at];
    vlp_tensor *refilled[VLP_NODE_MAX_INPUTS];
    int n_refilled = 0;
    for (int i = 0; i < node->n_in; i++) {
        vlp_tensor *x = node->in[i];
        if (!x || x->data) continue;
        vlp_node *p = producer(tape, x, at);
        VLP_ASSERT(p && p->recompute, "op %s: input %d was dropped and cannot be refilled", node->op, i);
        for (int j = 0; j < p->n_in; j++)
            VLP_ASSERT(!p->in[j] || p->in[j]->data, "op %s: refilling needs a dropped input", p->op);
        x->data = vlp_arena_alloc(&tape->arena, (size_t)x->n * sizeof(float));
        p->recompute(tape, p);
        refilled[n_refilled++] = x;
    }
    tape->in_backward = true;
    tape->n_scratch = 0;
    node->backward(tape, node);
    tape->in_backward = false;
    for (int i = 0; i < tape->n_scratch; i++)
        vlp_arena_release(&tape->arena, tape->scratch[i], tape->scratch_bytes[i]);
    for (int i = 0; i < n_refilled; i++) {
        vlp_arena_release(&tape->arena, refilled[i]->data, (size_t)refilled[i]->n * sizeof(float));
        refilled[i]->data = NULL;
    }
    vlp_tensor *out = node->out;
    if (!out->keep_grad) {
        size_t bytes = (size_t)out->n * sizeof(float);
        vlp_arena_release(&tape->arena, out->grad, bytes);
        tape->grad_bytes -= bytes;
        out->grad = NULL;
    }
}

void vlp_tape_backward(vlp_tape *tape, vlp_tensor *out, const float *seed) {
    vlp_tape_backward_each(tape, out, seed, NULL, NULL);
}

void vlp_tape_backward_each(vlp_tape *tape, vlp_tensor *out, const float *seed, vlp_node_done_fn after,
                            void *ctx) {
    VLP_ASSERT(out->requires_grad, "backward from a tensor that does not require a gradient");
    tape->forward_bytes = tape->arena.used - tape->arena.released;
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
        if (node->out->grad) node_backward(tape, i);
        if (after) after(ctx, i);
    }
}
