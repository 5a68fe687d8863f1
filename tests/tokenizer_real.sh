#!/usr/bin/env bash
# Tokenizer parity on every caption of the real datasets (scripts/data/*.sh):
# with CLIP's own merges, vlptok and scripts/bpe_ref.py (CLIP's cleaning done
# by Python's html.unescape, regex and str.lower) give the same ids; and both
# learn the same merges from the captions. Fails on any difference, and when
# no caption was compared (data/ not prepared: run scripts/data/all.sh).
# Exits 77 (skipped) only when /usr/bin/python3 cannot import regex.
#   tokenizer_real.sh SRC BUILD
set -euo pipefail
src=$1 build=$2
/usr/bin/python3 -c 'import regex' 2>/dev/null || { echo "python3-regex missing for /usr/bin/python3"; exit 77; }
# The manifests scripts/data/*.sh write (recipes write others beside them).
manifests=$(ls "$src"/data/fmnist/{train,test}.tsv "$src"/data/emoji/{google,twitter}_{train,val}.tsv \
  "$src"/data/tuxpaint/all.tsv "$src"/data/scenes/{train,val,unseen}.tsv 2>/dev/null || true)
[ -n "$manifests" ] || { echo "FAILED: no dataset in $src/data, so no caption to compare: run scripts/data/all.sh"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for m in $manifests; do
  /usr/bin/python3 -c 'import csv, sys
rows = csv.reader(open(sys.argv[1], encoding="utf-8"), delimiter="\t")
col = next(rows).index("title")
for row in rows: print(row[col])' "$m"
done > "$dir/captions.txt"
echo "$(wc -l < "$dir/captions.txt") captions from: $(echo $manifests | tr ' ' '\n' | sed "s|$src/||" | tr '\n' ' ')"

# CLIP's tokenizer reads the first 48894 merges of its file.
clip=$src/tests/data/clip/bpe_simple_vocab_16e6.txt.gz
max=$(sed -n 's/^#define VLP_TOKENIZER_CLIP_MERGES \([0-9]*\)$/\1/p' "$src/src/data/tokenizer.h")
"$build/vlptok" encode --merges "$clip" --max-merges "$max" <"$dir/captions.txt" >"$dir/c.ids"
/usr/bin/python3 "$src/scripts/bpe_ref.py" encode "$clip" --max-merges "$max" <"$dir/captions.txt" >"$dir/py.ids"
compared=$(wc -l <"$dir/captions.txt")
distinct=$(sort -u "$dir/captions.txt" | wc -l)
differ=$(diff "$dir/c.ids" "$dir/py.ids" | grep -c '^<' || true)
[ "$(wc -l <"$dir/c.ids")" = "$compared" ] && [ "$(wc -l <"$dir/py.ids")" = "$compared" ] || differ=$((differ > 0 ? differ : 1))
echo "CLIP's merges ($max): $compared captions compared ($distinct distinct), $((compared - differ)) equal, $differ differ"
status=0
if [ "$differ" != 0 ]; then
  status=1
  paste -d '\n' "$dir/captions.txt" "$dir/c.ids" "$dir/py.ids" | paste - - - |
    awk -F '\t' '$2 != $3 { print "caption: " $1 "\n  vlptok:     " $2 "\n  bpe_ref.py: " $3; if (++n == 5) exit }'
fi
[ "$compared" -gt 0 ] || { echo "FAILED: no caption compared"; status=1; }

# Learned merges: vlptok's trainer against the Python one on the same captions.
VLPTOK="$build/vlptok" "$src/scripts/check_tokenizer_parity.sh" --vocab-size 1024 "$dir/captions.txt" || status=1
exit $status
