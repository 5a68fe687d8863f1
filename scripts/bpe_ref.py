#!/usr/bin/python3
"""Reference byte-level BPE in Python, written from CLIP's simple_tokenizer
algorithm, to check vlp's C tokenizer (src/data/tokenizer*.c) against.
Not used by vlp itself, and not fast: training recounts every pair each merge.

Run with Debian's /usr/bin/python3 (it needs python3-regex):
  bpe_ref.py encode MERGES [--max-merges M] [--context-length N] < TEXT
  bpe_ref.py train --vocab-size N CAPTIONS.txt -o MERGES
  bpe_ref.py words < TEXT
Output formats are vlptok's: one line of ids per input line (SOT, tokens,
EOT; or exactly N ids with --context-length), and CLIP's merges-file format.
words prints what decoding the ids must give: the words (specials left out,
as decoding skips them) separated by single spaces.

Text is cleaned with CLIP's own calls (html.unescape twice, strip, the
regex module's \s+ collapsed, strip, str.lower), so the C side is checked
against Python itself, not against a second reading of the rules. Deliberate
departures from CLIP, shared with the C side: no ftfy (not in Debian); input
bytes that are not UTF-8 are kept (surrogateescape: each becomes U+DC80 +
byte, and encoding gives the byte back) where CLIP, which takes str and
encodes it as UTF-8, would raise; decimal references of more than 4300
digits are the number they spell, where Python's int() limit makes CLIP
raise.
"""
import argparse
import collections
import gzip
import html
import sys

import regex

# html.unescape turns "&#DIGITS;" into int(DIGITS): without this, more than
# 4300 digits raise ValueError (Python >= 3.11) instead of giving U+FFFD.
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
HEADER = "#version: 0.2"

PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


def bytes_to_unicode():
    """CLIP's table: printable bytes map to themselves, the others to 256+n."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_CHAR = bytes_to_unicode()


def clean(text):
    """CLIP's basic_clean + whitespace_clean + lower, without ftfy. CLIP's
    simple_tokenizer imports regex as re: its \\s is regex's, not the
    standard library's (which also takes U+001C..U+001F)."""
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


def words(text):
    """Each word of the text as bytes (invalid UTF-8 in, same bytes out)."""
    return [w.encode("utf-8", "surrogateescape") for w in PAT.findall(clean(text))]


def symbols(word):
    chars = [BYTE_CHAR[b] for b in word]
    return tuple(chars[:-1]) + (chars[-1] + "</w>",)


def merge_all(word, pair):
    """Every occurrence of pair merged, left to right, no overlaps."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


class Tokenizer:
    def __init__(self, merges):
        vocab = list(BYTE_CHAR.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += [a + b for a, b in merges]
        vocab += [SOT, EOT]
        self.encoder = {s: i for i, s in enumerate(vocab)}  # the last of equal strings wins, as in CLIP
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = len(vocab) - 2, len(vocab) - 1
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        syms = symbols(word)
        while len(syms) > 1:
            pairs = set(zip(syms, syms[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            syms = merge_all(syms, best)
        self.cache[word] = syms
        return syms

    def tokens(self, text):
        ids = []
        for w in words(text):
            if w in (SOT.encode(), EOT.encode()):
                ids.append(self.encoder[w.decode()])
            else:
                ids.extend(self.encoder[s] for s in self.bpe(w))
        return ids

    def encode(self, text, context_length=None):
        ids = [self.sot] + self.tokens(text) + [self.eot]
        if context_length is None:
            return ids
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.eot
        return ids + [0] * (context_length - len(ids))


def load_merges(path, max_merges=None):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or "#version" not in lines[0]:
        sys.exit(f"bpe_ref.py: {path}:1: expected a '#version' header")
    merges = []
    for lineno, line in enumerate(lines[1:], start=2):
        if max_merges is not None and len(merges) >= max_merges:
            break
        parts = line.rstrip("\r").split(" ")
        if len(parts) != 2 or not all(parts):
            sys.exit(f"bpe_ref.py: {path}:{lineno}: expected two symbols separated by one space")
        merges.append(tuple(parts))
    return merges


def train(texts, vocab_size):
    """Most frequent adjacent pair first (overlapping pairs counted), ties to
    the smallest (first, second) strings; until vocab_size or no pair occurs
    twice. Recounts everything each time: slow and obviously right."""
    counts = collections.Counter(w for t in texts for w in words(t) if w not in (SOT.encode(), EOT.encode()))
    corpus = [[symbols(w), f] for w, f in counts.items()]
    merges = []
    while 512 + len(merges) + 2 < vocab_size:
        pairs = collections.Counter()
        for syms, f in corpus:
            for p in zip(syms, syms[1:]):
                pairs[p] += f
        if not pairs:
            break
        best, n = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < 2:
            break
        merges.append(best)
        for entry in corpus:
            if best[0] in entry[0]:
                entry[0] = merge_all(entry[0], best)
    return merges


def read_lines(data):
    """Lines split on b'\\n' only, as vlptok reads them."""
    if not data:
        return []
    if data.endswith(b"\n"):
        data = data[:-1]
    return [line.decode("utf-8", "surrogateescape") for line in data.split(b"\n")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    enc = sub.add_parser("encode")
    enc.add_argument("merges")
    enc.add_argument("--max-merges", type=int)
    enc.add_argument("--context-length", type=int)
    tr = sub.add_parser("train")
    tr.add_argument("captions")
    tr.add_argument("--vocab-size", type=int, required=True)
    tr.add_argument("-o", dest="out", required=True)
    sub.add_parser("words")
    args = ap.parse_args()
    if args.cmd == "words":
        out = sys.stdout.buffer
        for line in read_lines(sys.stdin.buffer.read()):
            out.write(b" ".join(w for w in words(line) if w not in (SOT.encode(), EOT.encode())) + b"\n")
    elif args.cmd == "encode":
        tok = Tokenizer(load_merges(args.merges, args.max_merges))
        out = sys.stdout
        for line in read_lines(sys.stdin.buffer.read()):
            out.write(" ".join(map(str, tok.encode(line, args.context_length))) + "\n")
    else:
        with open(args.captions, "rb") as f:
            merges = train(read_lines(f.read()), args.vocab_size)
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.write(HEADER + "\n" + "".join(f"{a} {b}\n" for a, b in merges))
        print(f"bpe_ref.py: {len(merges)} merges (vocab {512 + len(merges) + 2}); wrote {args.out}")


if __name__ == "__main__":
    main()
