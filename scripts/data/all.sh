#!/usr/bin/env bash
# Prepares every dataset in data/ (Fashion-MNIST, emoji, Tux Paint stamps, and
# the composite scenes with masks made from the last two) by running
# scripts/data/{fmnist,emoji,tuxpaint,scenes}.sh in turn, then repeats their
# summary lines. Options (--force) are passed to each. Stops at the first failure.
#   scripts/data/all.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
summaries=()
start=$SECONDS
names=(fmnist emoji tuxpaint scenes)
for name in "${names[@]}"; do
  scripts/data/$name.sh "$@" | tee "$log"
  summaries+=("$(tail -n1 "$log")")
done
echo "all.sh: prepared ${#names[@]} datasets in $((SECONDS - start)) s:"
printf '  %s\n' "${summaries[@]}"
