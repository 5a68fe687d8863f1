#!/usr/bin/env bash
# ctest's tokenizer_parity_python: writes varied captions and a Unicode sweep
# (tests/tokenizer_captions.py) and runs scripts/check_tokenizer_parity.sh on
# them. Exits 77, "skipped", only when /usr/bin/python3 cannot import regex.
#   tokenizer_parity.sh VLPTOK SRC
set -euo pipefail
bin=$1 src=$2
/usr/bin/python3 -c 'import regex' 2>/dev/null || { echo "python3-regex missing for /usr/bin/python3"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$src/tests/tokenizer_captions.py" "$dir"
# 600 stops at the vocabulary size; 100000 runs until no pair occurs twice.
VLPTOK=$bin "$src/scripts/check_tokenizer_parity.sh" --vocab-size 600 --vocab-size 100000 \
  --also "$dir/unicode.txt" "$dir/captions.txt"
