/* Open-addressing hash tables for the tokenizer (see strtab.h), linear
 * probing at load <= 1/2. Not thread-safe; tables only grow. */
#include "data/strtab.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* FNV-1a, then a final mix so that the low bits used as the slot index depend
 * on every byte (plain FNV's low bits are weak for short keys). */
uint64_t vlp_strtab_hash(const void *s, size_t n) {
    const unsigned char *p = s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_u64(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void vlp_strtab_free(vlp_strtab *t) {
    free(t->buf);
    free(t->off);
    free(t->n);
    free(t->hash);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

int vlp_strtab_find(const vlp_strtab *t, const void *s, size_t n) {
    if (!t->slots) return -1;
    uint64_t h = vlp_strtab_hash(s, n);
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        int id = t->slots[i];
        if (id < 0) return -1;
        if (t->hash[id] == h && t->n[id] == n && !memcmp(t->buf + t->off[id], s, n)) return id;
    }
}

static void strtab_grow_slots(vlp_strtab *t) {
    size_t size = t->slots ? 2 * (t->mask + 1) : 64;
    int *slots = vlp_malloc(size * sizeof *slots);
    memset(slots, 0xff, size * sizeof *slots); /* all -1 */
    for (int id = 0; id < t->count; id++) {
        size_t i = t->hash[id] & (size - 1);
        while (slots[i] >= 0) i = (i + 1) & (size - 1);
        slots[i] = id;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
}

int vlp_strtab_intern(vlp_strtab *t, const void *s, size_t n, int *id) {
    int found = vlp_strtab_find(t, s, n);
    if (found >= 0) {
        *id = found;
        return VLP_OK;
    }
    if (!t->slots || 2 * (size_t)(t->count + 1) > t->mask + 1) strtab_grow_slots(t);
    if (t->count == t->cap_ids) {
        int cap = t->cap_ids ? 2 * t->cap_ids : 256;
        t->off = vlp_realloc(t->off, (size_t)cap * sizeof *t->off);
        t->n = vlp_realloc(t->n, (size_t)cap * sizeof *t->n);
        t->hash = vlp_realloc(t->hash, (size_t)cap * sizeof *t->hash);
        t->cap_ids = cap;
    }
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 4096;
        while (cap < t->len + n) cap *= 2;
        t->buf = vlp_realloc(t->buf, cap);
        t->cap = cap;
    }
    if (n) memcpy(t->buf + t->len, s, n);
    int new_id = t->count++;
    t->off[new_id] = t->len;
    t->n[new_id] = n;
    t->hash[new_id] = vlp_strtab_hash(s, n);
    t->len += n;
    size_t i = t->hash[new_id] & t->mask;
    while (t->slots[i] >= 0) i = (i + 1) & t->mask;
    t->slots[i] = new_id;
    *id = new_id;
    return VLP_OK;
}

static uint64_t pair_key(int a, int b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

void vlp_pairmap_free(vlp_pairmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int vlp_pairmap_get(const vlp_pairmap *m, int a, int b) {
    if (!m->keys) return -1;
    uint64_t key = pair_key(a, b);
    for (size_t i = hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == key) return m->vals[i];
        if (m->keys[i] == UINT64_MAX) return -1;
    }
}

static void pairmap_grow(vlp_pairmap *m) {
    size_t size = m->keys ? 2 * (m->mask + 1) : 64;
    uint64_t *keys = vlp_malloc(size * sizeof *keys);
    int *vals = vlp_malloc(size * sizeof *vals);
    memset(keys, 0xff, size * sizeof *keys); /* all UINT64_MAX: a, b < 2^31 never pack to it */
    for (size_t j = 0; m->keys && j <= m->mask; j++) {
        if (m->keys[j] == UINT64_MAX) continue;
        size_t i = hash_u64(m->keys[j]) & (size - 1);
        while (keys[i] != UINT64_MAX) i = (i + 1) & (size - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->mask = size - 1;
}

void vlp_pairmap_put(vlp_pairmap *m, int a, int b, int val) {
    if (!m->keys || 2 * (m->count + 1) > m->mask + 1) pairmap_grow(m);
    uint64_t key = pair_key(a, b);
    size_t i = hash_u64(key) & m->mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & m->mask;
    if (m->keys[i] == UINT64_MAX) {
        m->keys[i] = key;
        m->count++;
    }
    m->vals[i] = val;
}
