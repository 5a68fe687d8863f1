/* The BPE vocabulary, merges files, encode and decode (see tokenizer.h).
 * Text cleaning and splitting live in tokenizer_text.c, training in
 * tokenizer_train.c. Not a tokenizer for any scheme but CLIP's. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <unistd.h>
#include <zlib.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "data/strtab.h"
#include "data/tokenizer_impl.h"

/* Words repeat (captions share most of theirs), so the BPE result of a word
 * is kept. Fixed-size open addressing, emptied wholesale when half full:
 * simple, bounded, and the output never depends on what is cached. */
#define CACHE_SLOTS 32768

typedef struct {
    int *ids; /* n_ids ids, then the word's n bytes; NULL if the slot is empty */
    int n_ids;
    size_t n;
    uint64_t hash;
} cache_entry;

typedef struct {
    pthread_mutex_t mu; /* encode is const and may run on several threads */
    size_t used;
    cache_entry slots[CACHE_SLOTS];
} bpe_cache;

struct vlp_tokenizer {
    vlp_strtab strs;    /* every symbol string: tokens and merge parts */
    int *canon;         /* (strs.count) token id of each string, -1 if none */
    int *token_str;     /* (vocab_size) string id of each token */
    int *merge_a, *merge_b; /* (n_merges) string ids of each merge's parts */
    int *merge_out;     /* (n_merges) token id of the merged symbol */
    vlp_pairmap ranks;  /* (token a, token b) -> rank of the merge a b */
    char *raw;          /* the bytes each token stands for, back to back */
    size_t *raw_off;    /* (vocab_size + 1) */
    int base[512];      /* token ids of the byte symbols, then with "</w>" */
    int n_merges, cap_merges, vocab_size, cap_tokens;
    bpe_cache *cache;
};

/* --- building ------------------------------------------------------------ */

static int add_token(vlp_tokenizer *tok, const char *s, size_t n) {
    if (tok->vocab_size == INT_MAX - 2) return vlp_error_set(VLP_EINVAL, "tokenizer: too many tokens");
    int id;
    vlp_strtab_intern(&tok->strs, s, n, &id);
    if (tok->vocab_size == tok->cap_tokens) {
        int cap = tok->cap_tokens ? 2 * tok->cap_tokens : 1024;
        tok->token_str = vlp_realloc(tok->token_str, (size_t)cap * sizeof *tok->token_str);
        tok->cap_tokens = cap;
    }
    tok->token_str[tok->vocab_size++] = id;
    return VLP_OK;
}

static void reserve_merge(vlp_tokenizer *tok) {
    if (tok->n_merges < tok->cap_merges) return;
    int cap = tok->cap_merges ? 2 * tok->cap_merges : 1024;
    tok->merge_a = vlp_realloc(tok->merge_a, (size_t)cap * sizeof *tok->merge_a);
    tok->merge_b = vlp_realloc(tok->merge_b, (size_t)cap * sizeof *tok->merge_b);
    tok->cap_merges = cap;
}

int vlp_tokenizer_new(vlp_tokenizer **out) {
    *out = NULL;
    vlp_tokenizer *tok = vlp_calloc(1, sizeof *tok);
    int rc = VLP_OK;
    /* Ids in the order of CLIP's list(bytes_to_unicode().values()): the
     * printing bytes first, so "!" is 0 and "a</w>" is 320 as in CLIP. */
    int byte_of_id[256];
    for (int b = 0; b < 256; b++) byte_of_id[vlp_bpe_byte_id(b)] = b;
    for (int eow = 0; eow < 2 && rc == VLP_OK; eow++)
        for (int i = 0; i < 256 && rc == VLP_OK; i++) {
            unsigned char s[8];
            size_t n = (size_t)utf8proc_encode_char(vlp_bpe_byte_char(byte_of_id[i]), s);
            if (eow) memcpy(s + n, "</w>", 4), n += 4;
            rc = add_token(tok, (const char *)s, n);
        }
    if (rc) {
        vlp_tokenizer_free(tok);
        return rc;
    }
    *out = tok;
    return VLP_OK;
}

/* A symbol is one or more characters of the byte alphabet (so "</w>" is not
 * special to the parser: its four characters are all in the alphabet). */
static int check_symbol(const char *s, size_t n, const char *where) {
    if (!n) return vlp_error_set(VLP_EFORMAT, "%s: empty symbol", where);
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return vlp_error_set(VLP_EFORMAT, "%s: symbol '%.*s' is not valid UTF-8", where, (int)n, s);
        if (vlp_bpe_char_byte(c) < 0)
            return vlp_error_set(VLP_EFORMAT,
                                 "%s: symbol '%.*s' has U+%04X, which is not one of the 256 byte characters",
                                 where, (int)n, s, (unsigned)c);
        i += (size_t)k;
    }
    return VLP_OK;
}

int vlp_tokenizer_add_merge(vlp_tokenizer *tok, const char *a, size_t na, const char *b, size_t nb,
                            const char *where) {
    int rc = check_symbol(a, na, where);
    if (!rc) rc = check_symbol(b, nb, where);
    if (rc) return rc;
    reserve_merge(tok);
    char *ab = vlp_malloc(na + nb);
    memcpy(ab, a, na);
    memcpy(ab + na, b, nb);
    int ia = 0, ib = 0;
    vlp_strtab_intern(&tok->strs, a, na, &ia);
    vlp_strtab_intern(&tok->strs, b, nb, &ib);
    rc = add_token(tok, ab, na + nb);
    free(ab);
    if (rc) return rc;
    tok->merge_a[tok->n_merges] = ia;
    tok->merge_b[tok->n_merges] = ib;
    tok->n_merges++;
    return VLP_OK;
}

int vlp_tokenizer_finish(vlp_tokenizer *tok) {
    int rc = add_token(tok, VLP_BPE_SOT_TEXT, strlen(VLP_BPE_SOT_TEXT));
    if (!rc) rc = add_token(tok, VLP_BPE_EOT_TEXT, strlen(VLP_BPE_EOT_TEXT));
    if (rc) return rc;
    size_t raw_total = 0; /* a token's bytes are never more than its string's */
    for (int id = 0; id < tok->vocab_size; id++) raw_total += tok->strs.n[tok->token_str[id]];
    tok->canon = vlp_malloc((size_t)tok->strs.count * sizeof *tok->canon);
    tok->merge_out = vlp_malloc((size_t)(tok->n_merges + 1) * sizeof *tok->merge_out);
    tok->raw_off = vlp_malloc((size_t)(tok->vocab_size + 1) * sizeof *tok->raw_off);
    tok->raw = vlp_malloc(raw_total + 1);
    bpe_cache *cache = vlp_calloc(1, sizeof *cache);
    if (pthread_mutex_init(&cache->mu, NULL)) {
        free(cache);
        return vlp_error_set(VLP_ENOMEM, "tokenizer: cannot create a mutex");
    }
    tok->cache = cache; /* set only once its mutex exists: free destroys it */
    /* Tokens are looked up by their string, and a later token with the same
     * string wins, as in CLIP's dict(zip(vocab, range(len(vocab)))). Two
     * merges can spell the same symbol ("ab c", "a bc"). */
    for (int s = 0; s < tok->strs.count; s++) tok->canon[s] = -1;
    for (int id = 0; id < tok->vocab_size; id++) tok->canon[tok->token_str[id]] = id;
    for (int i = 0; i < 512; i++) tok->base[i] = tok->canon[tok->token_str[i]];
    /* Ranks by pair, the later of two equal merges winning, as CLIP's
     * dict(zip(merges, range(len(merges)))). A merge whose part is no token
     * can never apply, as in CLIP; it still holds its id. */
    for (int r = 0; r < tok->n_merges; r++) {
        int a = tok->canon[tok->merge_a[r]], b = tok->canon[tok->merge_b[r]];
        tok->merge_out[r] = tok->canon[tok->token_str[512 + r]];
        if (a >= 0 && b >= 0) vlp_pairmap_put(&tok->ranks, a, b, r);
    }
    size_t off = 0;
    for (int id = 0; id < tok->vocab_size; id++) {
        size_t n;
        const char *s = vlp_strtab_str(&tok->strs, tok->token_str[id], &n);
        tok->raw_off[id] = off;
        for (size_t i = 0; i < n;) {
            utf8proc_int32_t c;
            i += (size_t)utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
            tok->raw[off++] = (char)vlp_bpe_char_byte(c);
        }
    }
    tok->raw_off[tok->vocab_size] = off;
    return VLP_OK;
}

static void cache_clear(bpe_cache *c) {
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->slots[i].ids);
        c->slots[i].ids = NULL;
    }
    c->used = 0;
}

void vlp_tokenizer_free(vlp_tokenizer *tok) {
    if (!tok) return;
    if (tok->cache) {
        cache_clear(tok->cache);
        pthread_mutex_destroy(&tok->cache->mu);
        free(tok->cache);
    }
    vlp_strtab_free(&tok->strs);
    vlp_pairmap_free(&tok->ranks);
    free(tok->canon);
    free(tok->token_str);
    free(tok->merge_a);
    free(tok->merge_b);
    free(tok->merge_out);
    free(tok->raw);
    free(tok->raw_off);
    free(tok);
}

int vlp_tokenizer_vocab_size(const vlp_tokenizer *tok) { return tok->vocab_size; }
int vlp_tokenizer_n_merges(const vlp_tokenizer *tok) { return tok->n_merges; }
int vlp_tokenizer_sot(const vlp_tokenizer *tok) { return tok->vocab_size - 2; }
int vlp_tokenizer_eot(const vlp_tokenizer *tok) { return tok->vocab_size - 1; }

/* --- merges files --------------------------------------------------------- */

/* CLIP's merges file is 1.4 MB; the cap refuses a wrong file or a gzip
 * bomb before it grows the buffer without end. */
#define MAX_MERGES_BYTES ((size_t)1 << 30)

static int read_all(const char *path, char **out, size_t *n_out) {
    *out = NULL;
    int fd = vlp_file_open_fd(path); /* regular files only: a FIFO would hang, /dev/zero never end */
    if (fd < 0) {
        if (errno == EISDIR || errno == EINVAL) return VLP_EIO; /* "PATH: not a regular file (a FIFO)" */
        return vlp_error_set(VLP_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    errno = 0;
    gzFile f = gzdopen(fd, "rb"); /* reads plain files as they are */
    if (!f) {
        close(fd);
        return vlp_error_set(VLP_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    }
    size_t n = 0, cap = 1 << 20;
    char *buf = vlp_malloc(cap);
    int rc = VLP_OK;
    for (;;) {
        if (cap - n < (1 << 16)) {
            if (cap >= MAX_MERGES_BYTES) {
                rc = vlp_error_set(VLP_EFORMAT, "%s: more than %zu MiB: not a merges file", path,
                                   MAX_MERGES_BYTES >> 20);
                break;
            }
            buf = vlp_realloc(buf, cap * 2);
            cap *= 2;
        }
        int got = gzread(f, buf + n, 1 << 16);
        if (got < 0) break;
        if (got == 0) break;
        n += (size_t)got;
    }
    int err;
    const char *msg = gzerror(f, &err);
    if (rc == VLP_OK && err != Z_OK && err != Z_STREAM_END)
        rc = vlp_error_set(VLP_EIO, "%s: cannot read: %s", path, err == Z_ERRNO ? strerror(errno) : msg);
    gzclose(f);
    if (rc != VLP_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *n_out = n;
    return VLP_OK;
}

int vlp_tokenizer_load(vlp_tokenizer **out, const char *path, int max_merges) {
    *out = NULL;
    char *text = NULL;
    size_t n = 0;
    int rc = read_all(path, &text, &n);
    if (rc) return rc;
    rc = vlp_tokenizer_parse(out, text, n, path, max_merges);
    free(text);
    return rc;
}

int vlp_tokenizer_parse(vlp_tokenizer **out, const char *text, size_t n, const char *path, int max_merges) {
    *out = NULL;
    vlp_tokenizer *tok = NULL;
    int rc = vlp_tokenizer_new(&tok);
    if (rc) goto fail;
    long line = 0;
    for (size_t pos = 0; pos < n;) {
        const char *s = text + pos, *nl = memchr(s, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - s) : n - pos;
        pos += len + (nl != NULL);
        line++;
        if (len && s[len - 1] == '\r') len--; /* tolerate CRLF */
        char where[4096];
        snprintf(where, sizeof where, "%s:%ld", path, line);
        if (memchr(s, '\0', len)) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: NUL byte in a merges file", where);
            goto fail;
        }
        if (line == 1) {
            /* CLIP's file starts "\"bpe_simple_vocab_16e6.txt#version: 0.2";
             * CLIP skips the line unread, we insist it is a header so that a
             * file without one does not silently lose its first merge. */
            if (!memmem(s, len, "#version", 8)) {
                rc = vlp_error_set(VLP_EFORMAT, "%s: expected a header line with '#version' (as '#version: 0.2')",
                                   where);
                goto fail;
            }
            continue;
        }
        if (max_merges >= 0 && tok->n_merges >= max_merges) break;
        const char *space = memchr(s, ' ', len);
        if (!space || space == s || space == s + len - 1 || memchr(space + 1, ' ', (size_t)(s + len - space - 1))) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: expected two symbols separated by one space, got '%.*s'", where,
                               (int)(len < 200 ? len : 200), s);
            goto fail;
        }
        size_t na = (size_t)(space - s);
        if ((rc = vlp_tokenizer_add_merge(tok, s, na, space + 1, len - na - 1, where))) goto fail;
    }
    if (line == 0) {
        rc = vlp_error_set(VLP_EFORMAT, "%s:1: empty file; expected a '#version' header line", path);
        goto fail;
    }
    if ((rc = vlp_tokenizer_finish(tok))) goto fail;
    *out = tok;
    return VLP_OK;
fail:
    vlp_tokenizer_free(tok);
    return rc;
}

char *vlp_tokenizer_merges_text(const vlp_tokenizer *tok) {
    static const char header[] = "#version: 0.2\n";
    size_t total = sizeof header; /* with the NUL */
    for (int r = 0; r < tok->n_merges; r++)
        total += tok->strs.n[tok->merge_a[r]] + 1 + tok->strs.n[tok->merge_b[r]] + 1;
    char *text = vlp_malloc(total), *p = text;
    memcpy(p, header, sizeof header - 1), p += sizeof header - 1;
    for (int r = 0; r < tok->n_merges; r++) {
        size_t na, nb;
        const char *a = vlp_strtab_str(&tok->strs, tok->merge_a[r], &na);
        const char *b = vlp_strtab_str(&tok->strs, tok->merge_b[r], &nb);
        memcpy(p, a, na), p += na, *p++ = ' ';
        memcpy(p, b, nb), p += nb, *p++ = '\n';
    }
    *p = '\0';
    return text;
}

int vlp_tokenizer_save(const vlp_tokenizer *tok, const char *path) {
    char *text = vlp_tokenizer_merges_text(tok);
    size_t len = strlen(path), n = strlen(text);
    bool gz = len >= 3 && !strcmp(path + len - 3, ".gz");
    errno = 0;
    gzFile f = gzopen(path, gz ? "wb9" : "wbT"); /* T: write without compression */
    if (!f) {
        free(text);
        return vlp_error_set(VLP_EIO, "%s: cannot open for writing: %s", path, errno ? strerror(errno) : "out of memory");
    }
    bool ok = n == 0 || gzwrite(f, text, (unsigned)n) == (int)n;
    free(text);
    char why[256] = "";
    if (!ok) {
        int err = Z_OK;
        const char *msg = gzerror(f, &err);
        snprintf(why, sizeof why, "%s", err == Z_ERRNO ? strerror(errno) : msg);
    }
    int closed = gzclose(f); /* flushes: a full disk may only show here */
    if (ok && closed != Z_OK)
        ok = false, snprintf(why, sizeof why, "%s", closed == Z_ERRNO ? strerror(errno) : "error on close");
    if (!ok) return vlp_error_set(VLP_EIO, "%s: cannot write: %s", path, why);
    return VLP_OK;
}

/* --- encode --------------------------------------------------------------- */

typedef struct {
    const vlp_tokenizer *tok;
    int *ids;
    size_t n, cap;
} id_list;

static void id_list_push(id_list *l, const int *ids, size_t n) {
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 64;
        while (cap < l->n + n) cap *= 2;
        l->ids = vlp_realloc(l->ids, cap * sizeof *l->ids);
        l->cap = cap;
    }
    memcpy(l->ids + l->n, ids, n * sizeof *ids);
    l->n += n;
}

/* Appends the cached ids of word w to out; false if w is not cached. */
static bool cache_get(bpe_cache *c, const unsigned char *w, size_t n, uint64_t h, id_list *out) {
    bool found = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        cache_entry *e = &c->slots[i];
        if (!e->ids) break;
        if (e->hash == h && e->n == n && !memcmp(e->ids + e->n_ids, w, n)) {
            id_list_push(out, e->ids, (size_t)e->n_ids);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void cache_put(bpe_cache *c, const unsigned char *w, size_t n, uint64_t h, const int *ids, int n_ids) {
    int *block = vlp_malloc((size_t)n_ids * sizeof *ids + n);
    memcpy(block, ids, (size_t)n_ids * sizeof *ids);
    memcpy(block + n_ids, w, n);
    pthread_mutex_lock(&c->mu);
    if (2 * (c->used + 1) > CACHE_SLOTS) cache_clear(c);
    size_t i = h & (CACHE_SLOTS - 1);
    for (; c->slots[i].ids; i = (i + 1) & (CACHE_SLOTS - 1))
        if (c->slots[i].hash == h && c->slots[i].n == n && !memcmp(c->slots[i].ids + c->slots[i].n_ids, w, n))
            break; /* another thread was first */
    if (c->slots[i].ids) {
        free(block);
    } else {
        c->slots[i] = (cache_entry){.ids = block, .n_ids = n_ids, .n = n, .hash = h};
        c->used++;
    }
    pthread_mutex_unlock(&c->mu);
}

/* CLIP's bpe(): the last byte carries "</w>"; while some adjacent pair is a
 * merge, take the one of lowest rank and merge every occurrence of it, left
 * to right, without overlaps. */
static int bpe_word(const unsigned char *w, size_t n, void *ctx) {
    id_list *out = ctx;
    const vlp_tokenizer *tok = out->tok;
    /* Only the exact (lower-case) special texts are specials: CLIP seeds its
     * bpe cache with those two strings and nothing else. */
    if (n == strlen(VLP_BPE_SOT_TEXT) && !memcmp(w, VLP_BPE_SOT_TEXT, n)) {
        int id = vlp_tokenizer_sot(tok);
        id_list_push(out, &id, 1);
        return VLP_OK;
    }
    if (n == strlen(VLP_BPE_EOT_TEXT) && !memcmp(w, VLP_BPE_EOT_TEXT, n)) {
        int id = vlp_tokenizer_eot(tok);
        id_list_push(out, &id, 1);
        return VLP_OK;
    }
    uint64_t h = vlp_strtab_hash(w, n);
    if (cache_get(tok->cache, w, n, h, out)) return VLP_OK;
    int stack[64], *sym = n <= 64 ? stack : vlp_malloc(n * sizeof *sym);
    for (size_t i = 0; i < n; i++) sym[i] = tok->base[vlp_bpe_byte_id(w[i]) + (i + 1 == n ? 256 : 0)];
    size_t len = n;
    while (len > 1) {
        int best = INT_MAX;
        for (size_t i = 0; i + 1 < len; i++) {
            int r = vlp_pairmap_get(&tok->ranks, sym[i], sym[i + 1]);
            if (r >= 0 && r < best) best = r;
        }
        if (best == INT_MAX) break;
        int a = tok->canon[tok->merge_a[best]], b = tok->canon[tok->merge_b[best]];
        size_t m = 0;
        for (size_t i = 0; i < len;) {
            if (i + 1 < len && sym[i] == a && sym[i + 1] == b) sym[m++] = tok->merge_out[best], i += 2;
            else sym[m++] = sym[i++];
        }
        len = m;
    }
    id_list_push(out, sym, len);
    cache_put(tok->cache, w, n, h, sym, (int)len);
    if (sym != stack) free(sym);
    return VLP_OK;
}

static int encode_list(const vlp_tokenizer *tok, const char *text, id_list *l) {
    if (!text) return vlp_error_set(VLP_EINVAL, "tokenizer: text is NULL");
    l->tok = tok;
    return vlp_bpe_text_words(text, bpe_word, l);
}

int vlp_tokenizer_tokens(const vlp_tokenizer *tok, const char *text, int *ids, int cap, int *n_out) {
    id_list l = {0};
    int rc = encode_list(tok, text, &l);
    if (rc == VLP_OK && l.n > INT_MAX) rc = vlp_error_set(VLP_EINVAL, "tokenizer: text has over INT_MAX tokens");
    if (rc == VLP_OK) {
        size_t room = cap > 0 ? (size_t)cap : 0;
        if (l.n && room) memcpy(ids, l.ids, (l.n < room ? l.n : room) * sizeof *ids);
        if (n_out) *n_out = (int)l.n;
    }
    free(l.ids);
    return rc;
}

int vlp_tokenizer_encode(const vlp_tokenizer *tok, const char *text, int *ids, int context_length, int *n_out) {
    if (context_length < 2)
        return vlp_error_set(VLP_EINVAL, "tokenizer: context length %d leaves no room for SOT and EOT",
                             context_length);
    id_list l = {0};
    int rc = encode_list(tok, text, &l);
    if (rc == VLP_OK) {
        size_t keep = l.n < (size_t)context_length - 2 ? l.n : (size_t)context_length - 2;
        ids[0] = vlp_tokenizer_sot(tok);
        if (keep) memcpy(ids + 1, l.ids, keep * sizeof *ids);
        ids[keep + 1] = vlp_tokenizer_eot(tok);
        for (size_t i = keep + 2; i < (size_t)context_length; i++) ids[i] = 0;
        if (n_out) *n_out = (int)keep + 2;
    }
    free(l.ids);
    return rc;
}

/* --- decode --------------------------------------------------------------- */

int vlp_tokenizer_decode(const vlp_tokenizer *tok, const int *ids, int n, char *out, size_t cap, size_t *len_out) {
    int sot = vlp_tokenizer_sot(tok), eot = vlp_tokenizer_eot(tok);
    int end = n;
    while (end > 0 && ids[end - 1] != eot) end--;
    if (end == 0) end = n; /* no EOT: no padding either */
    size_t total = 0;
    for (int i = 0; i < end; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size)
            return vlp_error_set(VLP_EINVAL, "tokenizer: ids[%d] = %d is outside the vocabulary (0..%d)", i, ids[i],
                                 tok->vocab_size - 1);
        if (ids[i] != sot && ids[i] != eot) total += tok->raw_off[ids[i] + 1] - tok->raw_off[ids[i]];
    }
    char *buf = vlp_malloc(total + 1);
    size_t m = 0;
    for (int i = 0; i < end; i++) {
        if (ids[i] == sot || ids[i] == eot) continue;
        size_t k = tok->raw_off[ids[i] + 1] - tok->raw_off[ids[i]];
        memcpy(buf + m, tok->raw + tok->raw_off[ids[i]], k);
        m += k;
    }
    /* CLIP replaces "</w>" in the joined bytes, not per token. */
    size_t len = 0;
    for (size_t i = 0; i < m;) {
        if (i + 4 <= m && !memcmp(buf + i, "</w>", 4)) buf[len++] = ' ', i += 4;
        else buf[len++] = buf[i++];
    }
    if (len && buf[len - 1] == ' ') len--;
    if (cap) {
        size_t k = len < cap - 1 ? len : cap - 1;
        memcpy(out, buf, k);
        out[k] = '\0';
    }
    if (len_out) *len_out = len;
    free(buf);
    return VLP_OK;
}
