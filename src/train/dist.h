/* Data parallelism over MPI, or one process without it: rank and world,
 * checks that all ranks agree, the mean all-reduce of the flat gradient
 * buffer (overlapped with backward), and the embedding all-gather whose
 * backward reduce-scatters the gradient back to the rank that owns each row
 * (GUIDE.md section 3). */
#ifndef VLP_DIST_H
#define VLP_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/params.h"
#include "autograd/tape.h"

typedef struct vlp_dist {
    int rank, world;
    bool mpi; /* launched by mpirun: MPI is initialised */
    /* vlp_dist_backward_mean all-reduces only after backward, in one piece
     * (vlpbench --no-overlap, to measure what the overlap saves). */
    bool no_overlap;
} vlp_dist;

/* MPI_Init when an MPI launcher started this process, else world of one. */
int vlp_dist_init(vlp_dist *d, int *argc, char ***argv);
void vlp_dist_finalize(vlp_dist *d);
/* Ends every rank of the job now (after a fatal error on one). */
_Noreturn void vlp_dist_abort(const vlp_dist *d, int status);

/* All ranks hold the same bytes? Otherwise an error naming the first rank
 * whose `what` differs from rank 0's. Collective. */
int vlp_dist_check_same(const vlp_dist *d, const void *data, size_t n, const char *what);

/* buf = sum over ranks of buf, in place; chunked under INT_MAX. */
void vlp_dist_allreduce_sum(const vlp_dist *d, float *buf, size_t n);
double vlp_dist_mean(const vlp_dist *d, double x);
/* The sum over ranks of a count, exactly. */
long vlp_dist_sum(const vlp_dist *d, long x);
/* True on every rank when flag is true on any. */
bool vlp_dist_any(const vlp_dist *d, bool flag);
/* all (world * n) = every rank's n ints, in rank order. */
void vlp_dist_allgather_ints(const vlp_dist *d, const int *local, int n, int *all);

/* Backpropagates from the scalar loss, then leaves in p->grad the mean of
 * every rank's gradient, as vlp_tape_backward, vlp_dist_allreduce_sum and
 * a division by the world would, but the all-reduce runs while backward
 * does: in buckets of parameters adjacent in p, each sent once the last
 * node that reads one of them has run (as PyTorch's DDP). The gradients
 * already in p->grad (earlier micro-batches) are included. */
void vlp_dist_backward_mean(vlp_tape *t, const vlp_dist *d, vlp_params *p, vlp_tensor *loss);
/* Seconds the last vlp_dist_backward_mean waited, after backward, for its
 * all-reduce: the communication compute did not hide (vlpbench). */
double vlp_dist_backward_wait_s(void);

/* x (B, D), the same B on every rank -> (world * B, D), rank r's rows at
 * [r B, (r + 1) B). With grad, backward sums every rank's gradient of the
 * gathered rows and hands each rank its own (MPI_Reduce_scatter_block);
 * without it, x gets only the gradient of its own rows, which is the 1/W
 * mistake the exactness test must catch. */
vlp_tensor *vlp_dist_all_gather(vlp_tape *t, const vlp_dist *d, vlp_tensor *x, bool grad);

#endif
