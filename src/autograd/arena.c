/* Bump allocator with block consolidation at reset and an exact-size free
 * list (see arena.h). */
#include "autograd/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

/* Under AddressSanitizer a released allocation is poisoned until it is
 * handed out again, so an op that reads a gradient or scratch after the
 * tape released it fails the sanitizer build's tests. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct vlp_arena_block {
    vlp_arena_block *next;
    size_t size, used;
    char *data; /* VLP_ARENA_ALIGN-aligned */
};

/* Written over a released allocation (at least VLP_ARENA_ALIGN bytes). */
struct vlp_arena_hole {
    vlp_arena_hole *next;
    size_t size; /* rounded */
};

#define MIN_BLOCK ((size_t)1 << 20)

static size_t round_up(size_t n) {
    return (n + VLP_ARENA_ALIGN - 1) & ~(size_t)(VLP_ARENA_ALIGN - 1);
}

static vlp_arena_block *block_new(size_t size) {
    vlp_arena_block *b = vlp_malloc(sizeof *b);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    b->data = vlp_aligned_alloc(VLP_ARENA_ALIGN, size);
    return b;
}

static void blocks_free(vlp_arena_block *b) {
    while (b) {
        vlp_arena_block *next = b->next;
        UNPOISON(b->data, b->size);
        free(b->data);
        free(b);
        b = next;
    }
}

void vlp_arena_init(vlp_arena *a) { memset(a, 0, sizeof *a); }

void vlp_arena_free(vlp_arena *a) {
    blocks_free(a->blocks);
    memset(a, 0, sizeof *a);
}

void *vlp_arena_alloc(vlp_arena *a, size_t bytes) {
    size_t n = round_up(bytes ? bytes : 1);
    for (vlp_arena_hole **h = &a->holes; *h; h = &(*h)->next)
        if ((*h)->size == n) {
            void *p = *h;
            *h = (*h)->next;
            a->released -= n;
            UNPOISON(p, n);
            return p;
        }
    vlp_arena_block *b = a->blocks;
    if (!b || b->size - b->used < n) {
        /* Doubling keeps the number of blocks in a cold step logarithmic. */
        size_t size = a->capacity > MIN_BLOCK ? a->capacity : MIN_BLOCK;
        if (size < n) size = round_up(n);
        b = block_new(size);
        b->next = a->blocks;
        a->blocks = b;
        a->capacity += size;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->used += n;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

void *vlp_arena_calloc(vlp_arena *a, size_t bytes) {
    void *p = vlp_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void vlp_arena_release(vlp_arena *a, void *p, size_t bytes) {
    vlp_arena_hole *h = p;
    h->size = round_up(bytes ? bytes : 1);
    h->next = a->holes;
    a->holes = h;
    a->released += h->size;
    POISON((char *)p + sizeof *h, h->size - sizeof *h); /* all but the list's link */
}

void vlp_arena_reset(vlp_arena *a) {
    if (a->blocks && a->blocks->next) {
        /* The step needed several blocks: replace them with one that holds
         * the whole high-water mark, so the same step fits next time. */
        blocks_free(a->blocks);
        a->blocks = block_new(round_up(a->high_water));
        a->capacity = a->blocks->size;
    }
    if (a->blocks) {
        a->blocks->used = 0;
        UNPOISON(a->blocks->data, a->blocks->size);
    }
    a->holes = NULL;
    a->used = a->released = 0;
}
