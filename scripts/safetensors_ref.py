#!/usr/bin/python3
"""A small safetensors reader and writer in NumPy, written from the format's
documentation (no safetensors package in Debian), for scripts/pretrained_ref.py.

  safetensors_ref.py dump FILE      list the header: name, dtype, shape, offsets

Format: 8 bytes little-endian unsigned header length N, N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}, then the data; offsets are relative to the end of the header,
tensors little-endian, C order. The writer does what the reference (Rust)
writer does: compact JSON, "__metadata__" first, tensors sorted by dtype
(larger in the reference's enum order first) then by name, stored in that
order contiguously, header padded with spaces to a multiple of 8. The reader
treats the file as hostile: every number is checked before it is used, and
the tensors must tile the data exactly (no gap, no overlap, nothing after).
"""
import json
import math
import os
import sys

import numpy as np

# The dtypes this module knows, in the reference's enum order (its sort key),
# with their NumPy storage types. BF16 is kept as its 16 raw bits.
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
          "BF16": "<u2", "I32": "<i4", "U32": "<u4", "F32": "<f4", "F64": "<f8", "I64": "<i8",
          "U64": "<u8"}
ORDER = {name: i for i, name in enumerate(DTYPES)}
MAX_HEADER = 100 << 20  # the reference reader's limit


class FormatError(ValueError):
    pass


def bf16_bits(x):
    """float32 array -> BF16 bits (uint16), rounded to nearest even (NaN kept quiet)."""
    x = np.asarray(x, dtype=np.float32)
    b = np.array(x, dtype="<f4", ndmin=1).view("<u4").astype(np.uint64)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    nan = np.isnan(x).reshape(b.shape)
    rounded[nan] = (b[nan] >> 16) | 0x40
    return rounded.astype("<u2").reshape(x.shape)


def bf16_to_f32(bits):
    a = np.array(bits, dtype=np.uint32, ndmin=1) << 16
    return a.view(np.float32).reshape(np.shape(bits))


def round_to(x, dtype):
    """float32 array -> the float32 values that storing it as dtype keeps."""
    x = np.asarray(x, dtype=np.float32)
    if dtype == "F32":
        return x
    if dtype == "F16":
        return x.astype("<f2").astype(np.float32)
    if dtype == "BF16":
        return bf16_to_f32(bf16_bits(x))
    raise ValueError(f"not a float dtype: {dtype}")


def encode(x, dtype):
    """An array as the bytes of dtype (floats rounded to nearest even)."""
    if dtype == "BF16":
        return bf16_bits(x).tobytes()
    return np.ascontiguousarray(x, dtype=DTYPES[dtype]).tobytes()


def write(path, tensors, metadata=None):
    """tensors: {name: (dtype, array)}; metadata: {str: str} or None."""
    items = []
    for name, (dtype, arr) in tensors.items():
        if dtype not in DTYPES:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        arr = np.asarray(arr)
        items.append((name, dtype, list(arr.shape), arr))
    items.sort(key=lambda t: (-ORDER[t[1]], t[0].encode("utf-8")))
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    for name, dtype, shape, _ in items:
        n = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    buf = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    buf += b" " * (-len(buf) % 8)
    with open(path, "wb") as f:
        f.write(len(buf).to_bytes(8, "little"))
        f.write(buf)
        for name, dtype, shape, arr in items:
            f.write(encode(arr, dtype))
    return 8 + len(buf) + offset


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise FormatError(f"duplicate key {k!r} in the header")
        out[k] = v
    return out


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def read_header(path):
    """Checked header: (entries {name: (dtype, shape, begin, end)} in file
    order, metadata dict or None, absolute offset of the data)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FormatError(f"{path}: {size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER or n > size - 8:
            raise FormatError(f"{path}: header length {n} does not fit the file ({size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"{path}: header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and
                                     all(isinstance(v, str) for v in metadata.values())):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    data_len = size - 8 - n
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"{path}: {name}: expected exactly dtype, shape, data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPES:
            raise FormatError(f"{path}: {name}: unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_int(d) and 0 <= d < 1 << 62 for d in shape):
            raise FormatError(f"{path}: {name}: bad shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)
                and 0 <= offs[0] <= offs[1] <= data_len):
            raise FormatError(f"{path}: {name}: data_offsets {offs!r} outside the {data_len} data bytes")
        want = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if offs[1] - offs[0] != want:
            raise FormatError(f"{path}: {name}: {offs[1] - offs[0]} bytes for {dtype} {shape} ({want} needed)")
        entries.append((name, dtype, tuple(shape), offs[0], offs[1]))
    entries.sort(key=lambda e: (e[3], e[4]))
    pos = 0
    for name, _, _, begin, end in entries:
        if begin != pos:
            raise FormatError(f"{path}: {name}: starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != data_len:
        raise FormatError(f"{path}: tensors end at {pos}, the data has {data_len} bytes")
    return {e[0]: e[1:] for e in entries}, metadata, 8 + n


def read(path, float32=True):
    """{name: (dtype, array)}, metadata. With float32, F16/BF16/F32 tensors are
    returned as float32 arrays holding exactly the stored values."""
    entries, metadata, base = read_header(path)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, (dtype, shape, begin, end) in entries.items():
        arr = np.frombuffer(mm[base + begin:base + end], dtype=DTYPES[dtype]).reshape(shape)
        if float32 and dtype == "BF16":
            arr = bf16_to_f32(arr).reshape(shape)
        elif float32 and dtype in ("F16", "F32"):
            arr = arr.astype(np.float32)
        else:
            arr = arr.copy()
        out[name] = (dtype, arr)
    del mm
    return out, metadata


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "dump":
        sys.exit(__doc__.split("\n\n")[1])
    entries, metadata, base = read_header(sys.argv[2])
    print(f"header {base - 8} bytes; metadata {json.dumps(metadata)}")
    for name, (dtype, shape, begin, end) in entries.items():
        print(f"{name}\t{dtype}\t{list(shape)}\t[{begin}, {end}]")


if __name__ == "__main__":
    main()
