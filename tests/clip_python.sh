#!/usr/bin/env bash
# Runs the PyTorch side of the CLIP tests live (needs Debian's python3-torch
# and python3-h5py; exits 77, "skipped", without them).
#   clip_python.sh golden  TEST_CLIP SRC   regenerate both golden files, compare
#   clip_python.sh interop TEST_CLIP SRC   state_dict -> HDF5 -> vlp -> HDF5 -> state_dict
set -euo pipefail
mode=$1 bin=$2 src=$3
/usr/bin/python3 -c 'import torch, h5py' 2>/dev/null || { echo "python3-torch or python3-h5py missing"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
case "$mode" in
  golden)
    for config in gelu quickgelu; do
      "$src/scripts/clip_ref.py" golden "$config" -o "$dir/clip_$config.h5"
      VLP_CLIP_GOLDEN_DIR=$dir CK_RUN_CASE=golden_$config "$bin"
    done ;;
  interop)
    "$src/scripts/clip_ref.py" state-dict gelu -o "$dir/model.pt" --inputs "$dir/inputs.h5"
    "$src/scripts/convert_state_dict.py" to-h5 "$dir/model.pt" "$dir/model.h5"
    VLP_CLIP_INTEROP_DIR=$dir CK_RUN_CASE=interop "$bin"
    "$src/scripts/convert_state_dict.py" to-pt "$dir/model_vlp.h5" "$dir/back.pt"
    "$src/scripts/clip_ref.py" check "$dir/back.pt" "$dir/inputs.h5" ;;
  *) echo "usage: clip_python.sh golden|interop TEST_CLIP SRC" >&2; exit 2 ;;
esac
