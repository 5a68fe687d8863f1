#!/usr/bin/python3
"""Converts model weights between PyTorch and vlp.

  convert_state_dict.py to-h5 MODEL.pt OUT.h5   an OpenCLIP-style state_dict
      (or a checkpoint holding one under "state_dict"; a DDP "module." prefix
      is dropped) to vlp's HDF5 model file: one float32 dataset per tensor,
      named by its state_dict key.
  convert_state_dict.py to-pt MODEL.h5 OUT.pt   the reverse; vlp stores
      OpenCLIP's 0-d tensors (logit_scale) with shape (1,), made 0-d again.

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py).
"""
import sys

import h5py
import numpy as np
import torch

ZERO_DIM = {"logit_scale", "logit_bias"}


def to_h5(src, dst):
    state = torch.load(src, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    with h5py.File(dst, "w") as f:
        for name, t in state.items():
            if name.startswith("module."):
                name = name[len("module."):]
            f.create_dataset(name, data=t.detach().float().numpy())
    print(f"convert_state_dict: {len(state)} tensors from {src} to {dst}")


def to_pt(src, dst):
    state = {}
    with h5py.File(src, "r") as f:
        for name in f:
            t = torch.from_numpy(np.array(f[name]))
            state[name] = t.reshape(()) if name in ZERO_DIM else t
    torch.save(state, dst)
    print(f"convert_state_dict: {len(state)} tensors from {src} to {dst}")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("to-h5", "to-pt"):
        print(__doc__, file=sys.stderr)
        return 2
    (to_h5 if sys.argv[1] == "to-h5" else to_pt)(sys.argv[2], sys.argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
