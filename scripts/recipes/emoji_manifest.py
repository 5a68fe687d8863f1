"""Writes data/emoji/recipe_train.tsv: the Google-style emoji of the
training concepts followed by the Tux Paint stamps, paths relative to
data/emoji. Tux Paint's concept ids are moved past the emoji's."""
import csv
import sys

emoji, tux, out = sys.argv[1:]
rows = []
with open(emoji, newline="") as f:
    rows += [(r["filepath"], r["title"], int(r["concept_id"])) for r in csv.DictReader(f, delimiter="\t")]
offset = max(c for _, _, c in rows) + 1
with open(tux, newline="") as f:
    rows += [("../tuxpaint/" + r["filepath"], r["title"], offset + int(r["concept_id"]))
             for r in csv.DictReader(f, delimiter="\t")]
with open(out, "w", newline="") as f:
    w = csv.writer(f, delimiter="\t", lineterminator="\n")
    w.writerow(["filepath", "title", "concept_id"])
    w.writerows(rows)
print(f"{out}: {len(rows)} pairs")
