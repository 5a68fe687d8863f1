#!/usr/bin/env bash
# Recipe: train configs/clip_fmnist.ini from scratch, then classify the 10000
# Fashion-MNIST test images zero-shot, with the prompt ensemble and with a
# each prompt alone; writes the numbers to docs/results.md.
#   scripts/recipes/clip_fmnist.sh     (data: scripts/data/fmnist.sh)
source "$(dirname "$0")/lib.sh"
run=runs/clip_fmnist data=data/fmnist
rm -rf "$run"
start=$(date +%s.%N)
build/vlptrain configs/clip_fmnist.ini
train_s=$(echo "$(date +%s.%N) - $start" | bc)
# vlpeval scores the ensemble and each template alone
build/vlpeval "$run" "$data/test.h5" --zeroshot "$data/classnames.txt" "$data/templates.txt" --json "$run/zeroshot.json"
summary() { /usr/bin/python3 - "$run/zeroshot.json" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))["zeroshot"]
print(f"- Zero-shot on the 10000 test images, {z['templates']}-prompt ensemble: **{100*z['top1']:.2f}% top-1**, {100*z['top5']:.2f}% top-5.")
singles = z["single_template"]
first = singles[0]
print(f"- Single prompt \"{first['template']}\": **{100*first['top1']:.2f}% top-1**; each template alone: "
      + ", ".join(f"{100*s['top1']:.2f}%" for s in singles) + ".")
PY
}
body=$(mktemp)
cat > "$body" <<MD
## Fashion-MNIST zero-shot (configs/clip_fmnist.ini)

\`scripts/recipes/clip_fmnist.sh\`, run on $(date -u +%Y-%m-%d): $(machine).

- Training (2300 steps of 128, ~4.9 epochs, with the evaluation at the end): **$(printf %.0f "$train_s") s** wall time ($(echo "$train_s / 60" | bc -l | xargs printf %.1f) min).
$(summary)

<details><summary>vlpeval's JSON</summary>

\`\`\`json
$(cat "$run/zeroshot.json")
\`\`\`
</details>
MD
results_section clip_fmnist "$body"
rm -f "$body"
