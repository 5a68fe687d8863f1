#!/usr/bin/python3
"""PyTorch reference of vlp's CLIP, written independently of the C code with
torch.nn modules, following OpenCLIP's architecture, names and init.

  clip_ref.py golden CONFIG -o FILE.h5      weights, inputs, outputs and every
                                            gradient, for tests/test_clip.c
  clip_ref.py state-dict CONFIG -o M.pt --inputs IN.h5
                                            a state_dict, plus inputs and the
                                            embeddings it gives
  clip_ref.py check M.pt IN.h5              load a state_dict strictly and
                                            compare its embeddings with IN.h5
  clip_ref.py bench A|B [--steps N] [--warmup W] [--json OUT]
                                            time training steps on random data
                                            and sgemm on the step's shapes, as
                                            build/vlpbench does (scripts/bench.sh)

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py).
"""
import argparse
import ctypes
import json
import math
import os
import resource
import statistics
import sys
import time
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Two small configs that differ in activation, widths, heads, depth, context.
CONFIGS = {
    "gelu": dict(embed_dim=24, image_size=16, patch_size=4, vision_width=32, vision_layers=2,
                 vision_heads=4, vocab_size=100, context_length=12, text_width=32, text_layers=2,
                 text_heads=2, mlp_ratio=4.0, act="gelu", batch=6),
    "quickgelu": dict(embed_dim=16, image_size=12, patch_size=3, vision_width=24, vision_layers=3,
                      vision_heads=3, vocab_size=80, context_length=9, text_width=40,
                      text_layers=1, text_heads=5, mlp_ratio=2.0, act="quick_gelu", batch=5),
}

# Issue 7's benchmark configs, as src/apps/bench.c defines them for vlpbench.
BENCH_CONFIGS = {
    "A": dict(embed_dim=128, image_size=32, patch_size=4, vision_width=128, vision_layers=4,
              vision_heads=4, vocab_size=1024, context_length=32, text_width=128, text_layers=4,
              text_heads=4, mlp_ratio=4.0, act="gelu", batch=128),
    "B": dict(embed_dim=256, image_size=64, patch_size=8, vision_width=256, vision_layers=6,
              vision_heads=8, vocab_size=1024, context_length=32, text_width=256, text_layers=6,
              text_heads=8, mlp_ratio=4.0, act="gelu", batch=256),
}


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def activation(name):
    return nn.GELU() if name == "gelu" else QuickGELU()


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp_width, act):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, mlp_width)),
            ("gelu", activation(act)),
            ("c_proj", nn.Linear(mlp_width, width)),
        ]))

    def forward(self, x, attn_mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp_width, act):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, mlp_width, act) for _ in range(layers)])

    def forward(self, x, attn_mask=None):
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, image_size, patch_size, width, layers, heads, mlp_width, output_dim, act):
        super().__init__()
        grid = image_size // patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, mlp_width, act)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)                                  # (B, W, g, g)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (B, g*g, W)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.visual = VisionTransformer(
            c["image_size"], c["patch_size"], c["vision_width"], c["vision_layers"],
            c["vision_heads"], int(c["mlp_ratio"] * c["vision_width"]), c["embed_dim"], c["act"])
        w = c["text_width"]
        self.transformer = Transformer(w, c["text_layers"], c["text_heads"],
                                       int(c["mlp_ratio"] * w), c["act"])
        self.token_embedding = nn.Embedding(c["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], w))
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, c["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        mask = torch.full((c["context_length"],) * 2, float("-inf")).triu(1)
        self.register_buffer("attn_mask", mask, persistent=False)
        self.init_text()

    def init_text(self):
        """OpenCLIP's TextTransformer.init_parameters."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        t = self.transformer
        proj_std = (t.width ** -0.5) * ((2 * t.layers) ** -0.5)
        attn_std = t.width ** -0.5
        fc_std = (2 * t.width) ** -0.5
        for block in t.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=t.width ** -0.5)

    def encode_image(self, images):
        return F.normalize(self.visual(images), dim=-1)

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.attn_mask))
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        return F.normalize(x @ self.text_projection, dim=-1)


def clip_loss(img, txt, logit_scale, groups=None):
    """Symmetric InfoNCE; with groups, columns sharing a row's id are positives."""
    scale = logit_scale.exp()
    logits_per_image = scale * img @ txt.T
    logits_per_text = scale * txt @ img.T
    n = img.shape[0]
    if groups is None:
        labels = torch.arange(n)
    else:
        same = (groups[:, None] == groups[None, :]).float()
        labels = same / same.sum(dim=1, keepdim=True)
    loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
    return loss, logits_per_image


def make_inputs(c, gen):
    """Normalised-looking images and token rows SOT, tokens, EOT, zero padding
    (SOT and EOT are the two largest ids, as in CLIP); the last row is
    truncated to the full context with EOT last."""
    b, ctx, vocab = c["batch"], c["context_length"], c["vocab_size"]
    images = torch.randn(b, 3, c["image_size"], c["image_size"], generator=gen)
    text = torch.zeros(b, ctx, dtype=torch.long)
    for i in range(b):
        n = ctx - 2 if i == b - 1 else int(torch.randint(1, ctx - 2, (1,), generator=gen))
        text[i, 0] = vocab - 2
        text[i, 1:n + 1] = torch.randint(1, vocab - 2, (n,), generator=gen)
        text[i, n + 1] = vocab - 1
    groups = torch.tensor([i % 3 if i % 2 == 0 else 7 + i for i in range(b)])  # some shared ids
    return images, text, groups


def write_state(group, state):
    for name, t in state.items():
        group.create_dataset(name, data=t.detach().cpu().numpy().astype(np.float32))


def read_state(group):
    return OrderedDict((name, torch.from_numpy(np.array(group[name]))) for name in group)


def write_config(f, c):
    g = f.require_group("config")
    for k, v in c.items():
        g.attrs[k] = v


def cmd_golden(args):
    c = CONFIGS[args.config]
    torch.manual_seed(args.seed)
    model = CLIP(c)
    gen = torch.Generator().manual_seed(args.seed + 1)
    images, text, groups = make_inputs(c, gen)
    img, txt = model.encode_image(images), model.encode_text(text)
    loss, logits = clip_loss(img, txt, model.logit_scale)
    loss.backward()
    loss_grouped, _ = clip_loss(img, txt, model.logit_scale, groups)
    with h5py.File(args.output, "w") as f:
        write_config(f, c)
        write_state(f.create_group("params"), model.state_dict())
        f["inputs/images"] = images.numpy()
        f["inputs/text"] = text.numpy().astype(np.int32)
        f["inputs/groups"] = groups.numpy().astype(np.int32)
        f["outputs/image_features"] = img.detach().numpy()
        f["outputs/text_features"] = txt.detach().numpy()
        f["outputs/logits_per_image"] = logits.detach().numpy()
        f["outputs/loss"] = np.float32(loss.item())
        f["outputs/loss_grouped"] = np.float32(loss_grouped.item())
        grads = f.create_group("grads")
        for name, p in model.named_parameters():
            grads.create_dataset(name, data=p.grad.numpy())
    print(f"clip_ref: wrote {args.output} ({args.config}: loss {loss.item():.6f}, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")


def cmd_state_dict(args):
    c = CONFIGS[args.config]
    torch.manual_seed(args.seed)
    model = CLIP(c)
    images, text, _ = make_inputs(c, torch.Generator().manual_seed(args.seed + 1))
    torch.save(model.state_dict(), args.output)
    with torch.no_grad(), h5py.File(args.inputs, "w") as f:
        write_config(f, c)
        f["inputs/images"] = images.numpy()
        f["inputs/text"] = text.numpy().astype(np.int32)
        f["outputs/image_features"] = model.encode_image(images).numpy()
        f["outputs/text_features"] = model.encode_text(text).numpy()
    print(f"clip_ref: wrote {args.output} and {args.inputs}")


def cmd_check(args):
    with h5py.File(args.inputs, "r") as f:
        c = {k: (v.item() if hasattr(v, "item") else v) for k, v in f["config"].attrs.items()}
        c = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in c.items()}
        images = torch.from_numpy(np.array(f["inputs/images"]))
        text = torch.from_numpy(np.array(f["inputs/text"])).long()
        want_img = np.array(f["outputs/image_features"])
        want_txt = np.array(f["outputs/text_features"])
    model = CLIP(c)
    model.load_state_dict(torch.load(args.model), strict=True)
    with torch.no_grad():
        err_img = np.abs(model.encode_image(images).numpy() - want_img).max()
        err_txt = np.abs(model.encode_text(text).numpy() - want_txt).max()
    print(f"clip_ref: {args.model} loaded strictly; embedding errors image {err_img:.2e}, text {err_txt:.2e}")
    return 0 if max(err_img, err_txt) <= 1e-5 else 1


def forward_flops(c, b, n):
    """Matmul FLOPs of one forward pass, counted as vlp_bench_forward_flops
    counts them (src/apps/bench.c): linears, attention's QK^T and PV over
    the full T x T, patch embedding, projections, the two B x N logits."""
    def blocks(t, w, layers):
        mlp = int(c["mlp_ratio"] * w)
        return layers * (2.0 * b * t * w * (3 * w + w + 2 * mlp) + 4.0 * b * t * t * w)
    g, p, d = c["image_size"] // c["patch_size"], c["patch_size"], c["embed_dim"]
    cv, ct = c["vision_width"], c["text_width"]
    vision = blocks(g * g + 1, cv, c["vision_layers"]) + 2.0 * b * g * g * 3 * p * p * cv + 2.0 * b * cv * d
    text = blocks(c["context_length"], ct, c["text_layers"]) + 2.0 * b * ct * d
    return vision + text + 4.0 * b * n * d


def gemm_shapes(c, b):
    """The blocks' linear layers as (what, ta, tb, M, N, K, beta, count): the
    forward, dX and dW products, as vlp_bench_gemm_shapes lists them."""
    shapes = []
    g = c["image_size"] // c["patch_size"]
    for tower, rows, w, layers in (("visual", b * (g * g + 1), c["vision_width"], c["vision_layers"]),
                                   ("text", b * c["context_length"], c["text_width"], c["text_layers"])):
        mlp = int(c["mlp_ratio"] * w)
        for name, n_in, n_out in (("qkv", w, 3 * w), ("out", w, w), ("fc", w, mlp), ("proj", mlp, w)):
            shapes += [(f"{tower} {name} forward", False, True, rows, n_out, n_in, 0.0, layers),
                       (f"{tower} {name} dX", False, False, rows, n_in, n_out, 1.0, layers),
                       (f"{tower} {name} dW", True, False, n_out, n_in, rows, 1.0, layers)]
    return shapes


def time_gemm(ta, tb, m, n, k, beta, reps):
    """GFLOP/s of torch's matmul (OpenBLAS sgemm) at this shape: best of reps
    calls after a warm-up call, writing into a preallocated C."""
    a = torch.rand(k, m).t() if ta else torch.rand(m, k)
    b = torch.rand(n, k).t() if tb else torch.rand(k, n)
    out = torch.zeros(m, n)
    best = float("inf")
    for r in range(reps + 1):
        t0 = time.perf_counter()
        if beta:
            out.addmm_(a, b)
        else:
            torch.mm(a, b, out=out)
        t = time.perf_counter() - t0
        if r:
            best = min(best, t)
    return 2.0 * m * n * k / best * 1e-9


def openblas():
    """The OpenBLAS library torch's matmuls run in (Debian's torch calls
    libblas.so.3, OpenBLAS through the alternatives), opened by its path."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "libopenblas" in line}
    if not paths:
        return None
    lib = ctypes.CDLL(sorted(paths)[0])
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return lib


# The environment scripts/bench.sh gives the PyTorch process (its best
# configuration on this machine, issue 7), printed with the results.
BENCH_ENV = ("OMP_WAIT_POLICY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
             "OMP_NUM_THREADS")


def cmd_bench(args):
    c = BENCH_CONFIGS[args.config]
    b = c["batch"]
    blas = openblas()
    torch.manual_seed(0)
    model = CLIP(c)
    images, text, _ = make_inputs(c, torch.Generator().manual_seed(7))
    # OpenCLIP's groups: no weight decay on parameters of fewer than 2 dims
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.2}, {"params": rest, "weight_decay": 0.0}],
                            lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    seconds, losses = [], []
    for s in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = clip_loss(model.encode_image(images), model.encode_text(text), model.logit_scale)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if s >= args.warmup:
            seconds.append(time.perf_counter() - t0)
        losses.append(loss.item())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before sgemm's operands
    med = statistics.median(seconds)
    flops = 3.0 * forward_flops(c, b, b)
    out = {
        "program": "torch", "config": args.config, "batch": b, "ranks": 1, "batch_per_rank": b,
        "threads": blas.openblas_get_num_threads() if blas else None,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_core": blas.openblas_get_corename().decode() if blas else None,
        "openblas_config": blas.openblas_get_config().decode() if blas else None,
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ.get(k) for k in BENCH_ENV},
        "params": sum(p.numel() for p in model.parameters()),
        "warmup": args.warmup, "steps": args.steps, "step_s": seconds, "median_s": med,
        "samples_per_s": b / med, "loss_first": losses[0], "loss_last": losses[-1],
        "peak_rss_mb": rss_mb, "peak_rss_mb_all_ranks": rss_mb,
        "model_flops_per_step": flops,
        "model_flops_note": "counted as vlpbench counts them (3x the forward's matmul FLOPs)",
        "model_gflops_per_s": flops / med * 1e-9, "sgemm": None, "sgemm_fraction": None,
    }
    if args.sgemm_reps > 0:
        shapes = []
        for what, ta, tb, m, n, k, beta, count in gemm_shapes(c, b):
            rate = time_gemm(ta, tb, m, n, k, beta, args.sgemm_reps)
            shapes.append({"what": what, "op": "TN"[not ta] + "TN"[not tb], "M": m, "N": n, "K": k,
                           "count": count, "gflops_openblas": rate})
        total = sum(2.0 * s["M"] * s["N"] * s["K"] * s["count"] for s in shapes)
        time_at_rate = sum(2.0 * s["M"] * s["N"] * s["K"] * s["count"] / (s["gflops_openblas"] * 1e9)
                           for s in shapes)
        rate = total / time_at_rate * 1e-9
        out["sgemm"] = {"reps": args.sgemm_reps, "shapes": shapes, "gflops_openblas": rate, "gflops": rate,
                        "note": "torch.mm / addmm_ (OpenBLAS sgemm on its own threads) on vlpbench's "
                                "shapes; gflops: the FLOP-weighted rate"}
        out["sgemm_fraction"] = flops / med * 1e-9 / rate
    text_out = json.dumps(out, indent=2)
    if args.json and args.json != "-":
        with open(args.json, "w") as f:
            f.write(text_out + "\n")
    else:
        print(text_out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("config", choices=CONFIGS)
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("state-dict")
    s.add_argument("config", choices=CONFIGS)
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--inputs", required=True)
    s.add_argument("--seed", type=int, default=1)
    k = sub.add_parser("check")
    k.add_argument("model")
    k.add_argument("inputs")
    b = sub.add_parser("bench")
    b.add_argument("config", choices=BENCH_CONFIGS)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--json")
    b.add_argument("--sgemm-reps", type=int, default=3, help="0 skips the sgemm measurement")
    args = ap.parse_args()
    # One torch thread: Debian's torch runs matmuls in OpenBLAS, whose
    # threads OPENBLAS_NUM_THREADS sets (torch.set_num_threads does not).
    torch.set_num_threads(1)
    return {"golden": cmd_golden, "state-dict": cmd_state_dict, "check": cmd_check,
            "bench": cmd_bench}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
