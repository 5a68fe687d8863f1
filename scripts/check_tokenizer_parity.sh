#!/usr/bin/env bash
# Tokenizer parity: vlptok (C) and scripts/bpe_ref.py (Python) must train
# byte-identical merges files on a caption file and encode every line to the
# same ids. Not a speed benchmark: the Python trainer is deliberately naive.
#   scripts/check_tokenizer_parity.sh [--vocab-size N]... [--also TEXT.txt]... CAPTIONS.txt
# --vocab-size may repeat (default 1024); --also adds files that are only
# encoded. Ids are compared unpadded and with context length 16 (truncation),
# and decoding the ids must give the words bpe_ref.py finds, space-separated.
# Exits 1 on any difference. VLPTOK names the vlptok binary (default build/vlptok).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vlptok=${VLPTOK:-$root/build/vlptok}
ref=(/usr/bin/python3 "$root/scripts/bpe_ref.py") # Debian's python, which has python3-regex
sizes=() also=() captions=
while (($#)); do
  case "$1" in
    --vocab-size) sizes+=("$2"); shift 2 ;;
    --also) also+=("$2"); shift 2 ;;
    -*) echo "check_tokenizer_parity.sh: unknown option $1" >&2; exit 2 ;;
    *) [ -z "$captions" ] || { echo "check_tokenizer_parity.sh: one caption file only" >&2; exit 2; }
       captions=$1; shift ;;
  esac
done
[ -n "$captions" ] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
((${#sizes[@]})) || sizes=(1024)
[ -x "$vlptok" ] || { echo "check_tokenizer_parity.sh: no vlptok at $vlptok (build first, or set VLPTOK)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

status=0
for size in "${sizes[@]}"; do
  t0=$(now)
  "$vlptok" train --vocab-size "$size" "$captions" -o "$tmp/c.bpe" >/dev/null
  t1=$(now)
  "${ref[@]}" train --vocab-size "$size" "$captions" -o "$tmp/py.bpe" >/dev/null
  t2=$(now)
  merges=$(($(wc -l <"$tmp/c.bpe") - 1))
  if cmp -s "$tmp/c.bpe" "$tmp/py.bpe"; then
    echo "vocab-size $size: merges files identical, $merges merges (vlptok $(secs "$t0" "$t1") s, bpe_ref.py $(secs "$t1" "$t2") s)"
  else
    echo "vocab-size $size: merges files DIFFER (vlptok $merges lines, bpe_ref.py $(($(wc -l <"$tmp/py.bpe") - 1))); first differences:"
    diff "$tmp/c.bpe" "$tmp/py.bpe" | head -n 10 || true
    status=1
  fi
  # Encode with vlptok's merges on both sides, so a training difference does
  # not hide (or cause) an encoding one.
  for file in "$captions" "${also[@]}"; do
    for context in none 16; do
      opt=()
      [ "$context" = none ] || opt=(--context-length "$context")
      "$vlptok" encode --merges "$tmp/c.bpe" "${opt[@]}" <"$file" >"$tmp/c.ids"
      "${ref[@]}" encode "$tmp/c.bpe" "${opt[@]}" <"$file" >"$tmp/py.ids"
      lines=$(wc -l <"$tmp/c.ids")
      differ=$(diff "$tmp/c.ids" "$tmp/py.ids" | grep -c '^<' || true)
      [ "$(wc -l <"$tmp/py.ids")" = "$lines" ] || differ=$((differ > 0 ? differ : 1))
      echo "vocab-size $size: $(basename "$file"), context $context: $lines lines encoded, $differ differ"
      if [ "$differ" != 0 ]; then
        status=1
        diff "$tmp/c.ids" "$tmp/py.ids" | head -n 6 || true
      fi
    done
    "$vlptok" encode --merges "$tmp/c.bpe" <"$file" | "$vlptok" decode --merges "$tmp/c.bpe" >"$tmp/c.txt"
    "${ref[@]}" words <"$file" >"$tmp/py.txt"
    differ=$(diff "$tmp/c.txt" "$tmp/py.txt" | grep -c '^<' || true)
    echo "vocab-size $size: $(basename "$file"), decoded: $(wc -l <"$tmp/c.txt") lines, $differ differ from the words"
    if [ "$differ" != 0 ]; then
      status=1
      diff "$tmp/c.txt" "$tmp/py.txt" | head -n 6 || true
    fi
  done
done
if ((status)); then echo "tokenizer parity: FAILED"; else echo "tokenizer parity: ok"; fi
exit $status
