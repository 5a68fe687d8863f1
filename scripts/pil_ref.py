#!/usr/bin/python3
"""The PIL + torchvision reference for vlp's image preprocessing: the uint8
pixels torchvision's transforms give (before ToTensor), for
tests/preprocess_pil.sh to compare with vlp's byte for byte. Not a test by
itself: it only writes. Run with Debian's /usr/bin/python3 (python3-pil 9.4,
python3-torchvision 0.14).

  pil_ref.py synth DIR             writes images of every PNG/JPEG kind PIL
                                   opens in its own mode (16-bit, palette,
                                   tRNS, grey+alpha, CMYK, 1-pixel ...)
  pil_ref.py plan FILE... > CASES  one line per case: path, S, interpolation,
                                   resize (shortest|squash|crop), alpha
                                   (pil|white), crop box x,y,w,h or -
  pil_ref.py run CASES > PIXELS    each case's S x S x 3 uint8, in order

Cases: alpha = pil is CLIP's transform, Compose([Resize(S) or Resize((S, S)),
CenterCrop(S), convert('RGB')]); crop is RandomResizedCrop's
resized_crop(img, y, x, h, w, (S, S)) on a box drawn here. alpha = white is
vlp's own recipe: the image composited over white with vlp's formula
(v a + 255 (255 - a) + 127) // 255, then the same transform.
"""
import random
import struct
import sys
import warnings
import zlib

import numpy as np
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

INTERP = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}


def png(path, w, h, depth, ctype, rows, plte=None, trns=None):
    """A PNG of raw scanlines (filter 0), written directly: PIL cannot write
    16-bit colour or grey+alpha."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    body = b"".join(b"\0" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def synth(d):
    rng = np.random.default_rng(7)
    h, w = 45, 61
    yy, xx = np.mgrid[0:h, 0:w]
    # smooth colour gradients plus noise: edges and flat areas both
    base = np.stack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1)
    rgb = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
    alpha = np.where((xx - 30) ** 2 + (yy - 22) ** 2 < 300, 255, (xx * 255 // w)).astype(np.uint8)
    alpha[:5, :] = 0  # fully transparent rows whose RGB is not black
    grey = rgb[..., 0]
    rgb16 = rgb.astype(np.uint16) * 257 + rng.integers(0, 200, rgb.shape).astype(np.uint16)
    a16 = alpha.astype(np.uint16) * 257
    g16 = (xx * 1000 + yy * 20).astype(np.uint16)  # spans 0..60000: PIL's "I" clips at 255
    be = lambda a: a.astype(">u2").tobytes()
    png(f"{d}/rgb16.png", w, h, 16, 2, [be(rgb16[y]) for y in range(h)])
    png(f"{d}/rgba16.png", w, h, 16, 6, [be(np.dstack([rgb16, a16])[y]) for y in range(h)])
    png(f"{d}/la16.png", w, h, 16, 4, [be(np.dstack([rgb16[..., 0], a16])[y]) for y in range(h)])
    png(f"{d}/grey16.png", w, h, 16, 0, [be(g16[y]) for y in range(h)])
    png(f"{d}/grey16_dark.png", w, h, 16, 0, [be(g16[y] // 240) for y in range(h)])  # 0..250: unclipped
    png(f"{d}/la.png", w, h, 8, 4, [np.dstack([grey, alpha])[y].tobytes() for y in range(h)])
    png(f"{d}/rgba.png", w, h, 8, 6, [np.dstack([rgb, alpha])[y].tobytes() for y in range(h)])
    png(f"{d}/grey.png", w, h, 8, 0, [grey[y].tobytes() for y in range(h)])
    png(f"{d}/grey_trns.png", w, h, 8, 0, [grey[y].tobytes() for y in range(h)], trns=struct.pack(">H", int(grey[0, 0])))
    png(f"{d}/rgb_trns.png", w, h, 8, 2, [rgb[y].tobytes() for y in range(h)],
        trns=struct.pack(">HHH", *[int(v) for v in rgb[0, 0]]))
    idx = ((xx // 4 + yy // 3) % 16).astype(np.uint8)
    plte = bytes(rng.integers(0, 256, 48, dtype=np.uint8))
    png(f"{d}/palette.png", w, h, 8, 3, [idx[y].tobytes() for y in range(h)], plte=plte)
    png(f"{d}/palette_trns.png", w, h, 8, 3, [idx[y].tobytes() for y in range(h)], plte=plte,
        trns=bytes(range(0, 256, 16)))
    packed4 = (idx[:, 0::2] << 4) | np.pad(idx[:, 1::2], ((0, 0), (0, 1)))[:, : (w + 1) // 2]
    png(f"{d}/palette4.png", w, h, 4, 3, [packed4[y].tobytes() for y in range(h)], plte=plte)
    Image.fromarray(grey > 128).save(f"{d}/bits1.png")  # mode "1"
    grey4 = (grey >> 4).astype(np.uint8)
    png(f"{d}/grey4.png", w, h, 4, 0, [((grey4[y, 0::2] << 4) | np.pad(grey4[y, 1::2], (0, w % 2))).tobytes()
                                        for y in range(h)])
    img = Image.fromarray(rgb)
    img.save(f"{d}/rgb.png")
    img.save(f"{d}/q90_420.jpg", quality=90)  # 4:2:0, PIL's default
    img.save(f"{d}/q95_444.jpg", quality=95, subsampling=0)
    img.save(f"{d}/q75_422.jpg", quality=75, subsampling=1)
    img.save(f"{d}/progressive.jpg", quality=85, progressive=True)
    Image.fromarray(grey).save(f"{d}/grey.jpg", quality=90)
    Image.fromarray(np.dstack([rgb, alpha])).convert("CMYK").save(f"{d}/cmyk.jpg", quality=90)  # Adobe
    for name, (pw, ph) in {"1x1": (1, 1), "1x9": (1, 9), "9x1": (9, 1), "2x3": (2, 3)}.items():
        small = Image.fromarray(rgb[:ph, :pw])
        small.save(f"{d}/{name}.png")
        small.save(f"{d}/{name}.jpg", quality=90)
    png(f"{d}/1x1_rgba.png", 1, 1, 8, 6, [bytes([200, 100, 50, 128])])


def plan(files, sizes):
    """Every size x interpolation x resize for alpha = pil, two random crops
    at two sizes, the short side's size, and a few alpha = white cases, per
    file."""
    rnd = random.Random(1)
    for path in files:
        with Image.open(path) as im:
            w, h, mode = im.width, im.height, im.mode
        for S in sizes:
            for interp in ("bicubic", "bilinear"):
                for resize in ("shortest", "squash"):
                    print(f"{path}\t{S}\t{interp}\t{resize}\tpil\t-")
        for S in (64, 224):
            cw, ch = rnd.randint(1, w), rnd.randint(1, h)
            box = f"{rnd.randint(0, w - cw)},{rnd.randint(0, h - ch)},{cw},{ch}"
            print(f"{path}\t{S}\tbicubic\tcrop\tpil\t{box}")
            if mode != "I":  # vlp's own recipe reads 16-bit grey's high byte, PIL clips
                print(f"{path}\t{S}\tbicubic\tcrop\twhite\t{box}")
        # S = the short side: torchvision skips the resize (only the crop is
        # left), and a square image is returned as it is (vlp's fast path)
        print(f"{path}\t{min(w, h)}\tbicubic\tshortest\tpil\t-")
        if mode != "I":
            print(f"{path}\t{min(w, h)}\tbicubic\tshortest\twhite\t-")
            print(f"{path}\t224\tbicubic\tshortest\twhite\t-")
            print(f"{path}\t97\tbilinear\tsquash\twhite\t-")


def composite_white(im):
    a = np.asarray(im.convert("RGBA")).astype(np.uint32)
    rgb = (a[..., :3] * a[..., 3:] + 255 * (255 - a[..., 3:]) + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8))


def run(cases):
    out = sys.stdout.buffer
    cache = (None, None)
    for line in open(cases):
        path, S, interp, resize, alpha, box = line.rstrip("\n").split("\t")
        S = int(S)
        if cache[0] != path:
            im = Image.open(path)
            im.load()
            cache = (path, im)
        im = cache[1]
        if alpha == "white":
            im = composite_white(im)
        mode = INTERP[interp]
        if resize == "crop":
            x, y, w, h = map(int, box.split(","))
            res = F.resized_crop(im, y, x, h, w, [S, S], mode)
        else:
            size = S if resize == "shortest" else (S, S)
            res = transforms.Compose([transforms.Resize(size, interpolation=mode), transforms.CenterCrop(S)])(im)
        arr = np.asarray(res.convert("RGB"), dtype=np.uint8)
        assert arr.shape == (S, S, 3), (path, arr.shape)
        out.write(arr.tobytes())


def main():
    warnings.simplefilter("ignore")  # PIL's "Palette images with Transparency ..." advice
    if len(sys.argv) >= 3 and sys.argv[1] == "synth":
        synth(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "plan":
        sizes = [224, 33, 97, 300, 1]
        plan(sys.argv[2:], sizes)
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
