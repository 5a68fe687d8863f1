"""Prepares Tux Paint's stamps (Debian package tuxpaint-stamps-default) as a manifest.

Run by scripts/data/tuxpaint.sh, which installs the package; not a loader.
Each stamp X.png is captioned by the first line of X.txt (English; the other
lines are translations), typographic punctuation made plain; the PNGs are
copied unchanged under images/, keeping the category folders.
"""
import argparse
import collections
import hashlib
import os
import shutil
import sys
import time
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifest import Failure, Stamp, check_manifest, clean_caption, elapsed, png_header, prepare, run, write_tsv  # noqa: E402

WHO = "tuxpaint"
FORMAT = 1  # bump when the output changes, so stamps from older runs go stale
MIN_PAIRS = 750  # fewer means the package changed under us

# Curly quotes, dashes and the ellipsis as plain ASCII: the same caption is
# then written one way whatever the stamp's author typed.
PLAIN = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
         "\u2014": " - ", "\u2013": "-", "\u2026": "...", "\u00a0": " "}


def read_caption(txt):
    """(caption, None) from the first line of a stamp's .txt, or (None, why)."""
    with open(txt, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    first = text.split("\n", 1)[0]
    s = unicodedata.normalize("NFC", first)
    for k, v in PLAIN.items():
        s = s.replace(k, v)
    s = clean_caption(s).lstrip("-").strip()
    if not s:
        return None, "empty first line"
    return (s, first.strip()), None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="redo even if already prepared")
    ap.add_argument("--src", required=True, help="the stamps folder")
    ap.add_argument("--out", required=True, help="output folder (data/tuxpaint)")
    ap.add_argument("--version", required=True, help="package version, for the stamp")
    args = ap.parse_args()
    t0 = time.time()
    out, src = args.out, args.src
    os.makedirs(out, exist_ok=True)
    stamp = Stamp(out, f"tuxpaint-stamps-default {args.version}\ntuxpaint.py format {FORMAT}")
    n = prepare(WHO, stamp, args.force, lambda: build(src, out), lambda: verify(out))
    print(f"{WHO}: took {elapsed(t0)}")
    print(f"{WHO}: {n} pairs in {os.path.relpath(out)}/")


def verify(out):
    """Checks all.tsv and its files, prints examples; returns the count."""
    rows = check_manifest(os.path.join(out, "all.tsv"), ["concept_id"],
                          say=lambda s: print(f"{WHO}: {s}"))
    if len(rows) < MIN_PAIRS:
        print(f"{WHO}: warning: only {len(rows)} pairs, fewer than the {MIN_PAIRS} expected",
              file=sys.stderr)
    print(f"{WHO}: example captions:")
    for r in rows[::max(1, len(rows) // 8)][:8]:
        print(f"  {r[0]}\t{r[1]}")
    return len(rows)


def build(src, out):
    if not os.path.isdir(src):
        raise Failure(f"{src}: no such folder")
    pngs, svgs = [], set()
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(root, f), src)
            if f.endswith(".png"):
                pngs.append(rel)
            elif f.endswith(".svg"):
                svgs.add(rel[:-4])
    skipped = collections.defaultdict(list)
    stamps, changed = [], 0
    for rel in pngs:
        base = rel[:-4]
        txt = os.path.join(src, base + ".txt")
        if not os.path.exists(txt):
            # Tux Paint's X_mirror.png is the flipped drawing of stamp X, shown
            # when X is mirrored; it has no description of its own.
            if base.endswith("_mirror") and os.path.exists(os.path.join(src, base[:-7] + ".txt")):
                skipped["no .txt (a _mirror variant of a captioned stamp)"].append(rel)
            else:
                skipped["no .txt"].append(rel)
            continue
        got, why = read_caption(txt)
        if why:
            skipped[why].append(rel)
            continue
        title, original = got
        changed += title != original
        stamps.append((rel, title))
    png_bases = {p[:-4] for p in pngs}
    svg_only = sorted(s for s in svgs if s not in png_bases)

    folder = os.path.join(out, "images")
    shutil.rmtree(folder, ignore_errors=True)  # no stale images from an older run
    rows, digests, sizes = [], collections.defaultdict(list), []
    for cid, (rel, title) in enumerate(stamps):
        dst = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), dst)
        with open(dst, "rb") as f:
            digests[hashlib.sha1(f.read()).hexdigest()].append(rel)
        w, h, _, _ = png_header(dst)
        sizes.append((os.path.getsize(dst), w, h, rel))
        rows.append((f"images/{rel}", title, cid))
    write_tsv(os.path.join(out, "all.tsv"), ["filepath", "title", "concept_id"], rows)

    print(f"{WHO}: {len(pngs)} PNG stamps found, {len(stamps)} with a caption, "
          f"{sum(len(v) for v in skipped.values())} skipped; "
          f"{len(svg_only)} SVG-only stamps not used (PNG only)")
    for why, rels in skipped.items():
        print(f"{WHO}: skipped {len(rels)}, {why}: {', '.join(rels)}")
    print(f"{WHO}: {changed} captions had typographic quotes/dashes or spacing made plain")
    titles = collections.Counter(t for _, t in stamps)
    dup_titles = {t: n for t, n in titles.items() if n > 1}
    same = [v for v in digests.values() if len(v) > 1]
    print(f"{WHO}: {len(dup_titles)} captions are shared by {sum(dup_titles.values())} stamps "
          f"(e.g. {'; '.join(f'{t!r} x{n}' for t, n in sorted(dup_titles.items(), key=lambda x: -x[1])[:3])}); "
          f"{sum(len(v) for v in same)} images in {len(same)} groups are byte-identical"
          + (f" (e.g. {', '.join(same[0])})" if same else ""))
    sizes.sort(reverse=True)
    total = sum(s for s, *_ in sizes)
    print(f"{WHO}: copied {len(rows)} PNGs ({total / 2**20:.1f} MiB) to {os.path.relpath(folder)}/ "
          f"unchanged; largest: " + ", ".join(f"{r} {w}x{h} {s // 1024} KiB" for s, w, h, r in sizes[:3]))
    ws, hs = sorted(w for _, w, _, _ in sizes), sorted(h for _, _, h, _ in sizes)
    print(f"{WHO}: widths {ws[0]}..{ws[-1]} (median {ws[len(ws) // 2]}), "
          f"heights {hs[0]}..{hs[-1]} (median {hs[len(hs) // 2]})")


if __name__ == "__main__":
    run(WHO, main)
