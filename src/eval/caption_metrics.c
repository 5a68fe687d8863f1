/* BLEU and CIDEr-D as coco-caption computes them (see caption_metrics.h).
 * N-grams are 4 word ids (-1 past the n-gram's end), counted by sorting. */
#include "eval/caption_metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "data/strtab.h"

#define MAX_N 4
#define CIDER_SIGMA 6.0

typedef struct ngram {
    int w[MAX_N];
    int count;
} ngram;

/* One text: its length in words and its distinct n-grams, n = 1..4, sorted. */
typedef struct text {
    int len, n_grams;
    ngram *grams;
} text;

static int ngram_cmp(const void *pa, const void *pb) {
    const ngram *a = pa, *b = pb;
    for (int i = 0; i < MAX_N; i++)
        if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
    return 0;
}

static int ngram_order(const ngram *g) {
    int n = 0;
    while (n < MAX_N && g->w[n] >= 0) n++;
    return n;
}

/* Sorts grams and merges equal ones, summing counts; returns the new size. */
static int merge_equal(ngram *grams, int n) {
    qsort(grams, (size_t)n, sizeof *grams, ngram_cmp);
    int out = 0;
    for (int i = 0; i < n; i++) {
        if (out > 0 && ngram_cmp(&grams[out - 1], &grams[i]) == 0)
            grams[out - 1].count += grams[i].count;
        else
            grams[out++] = grams[i];
    }
    return out;
}

/* The count of g in the sorted list (0 if absent). */
static int count_of(const ngram *grams, int n, const ngram *g) {
    const ngram *hit = bsearch(g, grams, (size_t)n, sizeof *grams, ngram_cmp);
    return hit ? hit->count : 0;
}

static bool is_separator(unsigned char c) {
    bool space = c == ' ' || (c >= '\t' && c <= '\r');
    bool punct = (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
                 (c >= '{' && c <= '~');
    return space || punct;
}

/* Tokenises s into word ids (interned in words) and counts its n-grams. */
static int text_make(text *out, const char *s, vlp_strtab *words) {
    memset(out, 0, sizeof *out);
    size_t n = strlen(s);
    int *ids = vlp_malloc((n / 2 + 1) * sizeof *ids); /* words are separated */
    char *word = vlp_malloc(n + 1);
    int rc = VLP_OK;
    for (size_t i = 0; i < n;) {
        while (i < n && is_separator((unsigned char)s[i])) i++;
        size_t k = 0;
        for (; i < n && !is_separator((unsigned char)s[i]); i++)
            word[k++] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (k == 0) break;
        rc = vlp_strtab_intern(words, word, k, &ids[out->len]);
        if (rc != VLP_OK) goto out;
        out->len++;
    }
    int len = out->len;
    out->grams = vlp_malloc((size_t)(MAX_N * len + 1) * sizeof *out->grams);
    int g = 0;
    for (int order = 1; order <= MAX_N; order++)
        for (int i = 0; i + order <= len; i++) {
            ngram *x = &out->grams[g++];
            for (int j = 0; j < MAX_N; j++) x->w[j] = j < order ? ids[i + j] : -1;
            x->count = 1;
        }
    out->n_grams = merge_equal(out->grams, g);
out:
    free(ids);
    free(word);
    return rc;
}

/* Every text of the corpus: candidates[i] and refs[j]. */
typedef struct prepared {
    text *candidates, *refs;
    int n_candidates, n_refs;
} prepared;

static void prepared_free(prepared *p) {
    for (int i = 0; p->candidates && i < p->n_candidates; i++) free(p->candidates[i].grams);
    for (int j = 0; p->refs && j < p->n_refs; j++) free(p->refs[j].grams);
    free(p->candidates);
    free(p->refs);
}

static int prepare(const vlp_caption_corpus *c, prepared *p) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < c->n; i++)
        if (c->ref_start[i + 1] <= c->ref_start[i])
            return vlp_error_set(VLP_EINVAL, "caption metrics: candidate %d has no reference", i);
    p->n_candidates = c->n;
    p->n_refs = c->n > 0 ? c->ref_start[c->n] - c->ref_start[0] : 0;
    p->candidates = vlp_calloc((size_t)c->n + 1, sizeof *p->candidates);
    p->refs = vlp_calloc((size_t)p->n_refs + 1, sizeof *p->refs);
    int rc = VLP_OK;
    vlp_strtab words = {0};
    for (int i = 0; i < c->n && rc == VLP_OK; i++)
        rc = text_make(&p->candidates[i], c->candidates[i], &words);
    for (int j = 0; j < p->n_refs && rc == VLP_OK; j++)
        rc = text_make(&p->refs[j], c->refs[c->ref_start[0] + j], &words);
    vlp_strtab_free(&words);
    if (rc != VLP_OK) prepared_free(p);
    return rc;
}

/* ---- BLEU ------------------------------------------------------------------------ */

int vlp_caption_bleu(const vlp_caption_corpus *c, double bleu[4]) {
    prepared p;
    int rc = prepare(c, &p);
    if (rc != VLP_OK) return rc;
    double guess[MAX_N] = {0}, correct[MAX_N] = {0}, testlen = 0, reflen = 0;
    for (int i = 0; i < c->n; i++) {
        const text *cand = &p.candidates[i];
        const text *refs = p.refs + (c->ref_start[i] - c->ref_start[0]);
        int n_refs = c->ref_start[i + 1] - c->ref_start[i];
        int closest = refs[0].len;
        for (int r = 1; r < n_refs; r++) {
            int d = abs(refs[r].len - cand->len), best = abs(closest - cand->len);
            if (d < best || (d == best && refs[r].len < closest)) closest = refs[r].len;
        }
        testlen += cand->len, reflen += closest;
        for (int k = 0; k < MAX_N; k++) guess[k] += cand->len > k ? cand->len - k : 0;
        for (int g = 0; g < cand->n_grams; g++) {
            const ngram *x = &cand->grams[g];
            int most = 0; /* the clip: the largest count in one reference */
            for (int r = 0; r < n_refs; r++) {
                int k = count_of(refs[r].grams, refs[r].n_grams, x);
                most = k > most ? k : most;
            }
            correct[ngram_order(x) - 1] += x->count < most ? x->count : most;
        }
    }
    prepared_free(&p);
    /* coco-caption's smoothing keeps log and division finite. */
    const double tiny = 1e-15, small = 1e-9;
    double product = 1.0, ratio = (testlen + tiny) / (reflen + small);
    for (int k = 0; k < MAX_N; k++) {
        product *= (correct[k] + tiny) / (guess[k] + small);
        bleu[k] = pow(product, 1.0 / (k + 1));
        if (ratio < 1.0) bleu[k] *= exp(1.0 - 1.0 / ratio);
    }
    return VLP_OK;
}

/* ---- CIDEr-D ------------------------------------------------------------------------ */

/* tf-idf weights per n-gram order and their norms; length as coco-caption
 * counts it (the number of bigrams). */
typedef struct tfidf {
    double *weight; /* (n_grams), aligned with the text's grams */
    double norm[MAX_N];
    int length;
} tfidf;

static double idf(const ngram *df, int n_df, const ngram *g, double log_docs) {
    return log_docs - log(fmax(1.0, (double)count_of(df, n_df, g)));
}

static void tfidf_make(tfidf *v, const text *x, const ngram *df, int n_df, double log_docs) {
    memset(v->norm, 0, sizeof v->norm);
    v->length = 0;
    for (int g = 0; g < x->n_grams; g++) {
        int order = ngram_order(&x->grams[g]);
        v->weight[g] = x->grams[g].count * idf(df, n_df, &x->grams[g], log_docs);
        v->norm[order - 1] += v->weight[g] * v->weight[g];
        if (order == 2) v->length += x->grams[g].count;
    }
    for (int k = 0; k < MAX_N; k++) v->norm[k] = sqrt(v->norm[k]);
}

/* Mean over n of the clipped cosine times the length penalty. */
static double cider_pair(const text *cand, const tfidf *vc, const text *ref, const tfidf *vr) {
    double val[MAX_N] = {0};
    for (int g = 0; g < cand->n_grams; g++) {
        const ngram *x = &cand->grams[g];
        const ngram *hit = bsearch(x, ref->grams, (size_t)ref->n_grams, sizeof *x, ngram_cmp);
        if (!hit) continue;
        double wr = vr->weight[hit - ref->grams];
        val[ngram_order(x) - 1] += fmin(vc->weight[g], wr) * wr;
    }
    double delta = (double)(vc->length - vr->length), sum = 0.0;
    for (int k = 0; k < MAX_N; k++) {
        if (vc->norm[k] != 0.0 && vr->norm[k] != 0.0) val[k] /= vc->norm[k] * vr->norm[k];
        sum += val[k] * exp(-delta * delta / (2.0 * CIDER_SIGMA * CIDER_SIGMA));
    }
    return sum / MAX_N;
}

int vlp_caption_cider_d(const vlp_caption_corpus *c, double *mean, double *per_candidate) {
    prepared p;
    int rc = prepare(c, &p);
    if (rc != VLP_OK) return rc;
    /* Document frequency: in how many candidates' reference sets an n-gram is. */
    long total = 0;
    for (int j = 0; j < p.n_refs; j++) total += p.refs[j].n_grams;
    ngram *df = vlp_malloc((size_t)(total + 1) * sizeof *df);
    int max_grams = 1;
    for (int i = 0; i < c->n; i++) max_grams = p.candidates[i].n_grams > max_grams ? p.candidates[i].n_grams : max_grams;
    for (int j = 0; j < p.n_refs; j++) max_grams = p.refs[j].n_grams > max_grams ? p.refs[j].n_grams : max_grams;
    double *weights = vlp_malloc(2 * (size_t)max_grams * sizeof *weights);
    int n_df = 0;
    for (int i = 0; i < c->n; i++) {
        int first = n_df;
        for (int j = c->ref_start[i]; j < c->ref_start[i + 1]; j++) {
            const text *r = &p.refs[j - c->ref_start[0]];
            for (int g = 0; g < r->n_grams; g++) df[n_df] = r->grams[g], df[n_df++].count = 1;
        }
        n_df = first + merge_equal(df + first, n_df - first);
        for (int g = first; g < n_df; g++) df[g].count = 1; /* once per set */
    }
    n_df = merge_equal(df, n_df);
    double log_docs = log((double)c->n), sum = 0.0;
    tfidf vc = {.weight = weights}, vr = {.weight = weights + max_grams};
    for (int i = 0; i < c->n; i++) {
        tfidf_make(&vc, &p.candidates[i], df, n_df, log_docs);
        double score = 0.0;
        for (int j = c->ref_start[i]; j < c->ref_start[i + 1]; j++) {
            const text *r = &p.refs[j - c->ref_start[0]];
            tfidf_make(&vr, r, df, n_df, log_docs);
            score += cider_pair(&p.candidates[i], &vc, r, &vr);
        }
        score = 10.0 * score / (c->ref_start[i + 1] - c->ref_start[i]);
        if (per_candidate) per_candidate[i] = score;
        sum += score;
    }
    *mean = c->n > 0 ? sum / c->n : 0.0;
    free(df);
    free(weights);
    prepared_free(&p);
    return VLP_OK;
}
