#!/usr/bin/python3
"""Corpus BLEU-1..4 and CIDEr-D written from their definitions, as
coco-caption (pycocoevalcap) computes them, in the Python standard library:
the reference for src/eval/caption_metrics.c.

  caption_metrics_ref.py -o FILE.json   a corpus of a few dozen captions
                                        (seeded), its BLEU-1..4, CIDEr-D and
                                        each candidate's CIDEr-D, for
                                        tests/test_caption_metrics.c

BLEU (Papineni et al. 2002; coco-caption's BleuScorer with option
"closest"): per candidate, n-gram counts clipped by the largest count of
that n-gram in one reference; clipped matches and candidate n-grams summed
over the corpus; p_n = (matches + 1e-15) / (total + 1e-9); BLEU-N = (p_1
... p_N) ** (1 / N), times exp(1 - r / c) if c < r, c the candidates' total
length and r the sum of each one's closest reference length (ties: shorter).

CIDEr-D (Vedantam et al. 2015; coco-caption's CiderD): document frequency
of an n-gram = number of reference sets containing it; weight of an n-gram
in a text = count * (log(number of candidates) - log(max(1, df))); for each
reference and n = 1..4: sum over the candidate's n-grams of min(w_cand,
w_ref) * w_ref over the product of the two norms (0 if either is 0), times
exp(-(l_cand - l_ref) ** 2 / 72), where l counts the text's bigrams;
averaged over n and the references, times 10.

Tokenisation: ASCII letters lower-cased, ASCII punctuation and whitespace
separate words.
"""
import argparse
import json
import math
import random
import string
import sys
from collections import Counter

N = 4


def tokenize(s):
    seps = set(string.punctuation) | set(" \t\n\r\v\f")
    out = "".join(" " if ch in seps else ch for ch in s)
    return "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in out).split()


def ngrams(words):
    return Counter(tuple(words[i:i + n]) for n in range(1, N + 1) for i in range(len(words) - n + 1))


def bleu(corpus):
    guess, correct, c_len, r_len = [0] * N, [0] * N, 0, 0
    for cand, refs in corpus:
        w = tokenize(cand)
        ref_words = [tokenize(r) for r in refs]
        c_len += len(w)
        r_len += min((abs(len(r) - len(w)), len(r)) for r in ref_words)[1]
        ref_counts = [ngrams(r) for r in ref_words]
        for g, k in ngrams(w).items():
            correct[len(g) - 1] += min(k, max(rc[g] for rc in ref_counts))
        for n in range(N):
            guess[n] += max(0, len(w) - n)
    scores, product = [], 1.0
    for n in range(N):
        product *= (correct[n] + 1e-15) / (guess[n] + 1e-9)
        scores.append(product ** (1.0 / (n + 1)))
    ratio = (c_len + 1e-15) / (r_len + 1e-9)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def cider_d(corpus):
    df = Counter()
    for _, refs in corpus:
        df.update(set(g for r in refs for g in ngrams(tokenize(r))))
    log_docs = math.log(len(corpus))

    def vector(s):
        counts = ngrams(tokenize(s))
        weights = {g: k * (log_docs - math.log(max(1.0, df[g]))) for g, k in counts.items()}
        norms = [math.sqrt(sum(v * v for g, v in weights.items() if len(g) == n)) for n in range(1, N + 1)]
        return weights, norms, sum(k for g, k in counts.items() if len(g) == 2)

    per = []
    for cand, refs in corpus:
        wc, nc, lc = vector(cand)
        total = 0.0
        for r in refs:
            wr, nr, lr = vector(r)
            for n in range(1, N + 1):
                dot = sum(min(v, wr.get(g, 0.0)) * wr.get(g, 0.0) for g, v in wc.items() if len(g) == n)
                if nc[n - 1] != 0 and nr[n - 1] != 0:
                    dot /= nc[n - 1] * nr[n - 1]
                total += dot * math.exp(-((lc - lr) ** 2) / (2 * 6.0 ** 2)) / N
        per.append(10.0 * total / len(refs))
    return sum(per) / len(per), per


WORDS = ("a", "the", "dog", "cat", "man", "red", "small", "on", "in", "grass", "ball", "running",
         "sits", "with", "white", "two", "people", "street")


def make_corpus(rng, n):
    """Captions from a small vocabulary, so n-grams recur across the corpus;
    some punctuation and capitals for the tokeniser; references often close
    to the candidate, sometimes not."""
    def caption(lo, hi):
        words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
        if words and rng.random() < 0.3:
            words[0] = words[0].capitalize()
        text = " ".join(words)
        return text + rng.choice(["", ".", " !", ",", "'s"]) if text else text

    corpus = []
    for _ in range(n):
        base = caption(3, 10).split()
        refs = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.6 and base:  # a variant of the base
                r = [w if rng.random() < 0.75 else rng.choice(WORDS) for w in base]
                r = r[:rng.randint(max(1, len(r) - 2), len(r))]
                refs.append(" ".join(r))
            else:
                refs.append(caption(2, 12))
        refs = [r if r else "a" for r in refs]
        cand = " ".join(base) if rng.random() < 0.8 else caption(0, 6)
        corpus.append((cand, refs))
    return corpus


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-n", type=int, default=40)
    args = ap.parse_args()
    corpus = make_corpus(random.Random(args.seed), args.n)
    cider, per = cider_d(corpus)
    out = {"candidates": [c for c, _ in corpus], "refs": [r for _, r in corpus],
           "bleu": bleu(corpus), "cider": cider, "cider_per_candidate": per}
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
    print(f"caption_metrics_ref: wrote {args.output}: {len(corpus)} candidates, BLEU-1..4 "
          f"{[round(b, 4) for b in out['bleu']]}, CIDEr-D {cider:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
