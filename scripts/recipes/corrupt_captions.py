"""Makes a noisy copy of a manifest for the CapFilt experiment: a seeded
fraction of the rows get the caption of another row whose concept differs
(never one of its own concept), as web alt-text that describes some other
image. Writes the noisy manifest (same columns, paths rewritten relative to
its own folder) and the list of corrupted rows (0-based row numbers, with the
caption they lost). Python's standard library only.
  corrupt_captions.py IN.tsv OUT.tsv CORRUPTED.tsv [--fraction 0.3] [--seed 0]"""
import argparse
import csv
import os
import random

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("manifest")
p.add_argument("out")
p.add_argument("corrupted")
p.add_argument("--fraction", type=float, default=0.3)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
if not 0 <= a.fraction <= 1:
    p.error("--fraction must be in [0, 1]")

with open(a.manifest, newline="") as f:
    reader = csv.DictReader(f, delimiter="\t")
    columns, rows = reader.fieldnames, list(reader)
if "concept_id" not in columns:
    p.error(f"{a.manifest}: no concept_id column: a row could take a caption of its own concept")
if len({r["concept_id"] for r in rows}) < 2:
    p.error(f"{a.manifest}: one concept only: no other concept's caption to take")

rng = random.Random(a.seed)
chosen = sorted(rng.sample(range(len(rows)), round(a.fraction * len(rows))))
original = [r["title"] for r in rows]
for i in chosen:
    while True:  # rejection: other concepts are almost every row
        j = rng.randrange(len(rows))
        if rows[j]["concept_id"] != rows[i]["concept_id"]:
            break
    rows[i]["title"] = original[j]

src, dst = os.path.dirname(os.path.abspath(a.manifest)), os.path.dirname(os.path.abspath(a.out))
for r in rows:
    r["filepath"] = os.path.relpath(os.path.join(src, r["filepath"]), dst)
with open(a.out, "w", newline="") as f:
    w = csv.DictWriter(f, columns, delimiter="\t", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
with open(a.corrupted, "w", newline="") as f:
    w = csv.writer(f, delimiter="\t", lineterminator="\n")
    w.writerow(["row", "filepath", "original", "noisy"])
    w.writerows((i, rows[i]["filepath"], original[i], rows[i]["title"]) for i in chosen)
print(f"{a.out}: {len(rows)} pairs, {len(chosen)} captions replaced by another concept's ({a.corrupted})")
