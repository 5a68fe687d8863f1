/* A warm training step makes no heap allocation. This binary replaces the
 * allocator (malloc, calloc, realloc, aligned allocation) with counting
 * wrappers over glibc's, so it counts every allocation in the process,
 * OpenBLAS's included. Not built with the sanitizers, which own malloc.
 * OpenBLAS runs on one thread here: its threaded sgemm driver (0.3.21)
 * mallocs a job table on every call, which no caller can avoid; one BLAS
 * thread per rank is also how MPI training runs. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "testutil.h"
#include "apps/demo.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static volatile long allocations;

void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { allocations++; return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { allocations++; return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { allocations++; return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    allocations++;
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12 /* ENOMEM */;
}

START_TEST(test_warm_step_allocates_nothing) {
    openblas_set_num_threads(1);
    vlp_demo d;
    ck_assert_int_eq(vlp_demo_init(&d, 3, 40, 2026), VLP_OK);
    long before = allocations;
    vlp_demo_step(&d, 1e-3f);
    long first = allocations - before;
    vlp_demo_step(&d, 1e-3f); /* the first reset consolidates the arena */
    before = allocations;
    for (int i = 0; i < 20; i++) vlp_demo_step(&d, 1e-3f);
    long warm = allocations - before;
    printf("first step: %ld heap allocations; 20 warm steps: %ld; arena high-water %zu bytes "
           "(%d tape nodes)\n", first, warm, d.tape.arena.high_water, d.tape.n_nodes);
    ck_assert_int_gt(first, 0); /* the counter does count */
    ck_assert_int_eq(warm, 0);
    vlp_demo_free(&d);
}
END_TEST

VLP_SUITE(noalloc_suite, "noalloc", test_warm_step_allocates_nothing)

VLP_TEST_MAIN(noalloc_suite)
