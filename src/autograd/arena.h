/* Per-step bump allocator for tensors, tape records and scratch buffers.
 * It grows while a step runs and, on reset, folds its blocks into one block as
 * large as the high-water mark, so a warm step makes no heap allocation.
 * It is not a general allocator: nothing is freed before the reset. */
#ifndef VLP_ARENA_H
#define VLP_ARENA_H

#include <stddef.h>

#define VLP_ARENA_ALIGN 64 /* cache line; also suits AVX-512 loads */

typedef struct vlp_arena_block vlp_arena_block;

typedef struct vlp_arena {
    vlp_arena_block *blocks; /* newest first; allocations come from it */
    size_t used;             /* bytes handed out since the last reset */
    size_t high_water;       /* largest `used` ever seen */
    size_t capacity;         /* bytes held in all blocks */
} vlp_arena;

void vlp_arena_init(vlp_arena *a);
void vlp_arena_free(vlp_arena *a);

/* Aligned, uninitialised memory valid until the next reset. Aborts when the
 * system is out of memory: an op has no way to report it. */
void *vlp_arena_alloc(vlp_arena *a, size_t bytes);
void *vlp_arena_calloc(vlp_arena *a, size_t bytes);

/* Forgets every allocation; keeps (and consolidates) the memory. */
void vlp_arena_reset(vlp_arena *a);

#endif
