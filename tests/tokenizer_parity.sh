#!/usr/bin/env bash
# ctest's tokenizer_parity_python: writes varied captions, a Unicode sweep and
# hostile strings for CLIP's text cleaning (tests/tokenizer_captions.py), then
# (1) encodes each file with CLIP's own merges in vlptok and scripts/bpe_ref.py
# (which cleans with Python's html.unescape, regex and str.lower) and (2) runs
# scripts/check_tokenizer_parity.sh on them (learned merges, truncation, decoding).
# Fails on any difference or an empty file. Exits 77, "skipped", only when
# /usr/bin/python3 cannot import regex.
#   tokenizer_parity.sh VLPTOK SRC
set -euo pipefail
bin=$1 src=$2
/usr/bin/python3 -c 'import regex' 2>/dev/null || { echo "python3-regex missing for /usr/bin/python3"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$src/tests/tokenizer_captions.py" "$dir"

clip=$src/tests/data/clip/bpe_simple_vocab_16e6.txt.gz
max=$(sed -n 's/^#define VLP_TOKENIZER_CLIP_MERGES \([0-9]*\)$/\1/p' "$src/src/data/tokenizer.h")
status=0
# hostile_bytes.txt is not UTF-8, which CLIP cannot take: both sides keep
# such bytes by the surrogateescape convention, and that is what is compared.
for f in captions unicode hostile hostile_bytes; do
  "$bin" encode --merges "$clip" --max-merges "$max" <"$dir/$f.txt" >"$dir/c.ids"
  /usr/bin/python3 "$src/scripts/bpe_ref.py" encode "$clip" --max-merges "$max" <"$dir/$f.txt" >"$dir/py.ids"
  lines=$(wc -l <"$dir/$f.txt")
  differ=$(diff "$dir/c.ids" "$dir/py.ids" | grep -c '^<' || true)
  [ "$(wc -l <"$dir/c.ids")" = "$lines" ] && [ "$(wc -l <"$dir/py.ids")" = "$lines" ] || differ=$((differ > 0 ? differ : 1))
  echo "CLIP's merges: $f.txt: $lines lines compared, $((lines - differ)) equal, $differ differ"
  if [ "$differ" != 0 ] || [ "$lines" = 0 ]; then
    status=1
    diff "$dir/c.ids" "$dir/py.ids" | head -n 6 || true
  fi
done

# 600 stops at the vocabulary size; 100000 runs until no pair occurs twice.
VLPTOK=$bin "$src/scripts/check_tokenizer_parity.sh" --vocab-size 600 --vocab-size 100000 \
  --also "$dir/unicode.txt" --also "$dir/hostile.txt" --also "$dir/hostile_bytes.txt" "$dir/captions.txt" || status=1
exit $status
