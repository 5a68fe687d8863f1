#!/usr/bin/env bash
# Runs the Python side of the caption metrics test live: a fresh corpus and
# its scores from tests/caption_metrics_ref.py (standard library only), then
# the C test's reference case on it.
#   caption_metrics_python.sh TEST_CAPTION_METRICS SRC
set -euo pipefail
bin=$1 src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$src/tests/caption_metrics_ref.py" --seed 1 -n 60 -o "$dir/caption_metrics.json"
VLP_CAPTION_METRICS_GOLDEN=$dir/caption_metrics.json CK_RUN_CASE=reference "$bin"
