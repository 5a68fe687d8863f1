/* Per-step bump allocator for tensors, tape records and scratch buffers.
 * It grows while a step runs and, on reset, folds its blocks into one block as
 * large as the high-water mark, so a warm step makes no heap allocation.
 * A released allocation goes to a free list that later allocations of the
 * same rounded size take first (a transformer's backward needs the same few
 * sizes over and over); it is not a general allocator: nothing is split or
 * merged, and everything is forgotten at the reset. */
#ifndef VLP_ARENA_H
#define VLP_ARENA_H

#include <stddef.h>

#define VLP_ARENA_ALIGN 64 /* cache line; also suits AVX-512 loads */

typedef struct vlp_arena_block vlp_arena_block;
typedef struct vlp_arena_hole vlp_arena_hole;

typedef struct vlp_arena {
    vlp_arena_block *blocks; /* newest first; allocations come from it */
    vlp_arena_hole *holes;   /* released allocations, newest first */
    size_t used;             /* bytes taken from the blocks since the last reset */
    size_t high_water;       /* largest `used` ever seen: the memory a step needs */
    size_t capacity;         /* bytes held in all blocks */
    size_t released;         /* bytes of `used` now in the free list */
} vlp_arena;

void vlp_arena_init(vlp_arena *a);
void vlp_arena_free(vlp_arena *a);

/* Aligned, uninitialised memory valid until the next reset. Aborts when the
 * system is out of memory: an op has no way to report it. */
void *vlp_arena_alloc(vlp_arena *a, size_t bytes);
void *vlp_arena_calloc(vlp_arena *a, size_t bytes);

/* Gives back p, which vlp_arena_alloc returned for `bytes` since the last
 * reset, for the next allocation of the same rounded size. */
void vlp_arena_release(vlp_arena *a, void *p, size_t bytes);

/* Forgets every allocation; keeps (and consolidates) the memory. */
void vlp_arena_reset(vlp_arena *a);

#endif
