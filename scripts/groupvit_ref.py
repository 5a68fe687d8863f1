#!/usr/bin/python3
"""PyTorch reference of vlp's GroupViT (src/models/groupvit.c), written from
the architecture of GroupViT (Xu et al. 2022; NVlabs/GroupViT's parameter
names) with plain torch modules, independently of the C code. The text tower
is clip_ref.py's CLIP transformer.

  groupvit_ref.py golden -o FILE.h5      weights, inputs, Gumbel noise,
                                         embeddings, assignments, losses and
                                         every gradient, in training mode
                                         (fixed noise, straight-through hard
                                         assignment) and in evaluation mode
                                         (soft assignment), for
                                         tests/test_groupvit.c

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py).
"""
import argparse
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_ref import Transformer, clip_loss, write_config  # noqa: E402

# Two groupings (8 then 4 groups) on 16 patches; the last layer has no grouping.
TINY = dict(embed_dim=16, image_size=16, patch_size=4, width=24, heads=2, mlp_ratio=4.0,
            n_groupings=2, depths=[1, 1, 1], group_tokens=[8, 4], output_groups=[8, 4],
            proj_hidden=24, gumbel_tau=1.0, assign_eps=1.0, vocab_size=50, context_length=8,
            text_width=24, text_layers=1, text_heads=2, multi_label_weight=1.0, group_weight=0.5,
            batch=4, prompts=2)


class Mlp(nn.Module):
    """timm's Mlp: fc1, GELU, fc2."""

    def __init__(self, n_in, hidden, n_out):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class TokenMlp(Mlp):
    """An Mlp over the token axis of (B, S, C)."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def split_heads(x, heads):
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x):
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class CrossAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, query, key):
        q = split_heads(self.q_proj(query), self.heads)
        k = split_heads(self.k_proj(key), self.heads)
        v = split_heads(self.v_proj(key), self.heads)
        attn = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.proj(merge_heads(attn @ v))


class SelfAttention(nn.Module):
    """Fused qkv, rows q then k then v, as timm's Attention."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        attn = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.proj(merge_heads(attn @ v))


class AttnBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(mlp_ratio * dim), dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """Post-norm: the queries attend, then MLP, then norm_post."""

    def __init__(self, dim, heads):
        super().__init__()
        self.attn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim, dim)
        self.norm_post = nn.LayerNorm(dim)

    def forward(self, query, key):
        x = query + self.attn(query, key)
        x = x + self.mlp(self.norm2(x))
        return self.norm_post(x)


class AssignAttention(nn.Module):
    """One head. Softmax over the GROUP axis (-2); in training Gumbel noise
    and the straight-through one-hot y_hard - y_soft.detach() + y_soft; each
    group's row then divided by its sum over the patches + eps."""

    def __init__(self, dim, tau, eps):
        super().__init__()
        self.tau, self.eps = tau, eps
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, query, key, noise):
        logits = self.q_proj(query) @ self.k_proj(key).transpose(-2, -1) * query.shape[-1] ** -0.5
        soft = logits.softmax(dim=-2)
        if noise is None:
            attn = soft
        else:
            y_soft = ((logits + noise) / self.tau).softmax(dim=-2)
            index = y_soft.argmax(dim=-2, keepdim=True)
            y_hard = torch.zeros_like(y_soft).scatter_(-2, index, 1.0)
            attn = y_hard - y_soft.detach() + y_soft
        attn = attn / (attn.sum(dim=-1, keepdim=True) + self.eps)
        return self.proj(attn @ self.v_proj(key)), soft.detach(), logits.detach()


class GroupingBlock(nn.Module):
    def __init__(self, dim, heads, in_groups, out_groups, tau, eps):
        super().__init__()
        self.norm_tokens = nn.LayerNorm(dim)
        self.mlp_inter = Mlp(in_groups, dim // 2, out_groups)
        self.norm_post_tokens = nn.LayerNorm(dim)
        self.norm_x = nn.LayerNorm(dim)
        self.pre_assign_attn = CrossAttnBlock(dim, heads)
        self.assign = AssignAttention(dim, tau, eps)
        self.norm_new_x = nn.LayerNorm(dim)
        self.mlp_channels = Mlp(dim, 4 * dim, dim)

    def forward(self, x, groups, noise):
        groups = self.norm_tokens(groups)
        x = self.norm_x(x)
        queries = self.norm_post_tokens(self.mlp_inter(groups.transpose(1, 2)).transpose(1, 2))
        queries = self.pre_assign_attn(queries, x)
        new_x, soft, logits = self.assign(queries, x, noise)
        new_x = new_x + queries
        return new_x + self.mlp_channels(self.norm_new_x(new_x)), soft, logits


class GroupingLayer(nn.Module):
    def __init__(self, c, i):
        super().__init__()
        dim, last = c["width"], i == c["n_groupings"]
        self.group_token = None if last else nn.Parameter(torch.zeros(1, c["group_tokens"][i], dim))
        self.group_projector = None
        if 0 < i < c["n_groupings"]:
            self.group_projector = nn.Sequential(
                nn.LayerNorm(dim), TokenMlp(c["group_tokens"][i - 1], dim // 2, c["group_tokens"][i]))
        self.blocks = nn.ModuleList([AttnBlock(dim, c["heads"], c["mlp_ratio"]) for _ in range(c["depths"][i])])
        self.downsample = None if last else GroupingBlock(
            dim, c["heads"], c["group_tokens"][i], c["output_groups"][i], c["gumbel_tau"], c["assign_eps"])

    def forward(self, x, prev_groups, noise):
        n = x.shape[1]
        groups = None
        if self.group_token is not None:
            groups = self.group_token.expand(x.shape[0], -1, -1)
            if self.group_projector is not None:
                groups = groups + self.group_projector(prev_groups)
            x = torch.cat([x, groups], dim=1)
        for block in self.blocks:
            x = block(x)
        if groups is not None:
            x, groups = x[:, :n], x[:, n:]
        soft = logits = None
        if self.downsample is not None:
            x, soft, logits = self.downsample(x, groups, noise)
        return x, groups, soft, logits


class PatchEmbed(nn.Module):
    def __init__(self, c):
        super().__init__()
        p = c["patch_size"]
        self.proj = nn.Conv2d(3, c["width"], kernel_size=p, stride=p)
        self.norm = nn.LayerNorm(c["width"])

    def forward(self, x):
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class ImageEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        grid = c["image_size"] // c["patch_size"]
        self.patch_embed = PatchEmbed(c)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, c["width"]))
        self.layers = nn.ModuleList([GroupingLayer(c, i) for i in range(c["n_groupings"] + 1)])
        self.norm = nn.LayerNorm(c["width"])

    def forward(self, images, noise):
        """noise: one (B, S_out, L) tensor per grouping (training), or None."""
        x = self.patch_embed(images) + self.pos_embed
        groups, softs, logits = None, [], []
        for i, layer in enumerate(self.layers):
            x, groups, soft, lg = layer(x, groups, noise[i] if noise is not None and i < len(noise) else None)
            if soft is not None:
                softs.append(soft)
                logits.append(lg)
        return self.norm(x), softs, logits  # the final groups, (B, G, C)


class TextEncoder(nn.Module):
    """CLIP's text tower with QuickGELU and MLP 4x, as GroupViT's."""

    def __init__(self, c):
        super().__init__()
        w = c["text_width"]
        self.token_embedding = nn.Embedding(c["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], w))
        self.transformer = Transformer(w, c["text_layers"], c["text_heads"], 4 * w, "quick_gelu")
        self.ln_final = nn.LayerNorm(w)
        self.text_projection = nn.Parameter(torch.empty(w, c["embed_dim"]))
        mask = torch.full((c["context_length"],) * 2, float("-inf")).triu(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.attn_mask))
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection


class ImageProjector(nn.ModuleList):
    """Linear, ReLU, Linear (GroupViT's ProjectMLP without its BatchNorm)."""

    def __init__(self, c):
        super().__init__([nn.Linear(c["width"], c["proj_hidden"]), nn.Linear(c["proj_hidden"], c["embed_dim"])])

    def forward(self, x):
        return self[1](F.relu(self[0](x)))


class GroupViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.img_encoder = ImageEncoder(c)
        self.img_projector = ImageProjector(c)
        self.text_encoder = TextEncoder(c)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.multi_label_logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images, noise=None):
        """The image embedding (the mean of the final groups, projected) and
        each final group projected alone (the segment embeddings)."""
        x, softs, logits = self.img_encoder(images, noise)
        img = F.normalize(self.img_projector(x.mean(dim=1)), dim=-1)
        return img, F.normalize(self.img_projector(x), dim=-1), softs, logits

    def encode_text(self, text):
        return F.normalize(self.text_encoder(text), dim=-1)

    def multi_label_loss(self, img, prompts):
        """Image i against all prompts (soft target 1/K on its own K); each
        prompt against all images (its own image the one positive)."""
        b, k = img.shape[0], prompts.shape[0] // img.shape[0]
        scale = torch.clamp(self.multi_label_logit_scale.exp(), max=100)
        targets = torch.eye(b).repeat_interleave(k, dim=1) / k  # (B, B K)
        loss_img = -(targets * F.log_softmax(scale * img @ prompts.t(), dim=-1)).sum(-1).mean()
        loss_txt = F.cross_entropy(scale * prompts @ img.t(), torch.arange(b).repeat_interleave(k))
        return 0.5 * (loss_img + loss_txt)

    def group_loss(self, groups, prompts):
        """vlp's group term: image i's score for a prompt pools its groups'
        similarities by a softmax at the multi-label scale; soft target 1/K on
        its own K prompts."""
        b, k = groups.shape[0], prompts.shape[0] // groups.shape[0]
        scale = torch.clamp(self.multi_label_logit_scale.exp(), max=100)
        sim = torch.einsum("bgd,md->bmg", groups, prompts)
        score = (F.softmax(scale * sim, dim=-1) * sim).sum(-1)  # (B, B K)
        targets = torch.eye(b).repeat_interleave(k, dim=1) / k
        return -(targets * F.log_softmax(scale * score, dim=-1)).sum(-1).mean()

    def loss(self, img, groups, txt, prompts):
        caption, _ = clip_loss(img, txt, self.logit_scale)
        multi = self.multi_label_loss(img, prompts)
        group = self.group_loss(groups, prompts)
        total = caption + self.c["multi_label_weight"] * multi + self.c["group_weight"] * group
        return total, caption, multi, group


def randomise(model, gen):
    """Weights big enough for every gradient to be measurable: torch's
    Linear defaults, LayerNorms and tokens perturbed off their 1, 0 init."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=gen))
        for name, p in model.named_parameters():
            if "group_token" in name or "pos_embed" in name or "embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "text_projection" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[0] ** -0.5)


def make_text(n, ctx, vocab, gen):
    """Rows SOT, tokens, EOT, zero padding (SOT, EOT the two largest ids)."""
    text = torch.zeros(n, ctx, dtype=torch.long)
    for i in range(n):
        m = int(torch.randint(1, ctx - 1, (1,), generator=gen))
        text[i, 0] = vocab - 2
        text[i, 1:m] = torch.randint(1, vocab - 2, (m - 1,), generator=gen)
        text[i, m] = vocab - 1
    return text


def gumbel(shape, gen):
    u = torch.rand(shape, generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return (-torch.log(-torch.log(u))).float()


def min_margin(logits, noise, tau):
    """Smallest gap between the two best groups of any patch: a float32
    rounding must not be able to flip the hard assignment."""
    gap = math.inf
    for lg, g in zip(logits, noise):
        top = ((lg + g) / tau).topk(2, dim=-2).values
        gap = min(gap, (top[:, 0] - top[:, 1]).min().item())
    return gap


def cmd_golden(args):
    c = TINY
    torch.manual_seed(args.seed)
    model = GroupViT(c)
    gen = torch.Generator().manual_seed(args.seed + 1)
    randomise(model, gen)
    b, k, s = c["batch"], c["prompts"], c["image_size"]
    images = torch.randn(b, 3, s, s, generator=gen)
    captions = make_text(b, c["context_length"], c["vocab_size"], gen)
    prompts = make_text(b * k, c["context_length"], c["vocab_size"], gen)
    grid = s // c["patch_size"]
    tokens = [grid * grid] + c["output_groups"][:-1]
    for attempt in range(100):  # noise whose hard assignment is unambiguous
        noise = [gumbel((b, c["output_groups"][i], tokens[i]), gen) for i in range(c["n_groupings"])]
        with torch.no_grad():
            _, _, _, logits = model.encode_image(images, noise)
        gap = min_margin(logits, noise, c["gumbel_tau"])
        if gap > 1e-3:
            break
    else:
        raise SystemExit("groupvit_ref: no noise with a clear hard assignment")

    out = {}
    for mode, mode_noise in (("train", noise), ("eval", None)):
        model.zero_grad()
        img, groups, softs, _ = model.encode_image(images, mode_noise)
        txt, prm = model.encode_text(captions), model.encode_text(prompts)
        loss, caption, multi, group = model.loss(img, groups, txt, prm)
        loss.backward()
        out[mode] = dict(img=img, groups=groups, txt=txt, prm=prm, softs=softs, loss=loss, caption=caption,
                         multi=multi, group=group,
                         grads={n: p.grad.clone() for n, p in model.named_parameters()})

    with h5py.File(args.output, "w") as f:
        write_config(f, c)
        for name, t in model.state_dict().items():
            f.create_dataset(f"params/{name}", data=t.numpy().astype(np.float32))
        f["inputs/images"] = images.numpy()
        f["inputs/captions"] = captions.numpy().astype(np.int32)
        f["inputs/prompts"] = prompts.numpy().astype(np.int32)
        for i, g in enumerate(noise):
            f[f"inputs/noise/{i}"] = g.numpy()
        for mode, o in out.items():
            g = f.create_group(mode)
            g["image_features"] = o["img"].detach().numpy()
            g["group_features"] = o["groups"].detach().numpy()
            g["text_features"] = o["txt"].detach().numpy()
            g["prompt_features"] = o["prm"].detach().numpy()
            for i, soft in enumerate(o["softs"]):
                g[f"assign/{i}"] = soft.numpy()
            g["loss"] = np.float32(o["loss"].item())
            g["loss_caption"] = np.float32(o["caption"].item())
            g["loss_multi_label"] = np.float32(o["multi"].item())
            g["loss_group"] = np.float32(o["group"].item())
            for name, grad in o["grads"].items():
                g.create_dataset(f"grads/{name}", data=grad.numpy())
    print(f"groupvit_ref: wrote {args.output} (loss train {out['train']['loss'].item():.6f}, "
          f"eval {out['eval']['loss'].item():.6f}; hard-assignment margin {gap:.2e}; "
          f"{sum(p.numel() for p in model.parameters())} parameters)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    return {"golden": cmd_golden}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
