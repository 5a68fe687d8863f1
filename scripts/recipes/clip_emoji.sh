#!/usr/bin/env bash
# Recipe: train configs/clip_emoji.ini from scratch on the Google-style emoji
# of the training concepts plus the Tux Paint stamps, then measure retrieval
# on (1) the held-out emoji concepts and (2) the Twitter-style renderings of
# the training concepts; writes the numbers to docs/results.md.
#   scripts/recipes/clip_emoji.sh   (data: scripts/data/emoji.sh, scripts/data/tuxpaint.sh)
source "$(dirname "$0")/lib.sh"
run=runs/clip_emoji emoji=data/emoji
/usr/bin/python3 scripts/recipes/emoji_manifest.py "$emoji/google_train.tsv" data/tuxpaint/all.tsv "$emoji/recipe_train.tsv"
build/vlpdata pack "$emoji/recipe_train.tsv" -o "$emoji/recipe_train.h5" --size 64
rm -rf "$run"
start=$(date +%s.%N)
build/vlptrain configs/clip_emoji.ini
train_s=$(echo "$(date +%s.%N) - $start" | bc)
# A caption matches every image of its emoji (skin tones, genders: one concept).
build/vlpeval "$run" "$emoji/google_val.h5" --retrieval --match concept --json "$run/heldout.json"
build/vlpeval "$run" "$emoji/twitter_train.h5" --retrieval --match concept --json "$run/twitter.json"

# line JSON LABEL: one line of recalls beside their chance levels.
line() { /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); r = j["retrieval"]
pc = lambda x: f"{100 * x:.2f}%"
print(f"| {sys.argv[2]} | {j['samples']} | {pc(r['i2t_r1'])} | {pc(r['i2t_r5'])} | {pc(r['t2i_r1'])} | {pc(r['t2i_r5'])} "
      f"| {pc(r['chance_r1'])} / {pc(r['chance_r5'])} | {r['t2i_r5'] / r['chance_r5']:.1f}x | {r['i2t_r1'] / r['chance_r1']:.1f}x |")
PY
}
body=$(mktemp)
cat > "$body" <<MD
## Emoji retrieval (configs/clip_emoji.ini)

\`scripts/recipes/clip_emoji.sh\`, run on $(date -u +%Y-%m-%d): $(machine).
Trained on $(($(wc -l < "$emoji/recipe_train.tsv") - 1)) pairs (Google-style emoji of the training concepts and the Tux Paint stamps) in $(printf %.0f "$train_s") s.
A caption matches every image of its concept (an emoji's skin tones and genders are one concept); chance is the R@k of a random ranking with those matches.

| evaluation set | pairs | I2T R@1 | I2T R@5 | T2I R@1 | T2I R@5 | chance R@1 / R@5 | T2I R@5 / chance | I2T R@1 / chance |
|---|---|---|---|---|---|---|---|---|
$(line "$run/heldout.json" "held-out concepts, Google style (never seen)")
$(line "$run/twitter.json" "training concepts, Twitter style (unseen style)")

<details><summary>vlpeval's JSON</summary>

\`\`\`json
$(cat "$run/heldout.json")
$(cat "$run/twitter.json")
\`\`\`
</details>
MD
results_section clip_emoji "$body"
rm -f "$body"
