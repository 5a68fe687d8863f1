#!/usr/bin/env bash
# Prepares the composite scenes with masks in data/scenes/ (zero-shot
# segmentation): vlpdata scenes (build/, or VLP_BUILD's) draws the cut-outs of
# scripts/data/scene_classes.tsv (Tux Paint stamps and emoji, from
# data/tuxpaint and data/emoji, prepared first if missing) on the
# photographs of Debian's tuxpaint-data (/usr/share/tuxpaint/templates,
# installed if missing) and on plain colours, seed 1. Safe to rerun: a
# finished preparation is only checked again, unless --force; a changed
# spec, generator or package version prepares it again.
#   scripts/data/scenes.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
VLP_WHO=scenes
source scripts/data/lib.sh
parse_args "$@"

SEED=1 SIZE=128 TRAIN=8000 VAL=1000 UNSEEN=1000
SPEC=scripts/data/scene_classes.tsv BACKGROUNDS=/usr/share/tuxpaint/templates OUT=data/scenes

need_debs tuxpaint-data
[ -x "$VLPDATA" ] || { echo "scenes: $VLPDATA is missing: run scripts/setup.sh first" >&2; exit 1; }
[ -f data/tuxpaint/.prepared ] || scripts/data/tuxpaint.sh
[ -f data/emoji/.prepared ] || scripts/data/emoji.sh

# What the scenes are made from: any change prepares them again.
stamp="seed=$SEED size=$SIZE counts=$TRAIN,$VAL,$UNSEEN
tuxpaint-data=$(deb_version tuxpaint-data) tuxpaint-stamps-default=$(deb_version tuxpaint-stamps-default)
emoji: $(head -c 200 data/emoji/.prepared | tr '\n' ' ')
spec=$(sha1sum <"$SPEC" | cut -c1-16) generator=$(cat src/data/scenes.c src/data/scenes.h | sha1sum | cut -c1-16)"

# check: every manifest row's image and mask exist; row counts as asked.
check() {
  local split want rows missing
  for split in train:$TRAIN val:$VAL unseen:$UNSEEN; do
    want=${split#*:} split=${split%%:*}
    rows=$(($(wc -l <"$OUT/$split.tsv") - 1))
    [ "$rows" = "$want" ] || { echo "scenes: $OUT/$split.tsv has $rows rows, not $want" >&2; return 1; }
    missing=$(tail -n +2 "$OUT/$split.tsv" | cut -f1,3 | tr '\t' '\n' | sed "s|^|$OUT/|" |
              xargs -d '\n' ls 2>&1 >/dev/null | head -n1 || true)
    [ -z "$missing" ] || { echo "scenes: $missing" >&2; return 1; }
  done
  [ "$(wc -l <"$OUT/classes.txt")" -ge 2 ]
}

start=$SECONDS
if [ -z "${VLP_FORCE:-}" ] && [ -f "$OUT/.prepared" ] && [ "$(cat "$OUT/.prepared")" = "$stamp" ] && check; then
  echo "scenes: $OUT is prepared ($OUT/.prepared) and checked"
else
  rm -rf "$OUT.tmp" "$OUT"
  "$VLPDATA" scenes "$SPEC" -o "$OUT.tmp" --root data --backgrounds "$BACKGROUNDS" --seed $SEED \
    --size $SIZE --train $TRAIN --val $VAL --unseen $UNSEEN | sed "s/^vlpdata/scenes/"
  mv "$OUT.tmp" "$OUT"
  check
  printf '%s\n' "$stamp" >"$OUT/.prepared"
fi
pack "$OUT/train.tsv" 64
classes=$(($(wc -l <"$OUT/classes.tsv") - 1)) unseen=$(grep -c $'\tunseen\t' "$OUT/classes.tsv")
echo "scenes: $TRAIN train / $VAL val / $UNSEEN unseen-class scenes of ${SIZE}x$SIZE with masks, $classes classes ($unseen unseen), $(grep -c . "$OUT/backgrounds.tsv" | awk '{print $1-1}') photographs, in $((SECONDS - start)) s"
