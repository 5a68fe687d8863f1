/* MPI data parallelism (see dist.h). Every collective here is called in the
 * same order on every rank: the tapes of all ranks have the same shape. */
#include "train/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/error.h"

int vlp_dist_init(vlp_dist *d, int *argc, char ***argv) {
    *d = (vlp_dist){.rank = 0, .world = 1, .mpi = false};
    /* Open MPI's launcher and PMIx set these; without them we are alone. */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return VLP_OK;
    if (MPI_Init(argc, argv) != MPI_SUCCESS) return vlp_error_set(VLP_EMPI, "MPI_Init failed");
    d->mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    return VLP_OK;
}

void vlp_dist_finalize(vlp_dist *d) {
    if (d->mpi) MPI_Finalize();
    d->mpi = false;
}

void vlp_dist_abort(const vlp_dist *d, int status) {
    fflush(stdout);
    fflush(stderr);
    if (d->mpi) MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

static uint64_t fnv1a(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int vlp_dist_check_same(const vlp_dist *d, const void *data, size_t n, const char *what) {
    if (!d->mpi) return VLP_OK;
    uint64_t mine = fnv1a(data, n), *all = malloc(sizeof(uint64_t) * (size_t)d->world);
    VLP_ASSERT(all, "out of memory");
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    int differs = -1;
    for (int r = 1; r < d->world && differs < 0; r++)
        if (all[r] != all[0]) differs = r;
    free(all);
    if (differs >= 0)
        return vlp_error_set(VLP_EMPI, "rank %d's %s differs from rank 0's: every rank must run "
                             "the same build with the same configuration", differs, what);
    return VLP_OK;
}

void vlp_dist_allreduce_sum(const vlp_dist *d, float *buf, size_t n) {
    if (d->world == 1) return;
    for (size_t at = 0; at < n; at += INT_MAX / 2) {
        int count = (int)(n - at < INT_MAX / 2 ? n - at : INT_MAX / 2);
        MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

void vlp_dist_allreduce_mean(const vlp_dist *d, float *buf, size_t n) {
    if (d->world == 1) return;
    vlp_dist_allreduce_sum(d, buf, n);
    float inv = 1.0f / (float)d->world;
    for (size_t i = 0; i < n; i++) buf[i] *= inv;
}

double vlp_dist_mean(const vlp_dist *d, double x) {
    if (d->world == 1) return x;
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return x / d->world;
}

long vlp_dist_sum(const vlp_dist *d, long x) {
    if (d->world == 1) return x;
    MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return x;
}

bool vlp_dist_any(const vlp_dist *d, bool flag) {
    if (d->world == 1) return flag;
    int v = flag;
    MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return v != 0;
}

void vlp_dist_allgather_ints(const vlp_dist *d, const int *local, int n, int *all) {
    if (d->world == 1) {
        memcpy(all, local, (size_t)n * sizeof *all);
        return;
    }
    MPI_Allgather(local, n, MPI_INT, all, n, MPI_INT, MPI_COMM_WORLD);
}

/* saved[0]: the vlp_dist; iarg[0]: whether the gradient is reduce-scattered. */
static void all_gather_backward(vlp_tape *t, vlp_node *nd) {
    const vlp_dist *d = nd->saved[0];
    vlp_tensor *x = nd->in[0];
    float *dx = vlp_tape_grad(t, x);
    const float *g = nd->out->grad;
    if (nd->iarg[0]) {
        float *mine = vlp_tape_alloc(t, (size_t)x->n * sizeof *mine);
        MPI_Reduce_scatter_block(g, mine, (int)x->n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (long i = 0; i < x->n; i++) dx[i] += mine[i];
    } else {
        g += (long)d->rank * x->n;
        for (long i = 0; i < x->n; i++) dx[i] += g[i];
    }
}

vlp_tensor *vlp_dist_all_gather(vlp_tape *t, const vlp_dist *d, vlp_tensor *x, bool grad) {
    if (d->world == 1) return x;
    VLP_ASSERT(x->ndim == 2 && x->n <= INT_MAX, "all_gather of a (%d, ...) tensor", x->shape[0]);
    vlp_tensor *out = vlp_tape_tensor(t, 2, (int[]){d->world * x->shape[0], x->shape[1]});
    MPI_Allgather(x->data, (int)x->n, MPI_FLOAT, out->data, (int)x->n, MPI_FLOAT, MPI_COMM_WORLD);
    vlp_node *nd = vlp_tape_record(t, all_gather_backward, "all_gather", out, 1, x);
    if (nd) {
        nd->saved[0] = (void *)d;
        nd->iarg[0] = grad;
    }
    return out;
}
