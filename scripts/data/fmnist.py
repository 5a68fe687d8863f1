"""Prepares Fashion-MNIST (Debian package dataset-fashion-mnist) as manifests.

Run by scripts/data/fmnist.sh, which installs the package; not a loader.
Decodes the gzipped IDX files, writes 28x28 8-bit grey PNGs and the TSVs:
train.tsv (templated captions), test.tsv (plain class name), classnames.txt,
templates.txt (zero-shot prompts).
"""
import argparse
import collections
import gzip
import os
import random
import re
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifest import Failure, Stamp, check_manifest, elapsed, png_write_grey, prepare, read_tsv, run, write_tsv  # noqa: E402

WHO = "fmnist"
FORMAT = 1  # bump when the output changes, so stamps from older runs go stale
SEED = 20170825  # Fashion-MNIST's release date; any fixed number would do

# Training captions: the class name in varied phrasings of what the images
# are (small, centred, grey, light on black). {a} is "a" or "an".
CAPTION_TEMPLATES = [
    "a photo of {a} {c}",
    "a black and white photo of {a} {c}",
    "a small grey image of {a} {c}",
    "a greyscale picture of {a} {c}",
    "a low resolution photo of {a} {c}",
    "a tiny 28 by 28 pixel image of {a} {c}",
    "{a} {c} on a black background",
    "a product photo of {a} {c}",
    "a catalogue image of {a} {c}",
    "a centred photo of {a} {c}",
    "a blurry photo of {a} {c}",
    "a thumbnail of {a} {c}",
    "a fashion item: {a} {c}",
    "{a} {c}",
    "a pixelated picture of {a} {c}",
]

# Zero-shot prompts for the C evaluator, which substitutes the class name for
# {} as it is; "the" avoids the article that would be wrong for "ankle boot".
ZERO_SHOT_TEMPLATES = [
    "a photo of the {}.",
    "a black and white photo of the {}.",
    "a greyscale photo of the {}.",
    "a low resolution photo of the {}.",
    "a small photo of the {}.",
    "a blurry photo of the {}.",
    "a centred photo of the {}.",
    "a product photo of the {}.",
    "a catalogue photo of the {}.",
    "a pixelated photo of the {}.",
    "a photo of the {}, a type of fashion item.",
    "the {} on a black background.",
    "{}.",
]

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def read_classnames(readme):
    """Class names from the package's README.md.gz: its "Labels" table
    `| 0 | T-shirt/top |`, ids 0..9 in order. Lower-cased for captions."""
    try:
        with gzip.open(readme, "rt", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise Failure(f"{readme}: cannot read ({e})")
    rows = re.findall(r"^\|\s*([0-9]+)\s*\|\s*([^|]+?)\s*\|\s*$", text, re.M)
    names = [name.lower() for _, name in rows]
    if [int(i) for i, _ in rows] != list(range(10)):
        raise Failure(f"{readme}: want a label table with ids 0..9, found {rows}")
    return names


def read_idx(path, magic, want_n, dims):
    """Payload of an IDX file: big-endian magic (0x0801 labels, 0x0803
    images), then one 32-bit count per dimension, then unsigned bytes."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e})")
    ndim = magic & 0xFF
    head = 4 + 4 * ndim
    if len(data) < head or struct.unpack(">I", data[:4])[0] != magic:
        raise Failure(f"{path}: not an IDX file with magic 0x{magic:08x}")
    shape = struct.unpack(f">{ndim}I", data[4:head])
    if shape != (want_n, *dims) or len(data) != head + want_n * (dims[0] * dims[1] if dims else 1):
        raise Failure(f"{path}: shape {shape} and {len(data) - head} bytes, want {(want_n, *dims)}")
    return data[head:]


def build(args, out, t0):
    classnames = read_classnames(args.readme)
    print(f"{WHO}: classes from {args.readme}: {', '.join(classnames)}")
    rng = random.Random(SEED)
    for split, (images_gz, labels_gz, n) in FILES.items():
        images = read_idx(os.path.join(args.src, images_gz), 0x0803, n, (28, 28))
        labels = read_idx(os.path.join(args.src, labels_gz), 0x0801, n, ())
        bad = [i for i in range(n) if labels[i] >= len(classnames)]
        if bad:
            raise Failure(f"{labels_gz}: label {labels[bad[0]]} at item {bad[0]} is not a class id")
        folder = os.path.join(out, split)
        shutil.rmtree(folder, ignore_errors=True)  # no stale images from an older run
        os.makedirs(folder)
        rows = []
        for i in range(n):
            fp = f"{split}/{i:05d}.png"
            png_write_grey(os.path.join(out, fp), 28, 28, images[i * 784:(i + 1) * 784])
            c = classnames[labels[i]]
            if split == "train":
                title = rng.choice(CAPTION_TEMPLATES).format(a=article(c), c=c)
            else:
                title = c
            rows.append((fp, title, labels[i]))
        write_tsv(os.path.join(out, f"{split}.tsv"), ["filepath", "title", "class_id"], rows)
        print(f"{WHO}: wrote {n} PNGs in {os.path.relpath(folder)}/ and {split}.tsv "
              f"({elapsed(t0)} so far)")
    with open(os.path.join(out, "classnames.txt"), "w", encoding="utf-8") as f:
        f.write("".join(c + "\n" for c in classnames))
    with open(os.path.join(out, "templates.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in ZERO_SHOT_TEMPLATES))
    print(f"{WHO}: {len(CAPTION_TEMPLATES)} caption templates (seed {SEED}); "
          f"{len(ZERO_SHOT_TEMPLATES)} zero-shot templates in templates.txt")


def verify(out):
    """Checks what is on disk and prints its counts; returns them."""
    path = os.path.join(out, "classnames.txt")
    try:
        with open(path, encoding="utf-8") as f:
            classnames = f.read().split("\n")[:-1]
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e.strerror})")
    if len(classnames) != 10:
        raise Failure(f"{path}: {len(classnames)} names, want 10")
    counts = {}
    for split in FILES:
        rows = check_manifest(os.path.join(out, f"{split}.tsv"), ["class_id"], size=(28, 28),
                              say=lambda s: print(f"{WHO}: {s}"))
        if len(rows) != FILES[split][2]:
            raise Failure(f"{out}/{split}.tsv: {len(rows)} rows, want {FILES[split][2]}")
        per_class = collections.Counter(int(r[2]) for r in rows)
        counts[split] = len(rows)
        print(f"{WHO}: {split} per class: "
              + ", ".join(f"{classnames[k]} {per_class[k]}" for k in range(len(classnames))))
    _, train = read_tsv(os.path.join(out, "train.tsv"))
    print(f"{WHO}: example captions:")
    for fp, title, cid in train[:6]:
        print(f"  {fp}\t{title}")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="redo even if already prepared")
    ap.add_argument("--src", required=True, help="folder of the IDX files")
    ap.add_argument("--readme", required=True, help="the package's README.md.gz")
    ap.add_argument("--out", required=True, help="output folder (data/fmnist)")
    ap.add_argument("--version", required=True, help="package version, for the stamp")
    args = ap.parse_args()
    t0 = time.time()
    out = args.out
    os.makedirs(out, exist_ok=True)
    stamp = Stamp(out, f"dataset-fashion-mnist {args.version}\nfmnist.py format {FORMAT}")

    counts = prepare(WHO, stamp, args.force, lambda: build(args, out, t0), lambda: verify(out))
    print(f"{WHO}: took {elapsed(t0)}")
    print(f"{WHO}: {counts['train']} train / {counts['test']} test pairs in {os.path.relpath(out)}/")


if __name__ == "__main__":
    run(WHO, main)
