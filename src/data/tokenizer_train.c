/* Learning BPE merges from captions (vlp_tokenizer_train in tokenizer.h).
 * Not a trainer for other BPE variants: no dropout, no minimum frequency
 * but two, no special handling beyond CLIP's two specials. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/strtab.h"
#include "data/tokenizer_impl.h"

/* Counts are kept per distinct word, and a merge touches only the words that
 * hold its pair (each pair lists them), so training costs about the number of
 * symbols merged, not merges times corpus. The best pair comes from a max-heap
 * where a pair is pushed again whenever its count changes and entries whose
 * count is no longer current are skipped when popped. */

typedef struct {
    long count;
    int pair;
} heap_item;

typedef struct {
    vlp_strtab word_text; /* distinct words, as UTF-8 bytes */
    long *freq;           /* (word_text.count) occurrences of each */
    int cap_freq;

    vlp_strtab syms; /* symbol strings in merges-file form */
    int *sym;        /* symbols of every word back to back */
    size_t *start;   /* (n_words) where word w's symbols start */
    int *len;        /* (n_words) how many it has now */
    int n_words;

    vlp_pairmap pair_id; /* (symbol a, symbol b) -> pair */
    int *pa, *pb;        /* (n_pairs) the pair's symbols */
    long *count;         /* (n_pairs) occurrences, overlapping ones included, times word frequency */
    int **where;         /* (n_pairs) words that hold or held the pair (may repeat) */
    int *n_where, *cap_where;
    long *before; /* (n_pairs) count before the current merge, if stamp is current */
    int *stamp;
    int *touched; /* pairs whose count the current merge changed */
    int n_touched;
    int n_pairs, cap_pairs;

    heap_item *heap;
    size_t n_heap, cap_heap;
} trainer;

static void grow(void **p, size_t size, int *cap, int need) {
    if (need <= *cap) return;
    int c = *cap ? *cap : 8; /* most pairs are in a handful of words */
    while (c < need) c *= 2;
    *p = vlp_realloc(*p, (size_t)c * size);
    *cap = c;
}

static int count_word(const unsigned char *w, size_t n, void *ctx) {
    trainer *t = ctx;
    /* The specials are whole tokens of their own, never material for merges. */
    if ((n == strlen(VLP_BPE_SOT_TEXT) && !memcmp(w, VLP_BPE_SOT_TEXT, n)) ||
        (n == strlen(VLP_BPE_EOT_TEXT) && !memcmp(w, VLP_BPE_EOT_TEXT, n)))
        return VLP_OK;
    int id;
    vlp_strtab_intern(&t->word_text, w, n, &id);
    if (id >= t->cap_freq) {
        int old = t->cap_freq;
        grow((void **)&t->freq, sizeof *t->freq, &t->cap_freq, id + 1);
        memset(t->freq + old, 0, (size_t)(t->cap_freq - old) * sizeof *t->freq);
    }
    t->freq[id]++;
    return VLP_OK;
}

/* Pairs order: higher count first, then bytewise smaller first symbol, then
 * smaller second symbol (Python's tuple order on str agrees: UTF-8 keeps code
 * point order). */
static int str_cmp(const vlp_strtab *t, int a, int b) {
    size_t na, nb;
    const char *sa = vlp_strtab_str(t, a, &na), *sb = vlp_strtab_str(t, b, &nb);
    int c = memcmp(sa, sb, na < nb ? na : nb);
    return c ? c : (na > nb) - (na < nb);
}

static bool heap_before(const trainer *t, heap_item x, heap_item y) {
    if (x.count != y.count) return x.count > y.count;
    int c = str_cmp(&t->syms, t->pa[x.pair], t->pa[y.pair]);
    if (!c) c = str_cmp(&t->syms, t->pb[x.pair], t->pb[y.pair]);
    return c < 0;
}

static void heap_push(trainer *t, int pair) {
    if (t->n_heap == t->cap_heap) {
        size_t cap = t->cap_heap ? 2 * t->cap_heap : 1024;
        t->heap = vlp_realloc(t->heap, cap * sizeof *t->heap);
        t->cap_heap = cap;
    }
    heap_item item = {t->count[pair], pair};
    size_t i = t->n_heap++;
    while (i > 0 && heap_before(t, item, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = item;
}

static heap_item heap_pop(trainer *t) {
    heap_item top = t->heap[0], last = t->heap[--t->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->n_heap) break;
        if (c + 1 < t->n_heap && heap_before(t, t->heap[c + 1], t->heap[c])) c++;
        if (!heap_before(t, t->heap[c], last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->n_heap) t->heap[i] = last;
    return top;
}

/* The pair (a, b), added if new. */
static int pair_of(trainer *t, int a, int b) {
    int p = vlp_pairmap_get(&t->pair_id, a, b);
    if (p < 0) {
        p = t->n_pairs;
        int cap = t->cap_pairs;
        /* All per-pair arrays share cap_pairs; grow each from the same old cap. */
        if (p >= cap) {
            int c = cap ? 2 * cap : 1024;
            void **arrays[] = {(void **)&t->pa, (void **)&t->pb, (void **)&t->count, (void **)&t->where,
                               (void **)&t->n_where, (void **)&t->cap_where, (void **)&t->before, (void **)&t->stamp,
                               (void **)&t->touched};
            size_t sizes[] = {sizeof *t->pa,      sizeof *t->pb,        sizeof *t->count,
                              sizeof *t->where,   sizeof *t->n_where,   sizeof *t->cap_where,
                              sizeof *t->before,  sizeof *t->stamp,     sizeof *t->touched};
            for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
                *arrays[k] = vlp_realloc(*arrays[k], (size_t)c * sizes[k]);
            t->cap_pairs = c;
        }
        vlp_pairmap_put(&t->pair_id, a, b, p);
        t->pa[p] = a;
        t->pb[p] = b;
        t->count[p] = 0;
        t->where[p] = NULL;
        t->n_where[p] = t->cap_where[p] = 0;
        t->stamp[p] = -1;
        t->n_pairs++;
    }
    return p;
}

static void note_word(trainer *t, int p, int w) {
    if (t->n_where[p] && t->where[p][t->n_where[p] - 1] == w) return;
    grow((void **)&t->where[p], sizeof **t->where, &t->cap_where[p], t->n_where[p] + 1);
    t->where[p][t->n_where[p]++] = w;
}

/* Adds delta to pair (a, b), remembering its count before this merge;
 * returns the pair. */
static int add_count(trainer *t, int a, int b, long delta, int merge) {
    int p = pair_of(t, a, b);
    if (t->stamp[p] != merge) {
        t->stamp[p] = merge;
        t->before[p] = t->count[p];
        t->touched[t->n_touched++] = p;
    }
    t->count[p] += delta;
    return p;
}

static void init_words(trainer *t) {
    int base[512];
    for (int eow = 0; eow < 2; eow++)
        for (int b = 0; b < 256; b++) {
            unsigned char s[8];
            size_t n = (size_t)utf8proc_encode_char(vlp_bpe_byte_char(b), s);
            if (eow) memcpy(s + n, "</w>", 4), n += 4;
            vlp_strtab_intern(&t->syms, s, n, &base[256 * eow + b]);
        }
    t->n_words = t->word_text.count;
    t->sym = vlp_malloc((t->word_text.len + 1) * sizeof *t->sym);
    t->start = vlp_malloc(((size_t)t->n_words + 1) * sizeof *t->start);
    t->len = vlp_malloc(((size_t)t->n_words + 1) * sizeof *t->len);
    size_t at = 0;
    for (int w = 0; w < t->n_words; w++) {
        size_t n;
        const unsigned char *s = (const unsigned char *)vlp_strtab_str(&t->word_text, w, &n);
        t->start[w] = at;
        t->len[w] = (int)n;
        for (size_t i = 0; i < n; i++) t->sym[at++] = base[(i + 1 == n ? 256 : 0) + s[i]];
        int *sym = t->sym + t->start[w];
        for (size_t i = 0; i + 1 < n; i++) note_word(t, add_count(t, sym[i], sym[i + 1], t->freq[w], -1), w);
    }
    for (int p = 0; p < t->n_pairs; p++)
        if (t->count[p] >= 2) heap_push(t, p);
}

/* Replaces every (a, b) in word w by ab, left to right without overlaps
 * (as encoding does), updating the pair counts. */
static void merge_word(trainer *t, int w, int a, int b, int ab, int merge) {
    int *sym = t->sym + t->start[w], n = t->len[w];
    long f = t->freq[w];
    int i = 0;
    while (i + 1 < n && !(sym[i] == a && sym[i + 1] == b)) i++;
    if (i + 1 >= n) return; /* a stale entry of the pair's word list */
    for (i = 0; i + 1 < n; i++) add_count(t, sym[i], sym[i + 1], -f, merge);
    int m = 0;
    for (i = 0; i < n;) {
        if (i + 1 < n && sym[i] == a && sym[i + 1] == b) sym[m++] = ab, i += 2;
        else sym[m++] = sym[i++];
    }
    t->len[w] = m;
    for (i = 0; i + 1 < m; i++) {
        int p = add_count(t, sym[i], sym[i + 1], f, merge);
        /* Only pairs with the new symbol are new to this word; the others
         * already list it. */
        if (sym[i] == ab || sym[i + 1] == ab) note_word(t, p, w);
    }
}

static void trainer_free(trainer *t) {
    vlp_strtab_free(&t->word_text);
    vlp_strtab_free(&t->syms);
    vlp_pairmap_free(&t->pair_id);
    for (int p = 0; p < t->n_pairs; p++) free(t->where[p]);
    free(t->freq);
    free(t->sym);
    free(t->start);
    free(t->len);
    free(t->pa);
    free(t->pb);
    free(t->count);
    free(t->where);
    free(t->n_where);
    free(t->cap_where);
    free(t->before);
    free(t->stamp);
    free(t->touched);
    free(t->heap);
}

int vlp_tokenizer_train(vlp_tokenizer **out, const char *const *texts, int n, int vocab_size) {
    *out = NULL;
    if (vocab_size < VLP_TOKENIZER_VOCAB_SIZE(0))
        return vlp_error_set(VLP_EINVAL, "tokenizer training: vocab size %d is below %d (256 bytes, 256 word ends, 2 specials)",
                             vocab_size, VLP_TOKENIZER_VOCAB_SIZE(0));
    if (n < 0 || (n > 0 && !texts)) return vlp_error_set(VLP_EINVAL, "tokenizer training: no texts");
    trainer t = {0};
    vlp_tokenizer *tok = NULL;
    int *merges = NULL, n_merges = 0, target = vocab_size - VLP_TOKENIZER_VOCAB_SIZE(0), rc = VLP_OK;
    char *scratch = NULL;
    for (int i = 0; i < n && !rc; i++) {
        if (!texts[i]) rc = vlp_error_set(VLP_EINVAL, "tokenizer training: texts[%d] is NULL", i);
        else rc = vlp_bpe_text_words(texts[i], count_word, &t);
    }
    if (rc) goto fail;
    init_words(&t);
    /* Each merge removes at least one symbol, so this many at most: */
    if ((size_t)target > t.word_text.len) target = (int)t.word_text.len;
    merges = vlp_malloc(2 * ((size_t)target + 1) * sizeof *merges);
    while (n_merges < target && t.n_heap) {
        heap_item top = heap_pop(&t);
        if (top.count != t.count[top.pair]) continue; /* stale: the count moved since the push */
        int p = top.pair, a = t.pa[p], b = t.pb[p], ab;
        merges[2 * n_merges] = a;
        merges[2 * n_merges + 1] = b;
        size_t na, nb;
        const char *sa = vlp_strtab_str(&t.syms, a, &na), *sb = vlp_strtab_str(&t.syms, b, &nb);
        scratch = vlp_realloc(scratch, na + nb);
        memcpy(scratch, sa, na);
        memcpy(scratch + na, sb, nb);
        /* Interned by text: a symbol spelled twice ("ab c", "a bc") is one. */
        vlp_strtab_intern(&t.syms, scratch, na + nb, &ab);
        /* Take the pair's word list: merging cannot recreate (a, b) in these
         * words, and the list must not move while pairs are added. */
        int *list = t.where[p], n_list = t.n_where[p];
        t.where[p] = NULL;
        t.n_where[p] = t.cap_where[p] = 0;
        t.n_touched = 0;
        for (int k = 0; k < n_list; k++) merge_word(&t, list[k], a, b, ab, n_merges);
        free(list);
        for (int k = 0; k < t.n_touched; k++) {
            int q = t.touched[k];
            if (t.count[q] != t.before[q] && t.count[q] >= 2) heap_push(&t, q);
        }
        n_merges++;
    }
    if ((rc = vlp_tokenizer_new(&tok))) goto fail;
    for (int r = 0; r < n_merges && !rc; r++) {
        size_t na, nb;
        const char *sa = vlp_strtab_str(&t.syms, merges[2 * r], &na);
        const char *sb = vlp_strtab_str(&t.syms, merges[2 * r + 1], &nb);
        rc = vlp_tokenizer_add_merge(tok, sa, na, sb, nb, "tokenizer training");
    }
    if (rc || (rc = vlp_tokenizer_finish(tok))) goto fail;
    *out = tok;
    tok = NULL;
fail:
    vlp_tokenizer_free(tok);
    trainer_free(&t);
    free(merges);
    free(scratch);
    return rc;
}
