#!/usr/bin/env bash
# Runs the PyTorch side of the GroupViT parity test live: regenerates the
# golden file with scripts/groupvit_ref.py and compares test_groupvit with
# it (needs Debian's python3-torch and python3-h5py; exits 77, "skipped",
# without them).
#   groupvit_python.sh TEST_GROUPVIT SRC
set -euo pipefail
bin=$1 src=$2
/usr/bin/python3 -c 'import torch, h5py' 2>/dev/null || { echo "python3-torch or python3-h5py missing"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$src/scripts/groupvit_ref.py" golden -o "$dir/groupvit_tiny.h5"
VLP_GROUPVIT_GOLDEN_DIR=$dir CK_RUN_CASE=golden "$bin"
