/* The tape: a per-step record of the ops that need a gradient, and the arena
 * their tensors come from. Recording order is topological, so backward is a
 * reverse loop. Ops live in ops.h; this file knows nothing about any op. */
#ifndef VLP_TAPE_H
#define VLP_TAPE_H

#include <stddef.h>
#include <stdint.h>

#include "autograd/arena.h"
#include "autograd/tensor.h"

typedef struct vlp_tape vlp_tape;
typedef struct vlp_node vlp_node;

/* Reads node->out->grad and accumulates (+=) into each input that requires
 * a gradient, through vlp_tape_grad(). */
typedef void (*vlp_backward_fn)(vlp_tape *tape, vlp_node *node);

#define VLP_NODE_MAX_INPUTS 4

struct vlp_node {
    vlp_backward_fn backward;
    const char *op; /* name, for debugging */
    vlp_tensor *out;
    vlp_tensor *in[VLP_NODE_MAX_INPUTS];
    int n_in;
    /* Whatever the op saved for backward (arena memory) and its arguments. */
    void *saved[3];
    long iarg[6];
    float farg[2];
};

struct vlp_tape {
    vlp_arena arena;
    vlp_node *nodes; /* kept across resets: no allocation once warm */
    int n_nodes, cap_nodes;
    int no_grad; /* nesting depth of no-grad regions */
};

void vlp_tape_init(vlp_tape *tape);
void vlp_tape_free(vlp_tape *tape);

/* Ends a step: forgets every node and arena tensor, keeps the memory. */
void vlp_tape_reset(vlp_tape *tape);

/* No-grad regions (evaluation, hard-negative sampling): ops record nothing
 * and their outputs do not require a gradient. They nest. */
void vlp_tape_no_grad_begin(vlp_tape *tape);
void vlp_tape_no_grad_end(vlp_tape *tape);

/* A new arena tensor that does not require a gradient. Shape sizes > 0. */
vlp_tensor *vlp_tape_tensor(vlp_tape *tape, int ndim, const int *shape);
vlp_tensor *vlp_tape_zeros(vlp_tape *tape, int ndim, const int *shape);
vlp_tensor *vlp_tape_tensor_like(vlp_tape *tape, const vlp_tensor *t);
/* A tensor over memory the caller owns (a loader's batch, a feature
 * cache), valid until the next reset; it does not require a gradient. */
vlp_tensor *vlp_tape_wrap(vlp_tape *tape, float *data, int ndim, const int *shape);
/* Arena scratch memory for ops (saved buffers, index copies). */
void *vlp_tape_alloc(vlp_tape *tape, size_t bytes);

/* Records an op with n inputs (vlp_tensor *) when any input requires a
 * gradient and the tape is not in a no-grad region; then marks `out` as
 * requiring a gradient and returns the node so the op can save what its
 * backward needs. Returns NULL, recording nothing, otherwise. */
vlp_node *vlp_tape_record(vlp_tape *tape, vlp_backward_fn backward, const char *op,
                          vlp_tensor *out, int n, ...);

/* t->grad, allocated and zeroed in the arena on first use. */
float *vlp_tape_grad(vlp_tape *tape, vlp_tensor *t);

/* Backpropagates from `out`. seed is d(loss)/d(out) with out's shape; NULL
 * means 1, which requires out to be a scalar (one element). */
void vlp_tape_backward(vlp_tape *tape, vlp_tensor *out, const float *seed);

#endif
