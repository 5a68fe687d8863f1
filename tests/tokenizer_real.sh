#!/usr/bin/env bash
# Tokenizer parity on every caption of the real datasets (scripts/data/*.sh):
# vlptok and scripts/bpe_ref.py learn the same merges and give the same ids.
# Exits 77 (skipped) when no dataset has been prepared in data/.
#   tokenizer_real.sh SRC BUILD
set -euo pipefail
src=$1 build=$2
# The manifests scripts/data/*.sh write (recipes write others beside them).
manifests=$(ls "$src"/data/fmnist/{train,test}.tsv "$src"/data/emoji/{google,twitter}_{train,val}.tsv \
  "$src"/data/tuxpaint/all.tsv 2>/dev/null || true)
[ -n "$manifests" ] || { echo "no dataset in $src/data: run scripts/data/all.sh"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for m in $manifests; do
  /usr/bin/python3 -c 'import csv, sys
rows = csv.reader(open(sys.argv[1], encoding="utf-8"), delimiter="\t")
col = next(rows).index("title")
for row in rows: print(row[col])' "$m"
done > "$dir/captions.txt"
echo "$(wc -l < "$dir/captions.txt") captions from: $(echo $manifests | tr ' ' '\n' | sed "s|$src/||" | tr '\n' ' ')"
VLPTOK="$build/vlptok" "$src/scripts/check_tokenizer_parity.sh" --vocab-size 1024 "$dir/captions.txt"
