#!/usr/bin/env bash
# vlp's preprocessing against PIL 9.4 + torchvision 0.14 byte for byte:
# scripts/pil_ref.py plans the cases and writes PIL's uint8 pixels,
# preprocess_compare computes vlp's and fails on any differing byte (naming
# the file, size, mode and first pixel) or when no image was compared.
#   preprocess_pil.sh SOURCE_DIR BUILD_DIR SET
# SET: photos (the JPEG photographs of Debian's tuxpaint-data), synthetic
# (every PNG/JPEG kind, written by pil_ref.py synth), stamps, emoji, fmnist
# (samples of data/, prepared by scripts/data/all.sh; Tux Paint's stamps
# from /usr/share when data/ is missing). Exit 77 (skipped) without
# Debian's python3-pil and python3-torchvision, or without the set's files.
set -euo pipefail
src=$1 build=$2 set=$3
py=/usr/bin/python3
$py -c 'import PIL, torchvision' 2>/dev/null || { echo "skipped: python3-pil and python3-torchvision are not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# every k-th of a sorted list, at most n
sample() { sort | awk -v n="$1" '{a[NR] = $0} END {k = NR > n ? NR / n : 1; for (i = 1; i <= NR && c < n; i += k) {print a[int(i)]; c++}}'; }
case $set in
  photos) { find /usr/share/tuxpaint/templates -name '*.jpg' 2>/dev/null || true; } | sort > "$work/files" ;;
  synthetic) $py "$src/scripts/pil_ref.py" synth "$work"; find "$work" -name '*.png' -o -name '*.jpg' | sort > "$work/files" ;;
  stamps)
    dir=$src/data/tuxpaint/images
    [ -d "$dir" ] || dir=/usr/share/tuxpaint/stamps
    { find "$dir" -name '*.png' 2>/dev/null || true; } | sample 60 > "$work/files" ;;
  emoji) { find "$src/data/emoji" -name '*.png' 2>/dev/null || true; } | sample 20 > "$work/files" ;;
  fmnist) { find "$src/data/fmnist" -name '*.png' 2>/dev/null || true; } | sample 10 > "$work/files" ;;
  *) echo "unknown set $set" >&2; exit 2 ;;
esac
if [ ! -s "$work/files" ]; then echo "skipped: no image of the set '$set' on this machine"; exit 77; fi
echo "$set: $(wc -l < "$work/files") images"
xargs -d '\n' $py "$src/scripts/pil_ref.py" plan < "$work/files" > "$work/cases"
$py "$src/scripts/pil_ref.py" run "$work/cases" | "$build/tests/preprocess_compare" "$work/cases"
