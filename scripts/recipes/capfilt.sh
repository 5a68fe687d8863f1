#!/usr/bin/env bash
# Recipe: CapFilt (BLIP's captioner and filter) on emoji captions of which
# 30% were replaced by captions of other concepts. BLIP's bootstrap: a tiny
# BLIP pre-trained on the noisy set, fine-tuned on the clean, human-written
# Tux Paint descriptions (one model, all three losses: it is both captioner
# and filter), vlpfilter on the noisy set; how many corrupted pairs it drops
# and clean ones it keeps, at several thresholds; then tiny CLIPs trained
# with the same config and steps on the noisy and on the cleaned sets (three
# seeds each), compared on retrieval of the held-out concepts. Writes
# docs/results.md.
#   scripts/recipes/capfilt.sh   (data: scripts/data/emoji.sh, scripts/data/tuxpaint.sh)
# A finished training run under runs/capfilt/ is reused; rm -rf runs/capfilt to start over.
source "$(dirname "$0")/lib.sh"
dir=runs/capfilt emoji=data/emoji
mkdir -p "$dir"
[ -f data/tuxpaint/all.h5 ] || "$bin/vlpdata" pack data/tuxpaint/all.tsv -o data/tuxpaint/all.h5 --size 64

# 1. The noisy training set: 30% of Google-style emoji training captions
#    replaced by another concept's. Tux Paint stays clean (fine-tuning).
/usr/bin/python3 scripts/recipes/corrupt_captions.py "$emoji/google_train.tsv" "$dir/noisy.tsv" \
  "$dir/corrupted.tsv" --fraction 0.3 --seed 0
"$bin/vlpdata" pack "$dir/noisy.tsv" -o "$dir/noisy.h5" --size 64

# 2. Pre-train BLIP on the noisy set; 3. fine-tune it on the Tux Paint stamps.
train "$dir/blip_noisy" configs/capfilt_blip.ini
train "$dir/blip_tux" configs/capfilt_blip.ini --set train.init="$PWD/$dir/blip_noisy" \
  --set data.train="$PWD/data/tuxpaint/all.h5" --set train.epochs=1 --set optim.lr=2e-4 \
  --set optim.warmup=5

# 4. Filter, at the match probability where the ITM's evidence favours
#    neither match nor mismatch (likelihood ratio 1): it saw one matched pair
#    in three in training (each positive with two negatives), so that is 1/3,
#    not BLIP's 0.5 (the ITM of a tiny BLIP is far from sure; at 0.5 it drops
#    most clean pairs). Two filters: the fine-tuned model as captioner and
#    filter (BLIP's bootstrap), and the pre-trained model's ITM alone, which
#    separates the corrupted pairs better (the Tux Paint stamps are another
#    domain).
threshold=0.333333
nice "$bin/vlpfilter" "$dir/blip_tux" "$dir/noisy.tsv" -o "$dir/cleaned_tux.tsv" --report "$dir/report.tsv" \
  --threshold $threshold --seed 0 | tee "$dir/filter.log"
nice "$bin/vlpfilter" "$dir/blip_noisy" "$dir/noisy.tsv" -o "$dir/cleaned.tsv" \
  --report "$dir/report_pretrained.tsv" --threshold $threshold --no-synthetic | tee -a "$dir/filter.log"

# 5. CLIPs with one config, one tokenizer (the pre-trained BLIP's, learned
#    from the noisy captions) and the same steps, three seeds each (one
#    seed's R@1 varies by +-1-2 points); none on an empty set.
for set in noisy cleaned_tux cleaned; do
  [ "$(wc -l < "$dir/$set.tsv")" -gt 1 ] || continue
  "$bin/vlpdata" pack "$dir/$set.tsv" -o "$dir/$set.h5" --size 64
  for seed in 0 1 2; do
    run=$dir/clip_${set}_s$seed
    train "$run" configs/capfilt_clip.ini --set data.train="$PWD/$dir/$set.h5" \
      --set data.tokenizer="$PWD/$dir/blip_noisy/tokenizer.bpe" --set train.seed=$seed
    nice "$bin/vlpeval" "$run" "$emoji/google_val.h5" --retrieval --match concept --json "$run.json" \
      > /dev/null
  done
done

body=$(mktemp)
/usr/bin/python3 scripts/recipes/capfilt_report.py "$dir" "$threshold" "$(machine)" > "$body"
cat "$body"
results_section capfilt "$body"
rm -f "$body"
