#!/usr/bin/env bash
# Recipe: zero-shot segmentation of composite scenes. Trains the tiny
# GroupViT of configs/groupvit_tiny.ini and, for the dense-CLIP baseline, a
# CLIP of the same size on the same scenes and steps (configs/clip_scenes.ini);
# picks each method's background threshold on 200 training scenes (GroupViT
# names its groups by its own rule: a class probability); then
# vlpsegment scores GroupViT, the oracle foreground and dense CLIP on the
# held-out scenes (all, and by number of objects) and on the unseen-class
# split; and GroupViT again with vlpsegment --naming masked (each group
# named by the image with only its pixels), its threshold picked the same
# way. Writes docs/results.md and a strip of overlays under docs/img/.
#   scripts/recipes/groupvit_scenes.sh   (data: scripts/data/scenes.sh)
# A finished training run is reused; rm -rf runs/groupvit_tiny runs/clip_scenes to start over.
source "$(dirname "$0")/lib.sh"
scenes=data/scenes out=runs/segment
[ -f "$scenes/train.h5" ] || { echo "$scenes/train.h5 is missing: run scripts/data/scenes.sh first" >&2; exit 1; }
mkdir -p "$out"

# The two side by side, one thread each.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
train runs/groupvit_tiny configs/groupvit_tiny.ini &
train runs/clip_scenes configs/clip_scenes.ini &
wait %1
wait %2

# segment SPLIT_TSV OUT [args]: vlpsegment with the recipe's classes and templates.
segment() {
  local images=$1 dir=$2; shift 2
  nice "$bin/vlpsegment" runs/groupvit_tiny "$images" --classes "$scenes/classes.txt" \
    --templates "$scenes/templates.txt" --clip runs/clip_scenes --out "$dir" "$@" > "$dir.log" 2>&1 ||
    { tail -5 "$dir.log" >&2; exit 1; }
}

# 1. Thresholds: each method's best mIoU on the first 200 training scenes;
# GroupViT's a class probability, dense CLIP's a cosine similarity.
gv_grid=(0.1 0.3 0.5 0.7 0.9 0.95) dense_grid=(0.1 0.2 0.3 0.4 0.5 0.6)
rm -rf "$out"/tune_*
for i in "${!gv_grid[@]}"; do
  segment "$scenes/train.tsv" "$out/tune_$i" --threshold "${gv_grid[$i]}" --dense-threshold "${dense_grid[$i]}" \
    --limit 200 --overlays 0
done
for i in "${!gv_grid[@]}"; do
  segment "$scenes/train.tsv" "$out/tune_masked_$i" --naming masked --threshold "${gv_grid[$i]}" --limit 200 \
    --overlays 0
done
read -r g_t d_t m_t < <(/usr/bin/python3 - "$out" <<'PY'
import glob, json, sys
runs = lambda p: [json.load(open(f)) for f in glob.glob(f"{sys.argv[1]}/{p}/miou.json")]
best = lambda rs, m: max(rs, key=lambda r: r["methods"][m]["miou"])
own, masked = runs("tune_[0-9]*"), runs("tune_masked_*")
print(f'{best(own, "groupvit")["threshold"]:g}', f'{best(own, "dense_clip")["dense_threshold"]:g}',
      f'{best(masked, "groupvit")["threshold"]:g}')
PY
)
echo "thresholds: GroupViT $g_t, dense CLIP $d_t, GroupViT with masked naming $m_t"

# 2. Held-out scenes, by number of objects, and the unseen classes.
/usr/bin/python3 - "$scenes" "$out" <<'PY'
import csv, sys
scenes, out = sys.argv[1:]
rows = list(csv.DictReader(open(f"{scenes}/val.tsv"), delimiter="\t"))
for n in (1, 2, 3):
    with open(f"{out}/val_{n}.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, rows[0].keys(), delimiter="\t", lineterminator="\n")
        w.writeheader()
        for r in rows:
            t = r["title"]
            if t.count(", ") + t.count(" and ") + 1 == n:
                # paths stay relative to the scenes folder
                w.writerow({k: (f"../../{scenes}/{v}" if k in ("filepath", "mask") else v) for k, v in r.items()})
PY
segment "$scenes/val.tsv" "$out/val" --threshold "$g_t" --dense-threshold "$d_t" --overlays 16
segment "$scenes/unseen.tsv" "$out/unseen" --threshold "$g_t" --dense-threshold "$d_t" --overlays 8
for n in 1 2 3; do
  segment "$out/val_$n.tsv" "$out/val_$n" --threshold "$g_t" --dense-threshold "$d_t" --overlays 0
done
for split in val unseen val_1 val_2 val_3; do
  list=$out/$split.tsv
  [ "$split" = val ] || [ "$split" = unseen ] && list=$scenes/$split.tsv
  segment "$list" "$out/${split}_masked" --naming masked --threshold "$m_t" --overlays 0
done

# 3. A strip of held-out overlays for docs/.
mkdir -p docs/img/segment
rm -f docs/img/segment/*.png
for f in $(ls "$out/val/overlays" | head -8); do cp "$out/val/overlays/$f" "docs/img/segment/val_$f"; done
for f in $(ls "$out/unseen/overlays" | head -4); do cp "$out/unseen/overlays/$f" "docs/img/segment/unseen_$f"; done

body=$(mktemp)
/usr/bin/python3 scripts/recipes/groupvit_report.py "$out" "$g_t" "$d_t" "$m_t" "$(machine)" > "$body"
cat "$body"
results_section groupvit_scenes "$body"
rm -f "$body"
