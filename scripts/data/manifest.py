"""Shared helpers of the dataset scripts: TSV manifests, PNG read/write, checks.

Standard library only (run by Debian's /usr/bin/python3). Not a loader: the C
data pipeline reads the manifests; this only writes them and checks them.
Manifest = OpenCLIP's CSV convention with tabs: header `filepath<TAB>title`
(+ integer columns), filepath relative to the manifest's folder.
"""
import csv
import os
import random
import re
import stat
import struct
import sys
import time
import zlib

PNG_SIG = b"\x89PNG\r\n\x1a\n"
COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class Failure(Exception):
    """A problem in the input or output data; the message names the file."""


def run(who, main):
    """Runs main(), prints `who: message` and exits 1 on a Failure."""
    try:
        main()
    except Failure as e:
        print(f"{who}: {e}", file=sys.stderr)
        sys.exit(1)


def clean_caption(text):
    """One line of text: control characters (tabs, newlines) become spaces, runs
    of white space collapse, the ends are trimmed."""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def write_tsv(path, header, rows):
    """Writes the manifest atomically (a half-written one never has the final
    name), after checking that no field holds a tab or a newline."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        # csv quotes a field that holds a quote ('"Arrow".'), as the C
        # reader (libcsv) and OpenCLIP's pandas reader expect.
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(rows):
            fields = [str(x) for x in row]
            if len(fields) != len(header):
                raise Failure(f"{path}: row {i + 1} has {len(fields)} fields, want {len(header)}")
            for x in fields:
                if "\t" in x or "\n" in x or "\r" in x or x == "":
                    raise Failure(f"{path}: row {i + 1} has an empty field or a tab/newline: {fields!r}")
            writer.writerow(fields)
    os.replace(tmp, path)


def read_tsv(path):
    """Header and rows of a manifest, split on tabs."""
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e.strerror})")
    except UnicodeDecodeError as e:
        raise Failure(f"{path}: not UTF-8 ({e})")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise Failure(f"{path}: empty file, want a header row")
    rows = list(csv.reader(lines, delimiter="\t"))
    return rows[0], rows[1:]


def png_write_grey(path, width, height, pixels):
    """8-bit greyscale PNG, rows unfiltered (filter byte 0), one IDAT."""
    assert len(pixels) == width * height

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))


def png_header(path):
    """(width, height, bit depth, colour type) from the signature and IHDR."""
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e.strerror})")
    if len(head) < 33 or head[:8] != PNG_SIG or head[12:16] != b"IHDR":
        raise Failure(f"{path}: not a PNG (bad signature or no IHDR first)")
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if w == 0 or h == 0 or ctype not in COLOR_TYPES:
        raise Failure(f"{path}: bad IHDR ({w}x{h}, colour type {ctype})")
    return w, h, depth, ctype


def png_decode_check(path):
    """Walks every chunk (CRCs checked), inflates the IDAT stream and checks
    it has exactly the bytes the IHDR promises. Pixels are not unfiltered:
    the point is that a decoder will find a whole, consistent image."""
    with open(path, "rb") as f:
        data = f.read()
    w, h, depth, ctype = png_header(path)
    pos, idat, seen_end = 8, [], False
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = data[pos + 8 + n:pos + 12 + n]
        if len(body) != n or len(crc) != 4:
            raise Failure(f"{path}: chunk {kind!r} truncated")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise Failure(f"{path}: chunk {kind!r} has a bad CRC")
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
        if kind == b"IEND":
            seen_end = True
            break
    if not seen_end or not idat:
        raise Failure(f"{path}: no IEND or no IDAT chunk")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise Failure(f"{path}: IDAT does not inflate ({e})")
    interlaced = data[28]
    if not interlaced:
        row = (w * CHANNELS[ctype] * depth + 7) // 8
        if len(raw) != h * (1 + row):
            raise Failure(f"{path}: IDAT has {len(raw)} bytes, want {h * (1 + row)}")
    return w, h, depth, ctype


def check_manifest(path, int_columns=(), size=None, decode=20, say=print):
    """Checks a manifest and the files it names: header, field counts, no
    empty or duplicate filepath, every file inside the manifest's folder and a
    PNG (of `size` if given), integer columns parse; `decode` files chosen by a
    seeded generator are decoded in full. Returns the rows. Raises Failure."""
    want = ["filepath", "title", *int_columns]
    header, rows = read_tsv(path)
    if header != want:
        raise Failure(f"{path}: header {header}, want {want}")
    root = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    seen, kinds = set(), {}
    for i, row in enumerate(rows):
        where = f"{path}: line {i + 2}"
        if len(row) != len(want):
            raise Failure(f"{where}: {len(row)} fields, want {len(want)}")
        fp, title = row[0], row[1]
        if not title.strip() or "\r" in title:
            raise Failure(f"{where}: empty caption or a carriage return in it")
        for k, name in enumerate(int_columns):
            if not re.fullmatch(r"-?[0-9]+", row[2 + k]):
                raise Failure(f"{where}: {name} {row[2 + k]!r} is not an integer")
        if fp in seen:
            raise Failure(f"{where}: filepath {fp} repeated")
        seen.add(fp)
        if os.path.isabs(fp) or ".." in fp.split("/") or "\\" in fp:
            raise Failure(f"{where}: {fp} is not a relative path inside {root}")
        full = os.path.join(root, fp)
        try:
            st = os.lstat(full)
        except OSError:
            raise Failure(f"{where}: {fp} does not exist")
        if stat.S_ISLNK(st.st_mode) and not os.path.realpath(full).startswith(root + os.sep):
            raise Failure(f"{where}: {fp} is a symlink to outside {root}")
        w, h, depth, ctype = png_header(full)
        if size and (w, h) != size:
            raise Failure(f"{where}: {fp} is {w}x{h}, want {size[0]}x{size[1]}")
        kind = f"{depth}-bit {COLOR_TYPES[ctype]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    sample = random.Random(0).sample(rows, min(decode, len(rows)))
    for row in sample:
        png_decode_check(os.path.join(root, row[0]))
    kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda x: -x[1]))
    size_text = f" {size[0]}x{size[1]}" if size else ""
    say(f"checked {os.path.relpath(path)}: {len(rows)} rows, every file exists and is a"
        f"{size_text} PNG ({kinds_text}); {len(sample)} decoded in full")
    return rows


class Stamp:
    """`.prepared` in a dataset folder: what the finished output was made from.
    A rerun with the same inputs finds it and does nothing (unless --force)."""

    def __init__(self, folder, inputs):
        self.path = os.path.join(folder, ".prepared")
        self.inputs = inputs.strip() + "\n"

    def fresh(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read() == self.inputs
        except FileNotFoundError:
            return False

    def clear(self):
        if os.path.exists(self.path):
            os.remove(self.path)

    def write(self):
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.inputs)


def prepare(who, stamp, force, build, verify):
    """Builds unless the stamp says the output is up to date, then verifies.
    An up-to-date output that fails its check (a file deleted by hand, say)
    is built again rather than reported as ready."""
    if stamp.fresh() and not force:
        print(f"{who}: already prepared from the same inputs (stamp {stamp.path}); "
              f"checking it; --force redoes it")
        try:
            return verify()
        except Failure as e:
            print(f"{who}: {e}; preparing again")
    stamp.clear()
    build()
    result = verify()
    stamp.write()
    return result


def elapsed(t0):
    s = time.time() - t0
    return f"{s:.1f} s"
