#!/usr/bin/env bash
# Recipe: when to lock the image tower for fine-tuning (docs/finetune.md,
# "When to lock a tower"). Two start models of the same size: runs/clip_tiny
# (grey Fashion-MNIST clothes: far from emoji) and runs/clip_emoji (Google-
# style emoji of the training concepts and the Tux Paint stamps: near). The
# 747 Google-style emoji of the held-out concepts, which neither model
# trained on, are split at random (seed 0) into 500 fine-tuning pairs and
# 247 evaluation pairs. Each model is fine-tuned, 30 epochs and otherwise as
# configs/finetune_example.ini, with the image tower locked or unlocked at
# lr 5e-5 (the documented recipe) or 3e-4; a second seed of the two main
# cells (locked at 5e-5, unlocked at 3e-4) shows the spread, and the two are
# also run on the first 100 of the 500 pairs. Prints a markdown table of
# retrieval (a caption matches every image of its concept) on the 247
# pairs, before fine-tuning as a row; does not write docs/results.md.
#   scripts/recipes/finetune_lock.sh   (first: runs/clip_tiny, runs/clip_emoji; data: scripts/data/emoji.sh)
# Finished runs in runs/finetune_lock/ are reused: delete the folder to train
# them again. JOBS=N trainings at a time (default 2), each on one BLAS thread
# unless OPENBLAS_NUM_THREADS says otherwise. VLP_BUILD=DIR takes the
# programs from DIR instead of build/.
source "$(dirname "$0")/lib.sh"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
jobs=${JOBS:-2} out=runs/finetune_lock emoji=data/emoji
models="clip_tiny clip_emoji"
for m in $models; do
  [ -f "runs/$m/model.h5" ] || { echo "runs/$m/model.h5 is missing: train configs/$m.ini first" >&2; exit 1; }
done
mkdir -p "$out"

# The split: 500 pairs to fine-tune on (and the first 100 of them), 247 to
# evaluate on (header kept), and the evaluation pairs whose concept has no
# image among the 500 (another skin tone or gender of an emoji is the same
# concept, so a random split puts many concepts on both sides).
/usr/bin/python3 -c '
import random
d = "data/emoji/"; rows = open(d + "google_val.tsv").read().splitlines(); head, rows = rows[0], rows[1:]
random.Random(0).shuffle(rows)
seen = {r.split("\t")[2] for r in rows[:500]}
parts = {"train": rows[:500], "train100": rows[:100], "eval": rows[500:],
         "eval_new": [r for r in rows[500:] if r.split("\t")[2] not in seen]}
for name, part in parts.items(): open(d + "finetune_lock_" + name + ".tsv", "w").write("\n".join([head] + part) + "\n")
'
for part in train train100 eval eval_new; do
  "$bin/vlpdata" pack "$emoji/finetune_lock_$part.tsv" -o "$emoji/finetune_lock_$part.h5" --size 64 > /dev/null
done
n_new=$(($(wc -l < "$emoji/finetune_lock_eval_new.tsv") - 1))

# evaluate MODEL NAME: retrieval by concept on the 247 pairs and on the new-concept ones.
evaluate() {
  nice "$bin/vlpeval" "$1" "$emoji/finetune_lock_eval.h5" --retrieval --match concept --json "$out/$2.json" > /dev/null
  nice "$bin/vlpeval" "$1" "$emoji/finetune_lock_eval_new.h5" --retrieval --match concept --json "$out/$2.new.json" > /dev/null
}

# The cells, MODEL:SETTING:SEED:PAIRS, the longest first (two run at a time).
settings="lock_5e-5 lock_3e-4 unlock_5e-5 unlock_3e-4"
setting_args() { # lock_5e-5 -> --set train.lock_image=true --set optim.lr=5e-5
  echo --set train.lock_image="$([ "${1%_*}" = lock ] && echo true || echo false)" --set optim.lr="${1#*_}"
}
label() { echo "image ${1%_*}ed, lr ${1#*_}$([ "$1" = lock_5e-5 ] && echo " (the recipe)")"; }
name() { echo "${1}_${2}_s$3$([ "$4" = 500 ] || echo "_n$4")"; }
cells=""
for m in $models; do
  for s in $settings; do cells+=" $m:$s:0:500"; done
  cells+=" $m:lock_5e-5:1:500 $m:unlock_3e-4:1:500"
done
for m in $models; do
  for seed in 0 1; do cells+=" $m:lock_5e-5:$seed:100 $m:unlock_3e-4:$seed:100"; done
done

# cell MODEL:SETTING:SEED:PAIRS: fine-tune (train() reuses a finished run) and evaluate.
cell() {
  local m s seed n run data
  IFS=: read -r m s seed n <<< "$1"
  run=$(name "$m" "$s" "$seed" "$n")
  data=../data/emoji/finetune_lock_train$([ "$n" = 500 ] || echo "$n").h5
  # shellcheck disable=SC2046
  train "$out/$run" configs/finetune_example.ini --set data.train="$data" \
    --set train.init="../runs/$m" --set train.epochs=30 --set train.seed="$seed" $(setting_args "$s")
  evaluate "$out/$run" "$run"
}

for m in $models; do evaluate "runs/$m" "${m}_before"; done
pids=()
for c in $cells; do
  cell "$c" & pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

# row MODEL PAIRS SETTING NAME...: one line of the table, the runs (seeds)
# of a cell side by side (recalls in %; time: vlptrain's "took").
row() {
  local model=$1 pairs=$2 setting=$3; shift 3
  local args=() took
  for run in "$@"; do
    took=-
    [ -f "$out/$run.log" ] && took=$(sed -n 's/.*| took \([0-9:]*\)$/\1/p' "$out/$run.log" | tail -1)
    args+=("$out/$run" "$took")
  done
  /usr/bin/python3 - "$model" "$pairs" "$setting" "${args[@]}" <<'PY'
import json, sys
model, pairs, setting, *runs = sys.argv[1:]
runs = [(json.load(open(p + ".json"))["retrieval"], json.load(open(p + ".new.json"))["retrieval"], t)
        for p, t in zip(runs[::2], runs[1::2])]
col = lambda f: " / ".join(f(*x) for x in runs)
pc = lambda k, new=False: col(lambda r, n, t: f"{100 * (n if new else r)[k]:.1f}")
print(f"| {model} | {pairs} | {setting} | {col(lambda r, n, t: t)} | {pc('i2t_r1')} | {pc('i2t_r5')} | {pc('t2i_r1')} "
      f"| {pc('t2i_r5')} | {pc('i2t_r1', True)} | {pc('t2i_r1', True)} |")
PY
}
chance() { /usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["retrieval"]; print("%.1f%% / %.1f%%" % (100 * r["chance_r1"], 100 * r["chance_r5"]))' "$1"; }
steps() { sed -n 's/.*; \([0-9]*\) steps of \([0-9]*\) pairs.*/\1 steps of \2/p' "$out/$1.log"; }

echo
echo "Fine-tuning on Google-style emoji pairs of concepts neither model trained on; retrieval on 247 others (a caption matches"
echo "every image of its concept; chance R@1 / R@5 $(chance "$out/clip_tiny_before.json")), in %; the last two columns on the $n_new"
echo "of them whose concept has no image among the 500 fine-tuning pairs (chance R@1 $(chance "$out/clip_tiny_before.new.json" | cut -d' ' -f1))."
echo "30 epochs ($(steps clip_tiny_lock_5e-5_s0) for 500 pairs, $(steps clip_tiny_lock_5e-5_s0_n100) for 100), otherwise as"
echo "configs/finetune_example.ini; two values: seeds 0 / 1; time: vlptrain's, $jobs trainings at a time on a machine shared with other jobs."
echo "$(date -u +%Y-%m-%d): $(machine)"
echo
echo "| start model | pairs | fine-tuning | time | I2T R@1 | I2T R@5 | T2I R@1 | T2I R@5 | new: I2T R@1 | new: T2I R@1 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for m in $models; do
  row "$m" - "none (before)" "${m}_before"
  for n in 500 100; do
    for s in $settings; do
      runs=()
      for seed in 0 1; do
        run=$(name "$m" "$s" "$seed" "$n")
        if [ -f "$out/$run.json" ]; then runs+=("$run"); fi
      done
      if [ ${#runs[@]} -gt 0 ]; then row "$m" "$n" "$(label "$s")" "${runs[@]}"; fi
    done
  done
done
