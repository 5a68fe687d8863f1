/* Interned byte strings and a map from pairs of ints to ints: the two lookups
 * the BPE tokenizer and its trainer are built on. Internal to the tokenizer;
 * not a general container library (no deletion, no iteration order promises). */
#ifndef VLP_STRTAB_H
#define VLP_STRTAB_H

#include <stddef.h>
#include <stdint.h>

/* Distinct byte strings, numbered 0, 1, ... in order of first insertion. */
typedef struct {
    char *buf;      /* every string back to back */
    size_t len, cap;
    size_t *off;    /* (count) start of string id in buf */
    size_t *n;      /* (count) its length */
    uint64_t *hash; /* (count) its hash, kept so growing never rehashes bytes */
    int count, cap_ids;
    int *slots;     /* open addressing over ids, -1 empty; size mask + 1 */
    size_t mask;
} vlp_strtab;

void vlp_strtab_free(vlp_strtab *t);

/* The hash both tables use, for callers keeping tables of their own. */
uint64_t vlp_strtab_hash(const void *s, size_t n);

/* Id of the string s[0..n), added if new. Returns 0 (a failed allocation
 * aborts, base/mem.h). s may not point into t (adding can move t's buffer). */
int vlp_strtab_intern(vlp_strtab *t, const void *s, size_t n, int *id);

/* Id of s[0..n), or -1. */
int vlp_strtab_find(const vlp_strtab *t, const void *s, size_t n);

/* The bytes of string id (not NUL-terminated); valid until the next intern. */
static inline const char *vlp_strtab_str(const vlp_strtab *t, int id, size_t *n) {
    *n = t->n[id];
    return t->buf + t->off[id];
}

/* Map (a, b) -> value for a, b >= 0. */
typedef struct {
    uint64_t *keys; /* (mask + 1) packed (a, b), UINT64_MAX empty */
    int *vals;
    size_t mask, count;
} vlp_pairmap;

void vlp_pairmap_free(vlp_pairmap *m);

/* Sets (a, b) -> val, replacing an earlier value. */
void vlp_pairmap_put(vlp_pairmap *m, int a, int b, int val);

/* The value of (a, b), or -1. */
int vlp_pairmap_get(const vlp_pairmap *m, int a, int b);

#endif
