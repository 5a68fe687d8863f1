#!/usr/bin/env bash
# Runs the PyTorch side of the BLIP parity test live: regenerates the golden
# file with scripts/blip_ref.py and compares (needs Debian's python3-torch
# and python3-h5py; exits 77, "skipped", without them).
#   blip_python.sh TEST_BLIP SRC
set -euo pipefail
bin=$1 src=$2
/usr/bin/python3 -c 'import torch, h5py' 2>/dev/null || { echo "python3-torch or python3-h5py missing"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$src/scripts/blip_ref.py" golden -o "$dir/blip.h5"
VLP_BLIP_GOLDEN=$dir/blip.h5 CK_RUN_CASE=golden "$bin"
