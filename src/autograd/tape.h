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

/* Memory during backward. Once a node's backward has run, its output's
 * gradient is dead (every op that read the output was recorded later and
 * has already run), so the tape releases it to the arena's free list for
 * the next gradient of that size; so is the scratch the backward function
 * took with vlp_tape_alloc. This holds if every op keeps these rules:
 *  - the output is a new tensor (vlp_tape_tensor...), never an input or a
 *    view, and the op never sets out->grad itself;
 *  - nothing keeps a pointer to a gradient (out->grad, vlp_tape_grad()) past
 *    the backward function that got it, nor to memory that the backward
 *    function took with vlp_tape_alloc (scratch: released when it returns);
 *  - tensors sharing another's data and gradient are views (base set, as
 *    vlp_op_reshape makes them), not copies of its grad pointer.
 * A caller that reads an op's output gradient after backward marks it
 * first with vlp_tape_keep_grad. Leaves (parameters, tensors no op made)
 * keep their gradients. Activations stay to the reset, but for those a
 * model drops (vlp_tape_drop): backward refills them just for the ops
 * that read them. */

#define VLP_NODE_MAX_INPUTS 6

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
    /* Refills out->data, the same bits, from the inputs and saved: set by an
     * op that is cheap to run again and whose backward reads neither
     * out->data nor anything recompute writes differently; lets a model
     * drop the output (vlp_tape_drop). NULL: it cannot be dropped. */
    vlp_backward_fn recompute;
};

#define VLP_TAPE_SCRATCH_MAX 8

struct vlp_tape {
    vlp_arena arena;
    vlp_node *nodes; /* kept across resets: no allocation once warm */
    int n_nodes, cap_nodes;
    int no_grad; /* nesting depth of no-grad regions */
    /* The scratch the running backward function took (beyond the first
     * VLP_TAPE_SCRATCH_MAX, kept until the reset); in_backward: one runs. */
    bool in_backward;
    int n_scratch;
    void *scratch[VLP_TAPE_SCRATCH_MAX];
    size_t scratch_bytes[VLP_TAPE_SCRATCH_MAX];
    /* Arena bytes in use when the last backward began (activations, what
     * ops saved), and activation gradients in use now and at most (since
     * init). */
    size_t forward_bytes, grad_bytes, grad_peak;
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
/* Arena memory for ops (saved buffers, index copies); inside a backward
 * function, scratch that is released when it returns. */
void *vlp_tape_alloc(vlp_tape *tape, size_t bytes);
/* Gives back memory from vlp_tape_alloc(bytes) that nothing reads again (an
 * op's forward scratch), for the next allocation of that size. */
void vlp_tape_release(vlp_tape *tape, void *p, size_t bytes);

/* Records an op with n inputs (vlp_tensor *) when any input requires a
 * gradient and the tape is not in a no-grad region; then marks `out` as
 * requiring a gradient and returns the node so the op can save what its
 * backward needs. Returns NULL, recording nothing, otherwise. */
vlp_node *vlp_tape_record(vlp_tape *tape, vlp_backward_fn backward, const char *op,
                          vlp_tensor *out, int n, ...);

/* t->grad, allocated and zeroed in the arena on first use; a view's base's. */
float *vlp_tape_grad(vlp_tape *tape, vlp_tensor *t);

/* Keeps t's gradient (a view's: its base's) after backward, for a caller
 * that reads it; until the reset. */
void vlp_tape_keep_grad(vlp_tensor *t);

/* t, an op's output that the forward will not read again, gives its data
 * back to the arena (t->data becomes NULL): the backward of each op that
 * took t refills it, by the recompute function of the op that made it,
 * for as long as it runs. Keeps t when that op has no recompute function
 * or nothing was recorded (no-grad). t must not have views (they would
 * keep the old data pointer), nor the op that made t dropped inputs. */
void vlp_tape_drop(vlp_tape *tape, vlp_tensor *t);

/* Backpropagates from `out`. seed is d(loss)/d(out) with out's shape; NULL
 * means 1, which requires out to be a scalar (one element). */
void vlp_tape_backward(vlp_tape *tape, vlp_tensor *out, const float *seed);

/* vlp_tape_backward that calls after(ctx, i) once node i's turn is over
 * (i from n_nodes - 1 down to 0, run or skipped): from then on no node
 * left to run writes the gradient of an input of a node >= i, so a caller
 * can send the gradients that are final while backward goes on. */
typedef void (*vlp_node_done_fn)(void *ctx, int node);
void vlp_tape_backward_each(vlp_tape *tape, vlp_tensor *out, const float *seed, vlp_node_done_fn after,
                            void *ctx);

#endif
