#!/usr/bin/env bash
# Recipe: a tiny BLIP (configs/blip_emoji.ini) trained from scratch with ITC,
# ITM and the captioning LM on the Google-style emoji of the training
# concepts plus a seeded training split of the Tux Paint stamps, then
# fine-tuned with the LM alone on VQA-style rows (configs/blip_vqa.ini);
# measures captioning (BLEU-4, CIDEr-D; greedy, beam search and the
# nearest-neighbour baseline) on the held-out emoji concepts and the
# held-out stamps, VQA-style answer accuracy beside the majority answer,
# and retrieval with ITC alone and with ITM re-ranking; writes the numbers
# to docs/results.md.
#   scripts/recipes/blip_tiny.sh                  (data: scripts/data/emoji.sh, scripts/data/tuxpaint.sh)
#   scripts/recipes/blip_tiny.sh --measure-only   (the runs of an earlier invocation, measured again)
# VLP_BUILD=DIR takes the programs from DIR instead of build/.
source "$(dirname "$0")/lib.sh"
run=runs/blip_emoji vqa=runs/blip_vqa emoji=data/emoji tux=data/tuxpaint
rerank=10
if [ "${1:-}" != --measure-only ]; then
  /usr/bin/python3 scripts/recipes/blip_data.py "$emoji" "$tux" --seed 0
  $bin/vlpdata pack "$emoji/blip_train.tsv" -o "$emoji/blip_train.h5" --size 64
  $bin/vlpdata pack "$emoji/vqa_train.tsv" -o "$emoji/vqa_train.h5" --size 64
  rm -rf "$run" "$vqa"
  $bin/vlptrain configs/blip_emoji.ini
  $bin/vlptrain configs/blip_vqa.ini
fi
out=$run/measure
rm -rf "$out" && mkdir -p "$out/vqa"
start=$(date +%s.%N)
# Captioning: the model's decoders and the caption of the nearest training image.
for set in emoji:$emoji/google_val.h5 tux:$tux/tux_val.tsv; do
  name=${set%%:*} data=${set#*:}
  $bin/vlpcaption "$run" "$data" --score --batch 64 --method greedy -o "$out/${name}_greedy.json"
  $bin/vlpcaption "$run" "$data" --score --batch 64 --method beam -o "$out/${name}_beam.json"
  $bin/vlpcaption "$run" "$data" --score --batch 64 --nearest "$emoji/blip_train.h5" -o "$out/${name}_nearest.json"
done
# Retrieval of the held-out concepts: ITC, and ITC's top $rerank re-ranked by ITC + ITM.
$bin/vlpeval "$run" "$emoji/google_val.h5" --retrieval --match concept --rerank $rerank --json "$out/rerank.json"
# VQA-style: each question of the held-out rows as the prompt, greedy answers.
/usr/bin/python3 scripts/recipes/blip_vqa.py split "$emoji/vqa_val.tsv" "$out/vqa"
while IFS=$'\t' read -r i question; do
  $bin/vlpcaption "$vqa" "$out/vqa/question_$i.tsv" --prompt "$question" --method greedy --min-length 0 \
    --batch 64 -o "$out/vqa/answers_$i.json"
done < "$out/vqa/questions.tsv"
/usr/bin/python3 scripts/recipes/blip_vqa.py score "$emoji/vqa_train.tsv" "$emoji/vqa_val.tsv" "$out/vqa" "$out/vqa.json"
measure_s=$(echo "$(date +%s.%N) - $start" | bc)
# A run's last logged training step: its number, or its elapsed seconds.
last() { /usr/bin/python3 -c 'import json,sys; print(round([j for j in map(json.loads, open(sys.argv[1])) if "elapsed_s" in j][-1][sys.argv[2]]))' "$1/metrics.jsonl" "$2"; }

tables=$(/usr/bin/python3 - "$out" <<'PY'
import json, sys
d = sys.argv[1]
j = lambda name: json.load(open(f"{d}/{name}.json"))
print("| held-out set | images | method | BLEU-4 | CIDEr-D |\n|---|---|---|---|---|")
for name, label in (("emoji", "emoji, held-out concepts (Google style)"), ("tux", "Tux Paint, held-out stamps")):
    for method, how in (("greedy", "greedy"), ("beam", "beam search (3 beams)"),
                        ("nearest", "baseline: caption of the nearest training image by ITC")):
        m = j(f"{name}_{method}")["metrics"]
        print(f"| {label} | {m['images']} | {how} | {m['bleu4']:.4f} | {m['cider_d']:.4f} |")
r = j("rerank")["retrieval"]; rr = r["rerank"]
pc = lambda x: f"{100 * x:.2f}%"
print(f"\n| held-out emoji retrieval | I2T R@1 | I2T R@5 | I2T R@10 | T2I R@1 | T2I R@5 | T2I R@10 |\n|---|---|---|---|---|---|---|")
print(f"| ITC | {pc(r['i2t_r1'])} | {pc(r['i2t_r5'])} | {pc(r['i2t_r10'])} | {pc(r['t2i_r1'])} | {pc(r['t2i_r5'])} | {pc(r['t2i_r10'])} |")
print(f"| ITC top {rr['k']} re-ranked by ITC + ITM | {pc(rr['i2t_r1'])} | {pc(rr['i2t_r5'])} | {pc(rr['i2t_r10'])} | {pc(rr['t2i_r1'])} | {pc(rr['t2i_r5'])} | {pc(rr['t2i_r10'])} |")
print(f"| chance | {pc(r['chance_r1'])} | {pc(r['chance_r5'])} | {pc(r['chance_r10'])} | {pc(r['chance_r1'])} | {pc(r['chance_r5'])} | {pc(r['chance_r10'])} |")
v = j("vqa")
print("\n| question type | questions | answer accuracy | majority answer (from training) | its accuracy |\n|---|---|---|---|---|")
for t, x in v["per_type"].items():
    print(f"| {t} | {x['questions']} | {pc(x['accuracy'])} | {x['majority_answer']} | {pc(x['majority_accuracy'])} |")
print(f"| all | {v['questions']} | {pc(v['accuracy'])} | | {pc(v['majority_accuracy'])} |")
print("\nExamples (first three held-out images, greedy and beam):\n")
for name in ("emoji", "tux"):
    g, b = j(f"{name}_greedy")["captions"][:3], j(f"{name}_beam")["captions"][:3]
    for x, y in zip(g, b):
        print(f"- `{x['image'].split('/')[-1]}`: greedy \"{x['caption']}\"; beam \"{y['caption']}\"")
PY
)
body=$(mktemp)
cat > "$body" <<MD
## BLIP: captioning, VQA-style answers, ITM re-ranking (configs/blip_emoji.ini, configs/blip_vqa.ini)

\`scripts/recipes/blip_tiny.sh\`, run on $(date -u +%Y-%m-%d): $(machine).
A tiny BLIP (ViT 32x32/4, width 64, 2 layers; text width 64, 2 layers; 64-d ITC) trained from scratch for $(last "$run" step) steps of 32 with ITC (momentum distillation), ITM (half its negatives hard, half uniform) and the captioning LM (prompt "a picture of") on $(($(wc -l < "$emoji/blip_train.tsv") - 1)) pairs: the Google-style emoji of the training concepts and the training split of the Tux Paint stamps ($(($(wc -l < "$tux/tux_train.tsv") - 1)) stamps; $(($(wc -l < "$tux/tux_val.tsv") - 1)) held out by description, seed 0), in $(last "$run" elapsed_s) s; then fine-tuned with the LM alone for $(last "$vqa" step) steps of 32 on $(($(wc -l < "$emoji/vqa_train.tsv") - 1)) VQA-style rows "question answer" (3 templates each for category, subcategory and skin tone, answers from emoji.json; no prompt, so the question's tokens are scored too) in $(last "$vqa" elapsed_s) s. Measuring took $(printf %.0f "$measure_s") s. The machine was shared with other jobs: times are not benchmarks.

Captioning: references are the held-out images' own captions (emoji: "name: keywords"; Tux Paint: the stamps' descriptions); the nearest-neighbour baseline captions each image with the caption of the training image whose ITC image feature is most similar (\`vlpcaption --nearest\`), scored by the same code. Captions and re-ranking use the captioning model (before the VQA fine-tune); answers use the fine-tuned one, with each question as the prompt and greedy decoding, scored by exact match of the normalised answer (one template drawn per image and type, seed 0).

$tables

<details><summary>the measurements' JSON</summary>

\`\`\`json
$(for f in emoji_greedy emoji_beam emoji_nearest tux_greedy tux_beam tux_nearest; do echo "\"$f\": $(/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["metrics"]))' "$out/$f.json")"; done)
$(cat "$out/rerank.json")
$(cat "$out/vqa.json")
\`\`\`
</details>
MD
results_section blip_tiny "$body"
rm -f "$body"
