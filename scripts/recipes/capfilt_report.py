"""The CapFilt recipe's section of docs/results.md (markdown on stdout), from
the files scripts/recipes/capfilt.sh leaves in its folder: the corrupted
rows, vlpfilter's reports, the runs' metrics and vlpeval's JSON. Every
number is read from those files.
  capfilt_report.py DIR THRESHOLD MACHINE"""
import csv
import datetime
import json
import os
import statistics
import sys

d, threshold, machine = sys.argv[1:]
threshold = float(threshold)
read = lambda p: list(csv.DictReader(open(p, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
pc = lambda x: f"{100 * x:.1f}%"
corrupted = read(f"{d}/corrupted.tsv")
bad = {int(r["row"]) for r in corrupted}  # rows of the noisy manifest
wrong = {(r["filepath"], r["noisy"]) for r in corrupted}  # the same pairs, as a cleaned set lists them


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
for t in (0.1, 0.2, 0.3, threshold, 0.5, 0.7):
    cells = " | ".join(f"{pc(a)} | {pc(b)}" for a, b, *_ in (rates(r, t) for _, r in reports))
    note = {threshold: " (the recipe's: 1/3, likelihood ratio 1)", 0.5: " (BLIP's, vlpfilter's default)"}.get(t, "")
    print(f"| {t:.3g}{note} | {cells} |")
print()
for name, r in reports:
    _, _, b, g = rates(r, threshold)
    print(f"- ITM match probability, {name}: corrupted pairs mean {statistics.mean(b):.4f} "
          f"(min {min(b):.4f}, max {max(b):.4f}), clean pairs mean {statistics.mean(g):.4f} "
          f"(min {min(g):.4f}, max {max(g):.4f}).")
for name, r in reports:
    a, b, *_ = rates(r, threshold)
    met = a >= 0.8 and b >= 0.9
    print(f"- Target (at least 80% of the corrupted removed, 90% of the clean kept), {name}, at the recipe's "
          f"threshold: **{'met' if met else 'missed'}** ({pc(a)} removed, {pc(b)} kept).")
syn = [r for r in reports[0][1] if r["synthetic_decision"] == "kept"]
ex = [r["synthetic"] for r in reports[0][1][:3] if r["synthetic"]]
print(f"- Synthetic captions kept (fine-tuned model): {len(syn)} of {len(reports[0][1])}; the first three written: "
      + "; ".join(f"\"{e}\"" for e in ex) + ".\n")
print("### CLIP on the noisy and on the cleaned sets\n")
print("Same `configs/capfilt_clip.ini` (tiny CLIP, same steps, the pre-trained BLIP's tokenizer), seeds 0, 1 "
      "and 2 on each set; retrieval on the 747 held-out-concept pairs of `data/emoji/google_val.h5`, a caption "
      "matching every image of its concept. Each cell is the mean of the three seeds, then their range.\n")
keys = ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5")
print("| training set | pairs | of them corrupted | steps | I2T R@1 | I2T R@5 | T2I R@1 | T2I R@5 |")
print("|---|---|---|---|---|---|---|---|")
means, chance = {}, None
for s, label in (("noisy", "noisy (30% corrupted)"),
                 ("cleaned_tux", "cleaned by the fine-tuned model: kept pairs + kept synthetic captions"),
                 ("cleaned", "cleaned by the pre-trained model's ITM: kept pairs")):
    rows = read(f"{d}/{s}.tsv") if os.path.exists(f"{d}/{s}.tsv") else []
    bad_rows = sum((r["filepath"], r["title"]) in wrong for r in rows)
    runs = [f"{d}/clip_{s}_s{seed}" for seed in (0, 1, 2)]
    if not all(os.path.exists(f"{run}.json") for run in runs):
        print(f"| {label} | {len(rows)} | {bad_rows} | not trained{': the filter kept no pair' if not rows else ''} "
              "| | | | |")
        continue
    res = [json.load(open(f"{run}.json"))["retrieval"] for run in runs]
    chance = res[0]
    means[s] = {k: statistics.mean(r[k] for r in res) for k in keys}
    cells = " | ".join(f"{pc(means[s][k])} ({pc(min(r[k] for r in res))} - {pc(max(r[k] for r in res))})"
                       for k in keys)
    share = f"{bad_rows} ({pc(bad_rows / len(rows))})"
    print(f"| {label} | {len(rows)} | {share} | {steps(runs[0])[0]} | {cells} |")
if chance:
    print(f"| chance | | | | {pc(chance['chance_r1'])} | {pc(chance['chance_r5'])} | {pc(chance['chance_r1'])} "
          f"| {pc(chance['chance_r5'])} |")
print()
if "noisy" in means:
    for s, name in (("cleaned", "the pre-trained model's ITM"), ("cleaned_tux", "the fine-tuned model")):
        if s not in means:
            continue
        better = sum(means[s][k] > means["noisy"][k] for k in ("i2t_r1", "t2i_r1"))
        print(f"- CLIP on the set cleaned by {name} against the noisy set, mean R@1 of three seeds: I2T "
              f"{pc(means[s]['i2t_r1'])} against {pc(means['noisy']['i2t_r1'])}, T2I {pc(means[s]['t2i_r1'])} "
              f"against {pc(means['noisy']['t2i_r1'])}: "
              f"**better in {('neither direction', 'one direction only', 'both directions')[better]}**.")
