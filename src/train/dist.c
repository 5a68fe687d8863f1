/* MPI data parallelism (see dist.h). Every collective here is called in the
 * same order on every rank: the tapes of all ranks have the same shape. */
#include "train/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

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
    uint64_t mine = fnv1a(data, n), *all = vlp_malloc(sizeof(uint64_t) * (size_t)d->world);
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

/* ---- the gradient all-reduce, overlapped with backward ----------------------- */

/* About this many buckets: all but the last (the first layers', final only
 * when backward ends) are sent while backward still computes, and each
 * collective's latency is paid only a few times (docs/scaling.md). */
#define GRAD_BUCKETS 8

typedef struct grad_sync {
    float *grad;
    int n, sent;
    /* bucket k, in sending order: floats [start, start + count) of grad,
     * final once node ready has had its turn */
    int *ready;
    size_t *start, *count;
    MPI_Request *req;
} grad_sync;

/* The index in p of the parameter x is (or is a view of), or -1. */
static int param_of(const vlp_params *p, const vlp_tensor *x) {
    if (x->base) x = x->base;
    if (!x->data || x->data < p->data || x->data >= p->data + p->n) return -1;
    size_t at = (size_t)(x->data - p->data);
    int lo = 0, hi = p->count - 1; /* offsets grow with the index */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->table[mid].offset <= at) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static void send_final(void *ctx, int node) {
    grad_sync *s = ctx;
    while (s->sent < s->n && s->ready[s->sent] >= node) {
        int k = s->sent++;
        MPI_Iallreduce(MPI_IN_PLACE, s->grad + s->start[k], (int)s->count[k], MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD, &s->req[k]);
    }
    /* Open MPI moves a non-blocking collective on only inside MPI calls */
    int done;
    if (s->sent) MPI_Testall(s->sent, s->req, &done, MPI_STATUSES_IGNORE);
}

/* Buckets of adjacent parameters, in the order their gradients become final
 * in backward: a parameter's is final once the first node (in recording
 * order) that reads it has had its turn. Memory from the tape's arena. */
static void plan_buckets(vlp_tape *t, const vlp_params *p, grad_sync *s) {
    int *first = vlp_tape_alloc(t, sizeof(int) * (size_t)p->count);
    for (int j = 0; j < p->count; j++) first[j] = t->n_nodes; /* unread: final now */
    for (int i = t->n_nodes - 1; i >= 0; i--)
        for (int k = 0; k < t->nodes[i].n_in; k++) {
            int j = t->nodes[i].in[k] ? param_of(p, t->nodes[i].in[k]) : -1;
            if (j >= 0) first[j] = i;
        }
    size_t target = (p->n + GRAD_BUCKETS - 1) / GRAD_BUCKETS;
    s->ready = vlp_tape_alloc(t, sizeof(int) * (size_t)p->count);
    s->start = vlp_tape_alloc(t, sizeof(size_t) * (size_t)p->count);
    s->count = vlp_tape_alloc(t, sizeof(size_t) * (size_t)p->count);
    s->req = vlp_tape_alloc(t, sizeof(MPI_Request) * (size_t)p->count);
    s->n = s->sent = 0;
    for (int j = 0; j < p->count;) { /* a bucket: params [j, end), floats [start, stop) */
        int end = j, ready = t->n_nodes;
        size_t start = p->table[j].offset, stop = start;
        while (end < p->count && stop - start < target) {
            ready = first[end] < ready ? first[end] : ready;
            end++;
            stop = end < p->count ? p->table[end].offset : p->n;
        }
        VLP_ASSERT(stop - start <= INT_MAX, "a gradient bucket of %zu floats", stop - start);
        /* sending order: the latest ready first; ties keep their order */
        int k = s->n++;
        for (; k > 0 && s->ready[k - 1] < ready; k--)
            s->ready[k] = s->ready[k - 1], s->start[k] = s->start[k - 1], s->count[k] = s->count[k - 1];
        s->ready[k] = ready, s->start[k] = start, s->count[k] = stop - start;
        j = end;
    }
    s->grad = p->grad;
}

static double waited_s; /* vlp_dist_backward_wait_s */

double vlp_dist_backward_wait_s(void) { return waited_s; }

void vlp_dist_backward_mean(vlp_tape *t, const vlp_dist *d, vlp_params *p, vlp_tensor *loss) {
    waited_s = 0.0;
    if (d->world == 1 || d->no_overlap) {
        if (loss->requires_grad) vlp_tape_backward(t, loss, NULL);
        double t0 = d->mpi ? MPI_Wtime() : 0.0;
        vlp_dist_allreduce_sum(d, p->grad, p->n);
        if (d->mpi) waited_s = MPI_Wtime() - t0;
    } else {
        grad_sync s;
        plan_buckets(t, p, &s);
        if (loss->requires_grad) vlp_tape_backward_each(t, loss, NULL, send_final, &s);
        else send_final(&s, 0); /* nothing to backpropagate: every gradient is final */
        VLP_ASSERT(s.sent == s.n, "%d of %d gradient buckets sent", s.sent, s.n);
        double t0 = MPI_Wtime();
        MPI_Waitall(s.n, s.req, MPI_STATUSES_IGNORE);
        waited_s = MPI_Wtime() - t0;
    }
    if (d->world == 1) return;
    float inv = 1.0f / (float)d->world;
    for (size_t i = 0; i < p->n; i++) p->grad[i] *= inv;
}
