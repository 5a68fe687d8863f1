/* Caption metrics as coco-caption (pycocoevalcap) computes them: corpus
 * BLEU-1..4 and CIDEr-D of candidate captions against held-out reference
 * captions. Not coco-caption's PTB tokenizer (Java): a simple one, below;
 * nor METEOR, ROUGE or SPICE. */
#ifndef VLP_CAPTION_METRICS_H
#define VLP_CAPTION_METRICS_H

/* A corpus: n candidates, candidate i's references being
 * refs[ref_start[i] .. ref_start[i + 1]) (ref_start has n + 1 entries, each
 * candidate at least one reference). Every text is tokenised alike: ASCII
 * letters lower-cased, ASCII punctuation a separator as whitespace is
 * ("A dog's toy." -> a dog s toy). */
typedef struct vlp_caption_corpus {
    int n;
    const char *const *candidates;
    const char *const *refs;
    const int *ref_start;
} vlp_caption_corpus;

/* bleu[k], k = 0..3: BLEU-(k+1) of the corpus, Papineni et al.: the
 * candidates' n-gram counts clipped by the largest count in any one
 * reference, precisions summed over the corpus, their geometric mean
 * (coco-caption's 1e-15 / 1e-9 smoothing), times the brevity penalty
 * exp(1 - r / c) when the candidates' total length c is under r, the sum
 * of each candidate's closest reference length (ties: the shorter). */
int vlp_caption_bleu(const vlp_caption_corpus *c, double bleu[4]);

/* CIDEr-D (Vedantam et al. 2015, coco-caption's CiderD): for n = 1..4,
 * tf-idf vectors of n-grams with document frequencies counted over the
 * corpus's reference sets (a set counts an n-gram once) and idf
 * log(corpus size) - log(max(1, df)); per reference, the candidate's
 * weights clipped to the reference's, cosine similarity, times the
 * Gaussian length penalty exp(-delta^2 / (2 * 6^2)); the mean over n and
 * over references, times 10. delta is as coco-caption computes it: the
 * difference of the two texts' bigram counts. *mean gets the corpus mean;
 * per_candidate (n, may be NULL) each candidate's score. */
int vlp_caption_cider_d(const vlp_caption_corpus *c, double *mean, double *per_candidate);

#endif
