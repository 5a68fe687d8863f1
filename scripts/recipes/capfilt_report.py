"""The CapFilt recipe's section of docs/results.md (markdown on stdout), from
the files scripts/recipes/capfilt.sh leaves in its folder: the corrupted
rows, vlpfilter's reports, the runs' metrics and vlpeval's JSON. Every
number is read from those files.
  capfilt_report.py DIR MACHINE"""
import csv
import datetime
import json
import os
import statistics
import sys

d, machine = sys.argv[1:]
read = lambda p: list(csv.DictReader(open(p, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
pc = lambda x: f"{100 * x:.1f}%"
bad = {int(r["row"]) for r in read(f"{d}/corrupted.tsv")}


def steps(run):
    """(steps taken, pairs a step) of a run, from its metrics and config."""
    last = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"loss"' in l][-1]
    batch = next(l.split("=")[1].strip() for l in open(f"{run}/config.ini") if l.startswith("batch_size"))
    return last["step"], int(batch)


def rates(report, t, key="match_prob"):
    """Corrupted pairs dropped and clean pairs kept at threshold t."""
    rows = [r for r in report if r[key] != "nan"]
    b = [float(r[key]) for r in rows if int(r["row"]) in bad]
    g = [float(r[key]) for r in rows if int(r["row"]) not in bad]
    return sum(p < t for p in b) / len(b), sum(p >= t for p in g) / len(g), b, g


reports = [(name, read(f"{d}/{f}")) for name, f in
           (("fine-tuned on Tux Paint", "report.tsv"), ("pre-trained only", "report_pretrained.tsv"))
           if os.path.exists(f"{d}/{f}")]
n_bad = len(bad)
n = len(read(f"{d}/noisy.tsv"))
pre, tux = steps(f"{d}/blip_noisy"), steps(f"{d}/blip_tux")
print("## CapFilt on emoji with 30% corrupted captions\n")
print(f"`scripts/recipes/capfilt.sh`, run on {datetime.date.today()}: {machine}.\n")
print(f"Noisy set: the {n} Google-style emoji training pairs, {n_bad} of whose captions (30%, seed 0) were "
      "replaced by the caption of an image of another concept (`scripts/recipes/corrupt_captions.py`). "
      f"A tiny BLIP (`configs/capfilt_blip.ini`: ITC + ITM + LM) was pre-trained on it for {pre[0]} steps of "
      f"{pre[1]}, then fine-tuned on the 785 clean, human-written Tux Paint descriptions (kept clean) for "
      f"{tux[0]} steps of {tux[1]}, all three losses: one model is captioner and filter. `vlpfilter` rated "
      "every pair's caption, and a nucleus-sampled synthetic caption of its image, with the ITM head.\n")
print("### The filter: corrupted pairs removed, clean pairs kept\n")
head = " | ".join(f"corrupted removed ({name}) | clean kept ({name})" for name, _ in reports)
print(f"| threshold on ITM match probability | {head} |")
print("|---|" + "---|---|" * len(reports))
for t in (0.1, 0.2, 0.3, 0.5, 0.7):
    cells = " | ".join(f"{pc(a)} | {pc(b)}" for a, b, *_ in (rates(r, t) for _, r in reports))
    print(f"| {t}{' (vlpfilter default)' if t == 0.5 else ''} | {cells} |")
print()
for name, r in reports:
    _, _, b, g = rates(r, 0.5)
    print(f"- ITM match probability, {name}: corrupted pairs mean {statistics.mean(b):.4f} "
          f"(min {min(b):.4f}, max {max(b):.4f}), clean pairs mean {statistics.mean(g):.4f} "
          f"(min {min(g):.4f}, max {max(g):.4f}).")
a, b, *_ = rates(reports[0][1], 0.5)
met = a >= 0.8 and b >= 0.9
print(f"- Target (at least 80% of the corrupted removed, 90% of the clean kept, at 0.5): "
      f"**{'met' if met else 'missed'}** ({pc(a)} removed, {pc(b)} kept).")
syn = [r for r in reports[0][1] if r["synthetic_decision"] == "kept"]
ex = [r["synthetic"] for r in reports[0][1][:3] if r["synthetic"]]
print(f"- Synthetic captions kept at 0.5: {len(syn)} of {len(reports[0][1])}; the first three written: "
      + "; ".join(f"\"{e}\"" for e in ex) + ".\n")
print("### CLIP on the noisy and on the cleaned set\n")
print("Same `configs/capfilt_clip.ini` (tiny CLIP, same steps, the pre-trained BLIP's tokenizer); retrieval "
      "on the 747 held-out-concept pairs of `data/emoji/google_val.h5`, a caption matching every image of "
      "its concept.\n")
print("| training set | pairs | steps | I2T R@1 | I2T R@5 | T2I R@1 | T2I R@5 | chance R@1 / R@5 |")
print("|---|---|---|---|---|---|---|---|")
for s, label in (("noisy", "noisy (30% corrupted)"),
                 ("cleaned", "cleaned: kept pairs + kept synthetic captions"),
                 ("cleaned_original", "cleaned: kept pairs only")):
    pairs = len(read(f"{d}/{s}.tsv")) if os.path.exists(f"{d}/{s}.tsv") else 0
    if not os.path.exists(f"{d}/clip_{s}.json"):
        print(f"| {label} | {pairs} | not trained{': the filter kept no pair' if pairs == 0 else ''} | | | | | |")
        continue
    r = json.load(open(f"{d}/clip_{s}.json"))["retrieval"]
    print(f"| {label} | {pairs} | {steps(f'{d}/clip_{s}')[0]} | {pc(r['i2t_r1'])} | {pc(r['i2t_r5'])} "
          f"| {pc(r['t2i_r1'])} | {pc(r['t2i_r5'])} | {pc(r['chance_r1'])} / {pc(r['chance_r5'])} |")
