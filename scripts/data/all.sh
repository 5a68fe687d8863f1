#!/usr/bin/env bash
# Prepares every dataset in data/ (Fashion-MNIST, emoji, Tux Paint stamps) by
# running scripts/data/{fmnist,emoji,tuxpaint}.sh in turn, then repeats their
# summary lines. Options (--force) are passed to each. Stops at the first failure.
#   scripts/data/all.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
summaries=()
start=$SECONDS
for name in fmnist emoji tuxpaint; do
  scripts/data/$name.sh "$@" | tee "$log"
  summaries+=("$(tail -n1 "$log")")
done
echo "all.sh: prepared 3 datasets in $((SECONDS - start)) s:"
printf '  %s\n' "${summaries[@]}"
