#!/usr/bin/python3
"""Pretrained-CLIP folders for testing vlpimport/vlpexport, and a PyTorch
reference of the embeddings they give, written from the formats'
documentation (no open_clip, transformers or safetensors package here).

  pretrained_ref.py write FORMAT OUT --arch ARCH [--dtype F32|F16|BF16]
                    [--seed N] [--legacy-position-ids] [--vocab FILE]
      A model with random weights. FORMAT: open_clip (OUT a folder:
      open_clip_config.json + open_clip_model.safetensors), hf (OUT a folder:
      config.json, model.safetensors, merges.txt, vocab.json,
      preprocessor_config.json, tokenizer_config.json, special_tokens_map.json)
      or safetensors (OUT a file, OpenCLIP names, no config). ARCH: tiny,
      tiny-quickgelu, ViT-B-32. --legacy-position-ids adds the int64
      position_ids buffers older transformers saved (hf only). --vocab: the
      merges file for hf's tokenizer files (default CLIP's,
      tests/data/clip/bpe_simple_vocab_16e6.txt.gz); the vocabulary size is
      512 + merges + 2, at most 49408.
  pretrained_ref.py embed SRC --images LIST --texts FILE -o OUT.h5
                    [--format open_clip|hf] [--arch ARCH] [--vocab FILE]
      Embeds every image of LIST (one path per line, blank lines skipped)
      and every line of FILE with the model in SRC: an open_clip or hf folder
      (detected from its files; open_clip when it holds both, unless
      --format), or a bare safetensors file with OpenCLIP names and --arch.
      The two folder formats run through different code: an OpenCLIP-named
      torch.nn model (fused in_proj, nn.MultiheadAttention) and a
      transformers-named one (separate q/k/v, attention written out).
      Tokenizer: hf folders' own vocab.json + merges.txt, otherwise --vocab
      (default CLIP's merges).
  pretrained_ref.py compare A.h5 B.h5 [--min-cos 0.99999] [--strict-inputs]
      Per-row cosine of image_features and text_features between two files;
      exit 1 when the smallest is below --min-cos, when the shapes differ or
      when a file holds zero rows (and, with --strict-inputs, when pixels or
      ids differ).
  pretrained_ref.py convert SRC_DIR --to hf|open_clip OUT_DIR
                    [--legacy-position-ids] [--vocab FILE]
      The same weights in the other folder format (names rewritten, q/k/v
      split or fused, projections transposed, each tensor in its dtype).

embed's HDF5 (vlp writes the same layout):
  image_features (N, D) float32, L2-normalised
  text_features  (M, D) float32, L2-normalised
  pixels         (N, S, S, 3) uint8: the image after Resize, CenterCrop and
                 convert('RGB'), before ToTensor
  ids            (M, context_length) int32: SOT, tokens, EOT, 0 padding
  logit_scale    () float32: the stored parameter (log of the scale)
  attribute format: "open_clip" or "hf"

Preprocessing is CLIP's, with PIL and torchvision: Resize(S, BICUBIC) of the
shorter side, the longer to int(S * long / short) (PIL's resize: palette and
1-bit images are resized NEAREST, LA/RGBA with premultiplied alpha),
CenterCrop(S) (top = round((h - S) / 2), Python's round), convert('RGB')
(alpha dropped, not composited), ToTensor, Normalize(mean, std) with the
folder's mean/std (OpenAI's when absent), for both folder formats. Text:
html.unescape twice, strip, runs of the regex module's \\s to one space,
strip, lower case (CLIP applies ftfy.fix_text first: not in Debian, left
out), CLIP's BPE (scripts/bpe_ref.py's), SOT 49406 ... EOT 49407 (the
vocabulary's last two ids), truncation keeps EOT last, padding 0. Image paths
are relative to the current directory; texts are split on "\\n" only, bytes
that are not UTF-8 kept (surrogateescape), as vlptok reads them.

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py,
python3-numpy, python3-pil, python3-torchvision, python3-regex).
"""
import argparse
import html
import json
import math
import os
import re
import sys
import time
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe_ref  # noqa: E402
import safetensors_ref as st  # noqa: E402

# html.unescape turns "&#DIGITS;" into int(DIGITS): more than 4300 digits
# would raise (Python >= 3.11) where vlp and bpe_ref.py give the number.
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP_MERGES = os.path.join(REPO, "tests", "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
CLIP_MERGE_COUNT = 48894  # 49408 - 512 byte symbols - 2 specials
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
SOT_TOKEN, EOT_TOKEN = "<|startoftext|>", "<|endoftext|>"

# OpenCLIP-style model_cfg of each arch. tiny leaves quick_gelu out (default
# false); ViT-B-32 leaves head_width out (default 64), as OpenCLIP's own
# ViT-B-32 config does, so readers' defaults are exercised.
ARCHS = {
    "tiny": {"embed_dim": 32,
             "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 48, "heads": 4, "layers": 2}},
    "tiny-quickgelu": {"embed_dim": 40, "quick_gelu": True,
                       "vision_cfg": {"image_size": 48, "layers": 3, "width": 96, "patch_size": 12,
                                      "head_width": 32},
                       "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 80, "heads": 5,
                                    "layers": 3}},
    "ViT-B-32": {"embed_dim": 512, "quick_gelu": True,
                 "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
                 "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8,
                              "layers": 12}},
}


def fail(msg):
    raise SystemExit(f"pretrained_ref.py: {msg}")


# ---------------------------------------------------------------------------
# Configuration: one internal dict, read from and written to both formats.
#
# cfg keys: embed_dim, image_size, patch_size, vision_width, vision_layers,
# vision_heads, vision_mlp, vision_act, vision_eps, context_length,
# vocab_size, text_width, text_layers, text_heads, text_mlp, text_act,
# text_eps, eos_token_id (hf's pooling rule), mean, std, resize, crop,
# interpolation.

# OpenCLIP config keys accepted when they hold the value that keeps the
# plain CLIP architecture (OpenCLIP's defaults); any other key is refused.
OC_VISION_NEUTRAL = {"ls_init_value": None, "patch_dropout": 0.0, "attentional_pool": False,
                     "no_ln_pre": False, "pos_embed_type": "learnable", "final_ln_after_pool": False,
                     "pool_type": "tok", "output_tokens": False, "act_kwargs": None, "norm_kwargs": None,
                     "input_patchnorm": False, "global_average_pool": False, "timm_model_name": None,
                     "timm_model_pretrained": False, "timm_pool": "avg", "timm_proj": "linear",
                     "timm_proj_bias": False, "timm_drop": 0.0, "timm_drop_path": None}
OC_TEXT_NEUTRAL = {"ls_init_value": None, "hf_tokenizer_name": None,
                   "tokenizer_kwargs": None, "pad_id": 0, "embed_cls": False, "pool_type": "argmax",
                   "proj_bias": False, "proj_type": "linear", "output_tokens": False,
                   "no_causal_mask": False, "act_kwargs": None, "norm_kwargs": None,
                   "hf_model_name": None, "hf_model_pretrained": True, "hf_proj_type": "mlp",
                   "hf_pooler_type": "mean_pooler"}
OC_MODEL_NEUTRAL = {"custom_text": False, "cast_dtype": None, "init_logit_bias": None}


def _take(d, key, where, types=(int,)):
    if key not in d:
        fail(f"{where}: missing {key}")
    v = d[key]
    if not isinstance(v, types) or isinstance(v, bool) or (isinstance(v, (int, float)) and v <= 0):
        fail(f"{where}: {key} = {v!r} is not a positive number")
    return v


def _neutral(d, known, neutral, where):
    for k, v in d.items():
        if k in known:
            continue
        if k not in neutral:
            fail(f"{where}: unsupported key {k!r}")
        if v != neutral[k] and not (v is None or v == {} or v == ""):
            fail(f"{where}: {k} = {v!r} is not supported (only {neutral[k]!r})")


def cfg_from_open_clip(j):
    if "model_cfg" not in j:
        fail("open_clip_config.json: no model_cfg")
    m, pre = j["model_cfg"], j.get("preprocess_cfg", {})
    v, t = m.get("vision_cfg"), m.get("text_cfg")
    if not isinstance(v, dict) or not isinstance(t, dict):
        fail("open_clip_config.json: model_cfg needs vision_cfg and text_cfg")
    _neutral(m, {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg"}, OC_MODEL_NEUTRAL, "model_cfg")
    _neutral(v, {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"},
             OC_VISION_NEUTRAL, "vision_cfg")
    _neutral(t, {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}, OC_TEXT_NEUTRAL,
             "text_cfg")
    act = "quick_gelu" if m.get("quick_gelu", False) else "gelu"
    c = {"embed_dim": _take(m, "embed_dim", "model_cfg")}
    w = _take(v, "width", "vision_cfg")
    hw = v.get("head_width", 64)
    mlp_ratio = v.get("mlp_ratio", 4.0)
    if w % hw:
        fail(f"vision_cfg: width {w} is not a multiple of head_width {hw}")
    c.update(image_size=_take(v, "image_size", "vision_cfg"), patch_size=_take(v, "patch_size", "vision_cfg"),
             vision_width=w, vision_layers=_take(v, "layers", "vision_cfg"), vision_heads=w // hw,
             vision_mlp=int(w * mlp_ratio), vision_act=act, vision_eps=1e-5)
    wt = _take(t, "width", "text_cfg")
    c.update(context_length=_take(t, "context_length", "text_cfg"), vocab_size=_take(t, "vocab_size", "text_cfg"),
             text_width=wt, text_layers=_take(t, "layers", "text_cfg"), text_heads=_take(t, "heads", "text_cfg"),
             text_mlp=int(wt * t.get("mlp_ratio", 4.0)), text_act=act, text_eps=1e-5, eos_token_id=None)
    if wt % c["text_heads"]:
        fail(f"text_cfg: width {wt} is not a multiple of heads {c['text_heads']}")
    _neutral(pre, {"mean", "std", "interpolation", "resize_mode", "size"},
             {"fill_color": 0}, "preprocess_cfg")
    if pre.get("resize_mode", "shortest") != "shortest":
        fail(f"preprocess_cfg: resize_mode {pre['resize_mode']!r} is not supported (only 'shortest')")
    interp = pre.get("interpolation", "bicubic")
    if interp not in ("bicubic", "bilinear"):
        fail(f"preprocess_cfg: interpolation {interp!r} is not supported")
    size = pre.get("size", c["image_size"])
    if size not in (c["image_size"], [c["image_size"]] * 2):
        fail(f"preprocess_cfg: size {size!r} differs from image_size {c['image_size']}")
    c.update(mean=list(pre.get("mean", OPENAI_MEAN)), std=list(pre.get("std", OPENAI_STD)),
             resize=c["image_size"], crop=c["image_size"], interpolation=interp)
    return c


def cfg_to_open_clip(c, model_cfg=None):
    if c["vision_act"] != c["text_act"]:
        fail("OpenCLIP has one activation for both towers")
    if c["vision_eps"] != 1e-5 or c["text_eps"] != 1e-5:
        fail("OpenCLIP's LayerNorm eps is 1e-5")
    if c["resize"] != c["image_size"] or c["crop"] != c["image_size"]:
        fail(f"resize {c['resize']} / crop {c['crop']} differ from image_size {c['image_size']}")
    if model_cfg is None:
        hw = c["vision_width"] // c["vision_heads"]
        vision = {"image_size": c["image_size"], "layers": c["vision_layers"], "width": c["vision_width"],
                  "patch_size": c["patch_size"]}
        if hw != 64:
            vision["head_width"] = hw
        if c["vision_mlp"] != 4 * c["vision_width"]:
            vision["mlp_ratio"] = c["vision_mlp"] / c["vision_width"]
        text = {"context_length": c["context_length"], "vocab_size": c["vocab_size"], "width": c["text_width"],
                "heads": c["text_heads"], "layers": c["text_layers"]}
        if c["text_mlp"] != 4 * c["text_width"]:
            text["mlp_ratio"] = c["text_mlp"] / c["text_width"]
        model_cfg = {"embed_dim": c["embed_dim"]}
        if c["vision_act"] == "quick_gelu":
            model_cfg["quick_gelu"] = True
        model_cfg.update(vision_cfg=vision, text_cfg=text)
    return {"model_cfg": model_cfg,
            "preprocess_cfg": {"mean": c["mean"], "std": c["std"], "interpolation": c["interpolation"],
                               "resize_mode": "shortest"}}


# transformers' CLIPTextConfig / CLIPVisionConfig defaults (a key absent from
# config.json takes these). eos_token_id: 49407 in transformers >= 4.31 (PR
# #24773); the configs OpenAI's models were saved with say 2, the value that
# keeps the old argmax pooling.
HF_TEXT_DEFAULTS = {"hidden_size": 512, "intermediate_size": 2048, "num_attention_heads": 8,
                    "num_hidden_layers": 12, "max_position_embeddings": 77, "vocab_size": 49408,
                    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "eos_token_id": 49407}
HF_VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12,
                      "num_hidden_layers": 12, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu",
                      "layer_norm_eps": 1e-5, "num_channels": 3}


def cfg_from_hf(j, pre):
    if j.get("model_type") != "clip":
        fail(f"config.json: model_type {j.get('model_type')!r}, expected 'clip'")
    tc = j.get("text_config") or j.get("text_config_dict") or {}
    vc = j.get("vision_config") or j.get("vision_config_dict") or {}
    t = dict(HF_TEXT_DEFAULTS, **{k: v for k, v in tc.items() if v is not None})
    v = dict(HF_VISION_DEFAULTS, **{k: v for k, v in vc.items() if v is not None})
    for where, d in (("text_config", t), ("vision_config", v)):
        if d["hidden_act"] not in ("gelu", "quick_gelu"):
            fail(f"config.json: {where}.hidden_act {d['hidden_act']!r} is not supported")
        if d["hidden_size"] % d["num_attention_heads"]:
            fail(f"config.json: {where}: hidden_size not a multiple of num_attention_heads")
    if v["num_channels"] != 3:
        fail(f"config.json: vision_config.num_channels {v['num_channels']}, expected 3")
    c = {"embed_dim": j.get("projection_dim", 512),
         "image_size": v["image_size"], "patch_size": v["patch_size"], "vision_width": v["hidden_size"],
         "vision_layers": v["num_hidden_layers"], "vision_heads": v["num_attention_heads"],
         "vision_mlp": v["intermediate_size"], "vision_act": v["hidden_act"], "vision_eps": v["layer_norm_eps"],
         "context_length": t["max_position_embeddings"], "vocab_size": t["vocab_size"],
         "text_width": t["hidden_size"], "text_layers": t["num_hidden_layers"],
         "text_heads": t["num_attention_heads"], "text_mlp": t["intermediate_size"], "text_act": t["hidden_act"],
         "text_eps": t["layer_norm_eps"], "eos_token_id": t["eos_token_id"]}
    # CLIPImageProcessor: size {"shortest_edge": S} (older files: an int),
    # crop_size {"height", "width"} (older: an int); resample 3 = bicubic.
    size = pre.get("size", {"shortest_edge": c["image_size"]})
    resize = size if isinstance(size, int) else size.get("shortest_edge")
    crop = pre.get("crop_size", {"height": c["image_size"], "width": c["image_size"]})
    if isinstance(crop, dict):
        if crop.get("height") != crop.get("width"):
            fail(f"preprocessor_config.json: crop_size {crop} is not square")
        crop = crop.get("height")
    if not isinstance(resize, int) or not isinstance(crop, int):
        fail(f"preprocessor_config.json: size {size!r} / crop_size {crop!r} not understood")
    for key, want in (("do_resize", True), ("do_center_crop", True), ("do_normalize", True),
                      ("do_rescale", True), ("do_convert_rgb", True)):
        if pre.get(key, want) is not want:
            fail(f"preprocessor_config.json: {key} = {pre[key]!r} is not supported")
    if abs(pre.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-12:
        fail("preprocessor_config.json: rescale_factor other than 1/255 is not supported")
    resample = pre.get("resample", 3)
    if resample not in (2, 3):
        fail(f"preprocessor_config.json: resample {resample} is not supported (2 bilinear, 3 bicubic)")
    if crop != c["image_size"]:
        fail(f"preprocessor_config.json: crop {crop} differs from image_size {c['image_size']}")
    c.update(mean=list(pre.get("image_mean", OPENAI_MEAN)), std=list(pre.get("image_std", OPENAI_STD)),
             resize=resize, crop=crop, interpolation="bicubic" if resample == 3 else "bilinear")
    return c


# What the transformers layout here rests on, and what it does not:
# - Checked against transformers' modeling_clip.py (read through the code
#   search, not run): the parameter names, Linear projections stored
#   (out, in), q scaled by head_dim^-0.5 before QK^T, pre_layrnorm on the
#   embeddings, post_layernorm on the class token, and text pooling: argmax
#   of the ids when text_config.eos_token_id == 2 (OpenAI's configs), else
#   the first eos_token_id. Checked against public config.json,
#   tokenizer_config.json and preprocessor_config.json files of
#   openai/clip-vit-base-patch32 and laion models: key names and values.
# - Not verified (transformers is not installed): that transformers loads
#   these folders; that it accepts plain strings for the special tokens in
#   tokenizer_config.json (openai's file has AddedToken objects there); and
#   which transformers version stopped saving the position_ids buffers (we
#   write no transformers_version).
# - transformers' CLIPImageProcessor is not CLIP's pipeline: it converts to
#   RGB before resizing (CLIP: after, so RGBA/LA/P images differ), and its
#   center_crop takes top = (h - S) // 2 where torchvision rounds (they
#   differ by one pixel when h - S = 3 mod 4). embed follows CLIP for both
#   formats, as vlp does.
def cfg_to_hf(c, torch_dtype="float32"):
    pd = c["embed_dim"]
    eos = 2 if c.get("eos_token_id") is None else c["eos_token_id"]
    text = {"hidden_size": c["text_width"], "intermediate_size": c["text_mlp"],
            "num_attention_heads": c["text_heads"], "num_hidden_layers": c["text_layers"],
            "max_position_embeddings": c["context_length"], "vocab_size": c["vocab_size"],
            "hidden_act": c["text_act"], "layer_norm_eps": c["text_eps"], "attention_dropout": 0.0,
            "dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02, "projection_dim": pd,
            "bos_token_id": 0, "eos_token_id": eos, "pad_token_id": 1, "model_type": "clip_text_model"}
    vision = {"hidden_size": c["vision_width"], "intermediate_size": c["vision_mlp"],
              "num_attention_heads": c["vision_heads"], "num_hidden_layers": c["vision_layers"],
              "image_size": c["image_size"], "patch_size": c["patch_size"], "hidden_act": c["vision_act"],
              "layer_norm_eps": c["vision_eps"], "num_channels": 3, "attention_dropout": 0.0, "dropout": 0.0,
              "initializer_factor": 1.0, "initializer_range": 0.02, "projection_dim": pd,
              "model_type": "clip_vision_model"}
    config = {"architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592,
              "model_type": "clip", "projection_dim": pd, "text_config": text, "torch_dtype": torch_dtype,
              "vision_config": vision}
    interp = {"bicubic": 3, "bilinear": 2}[c["interpolation"]]
    pre = {"crop_size": {"height": c["crop"], "width": c["crop"]}, "do_center_crop": True,
           "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
           "image_mean": c["mean"], "image_processor_type": "CLIPImageProcessor", "image_std": c["std"],
           "processor_class": "CLIPProcessor", "resample": interp, "rescale_factor": 1 / 255,
           "size": {"shortest_edge": c["resize"]}}
    return config, pre


# ---------------------------------------------------------------------------
# Names: OpenCLIP's state_dict and the transformers CLIPModel's.

def open_clip_shapes(c):
    """{name: shape} of OpenCLIP's state_dict for cfg c, in a fixed order."""
    s = OrderedDict()
    wv, wt, d, p = c["vision_width"], c["text_width"], c["embed_dim"], c["patch_size"]
    g = c["image_size"] // p
    s["visual.class_embedding"] = (wv,)
    s["visual.positional_embedding"] = (g * g + 1, wv)
    s["visual.proj"] = (wv, d)
    s["visual.conv1.weight"] = (wv, 3, p, p)
    s["visual.ln_pre.weight"] = s["visual.ln_pre.bias"] = (wv,)

    def blocks(prefix, w, layers, mlp):
        for i in range(layers):
            b = f"{prefix}.resblocks.{i}."
            s[b + "ln_1.weight"] = s[b + "ln_1.bias"] = (w,)
            s[b + "attn.in_proj_weight"] = (3 * w, w)
            s[b + "attn.in_proj_bias"] = (3 * w,)
            s[b + "attn.out_proj.weight"] = (w, w)
            s[b + "attn.out_proj.bias"] = (w,)
            s[b + "ln_2.weight"] = s[b + "ln_2.bias"] = (w,)
            s[b + "mlp.c_fc.weight"] = (mlp, w)
            s[b + "mlp.c_fc.bias"] = (mlp,)
            s[b + "mlp.c_proj.weight"] = (w, mlp)
            s[b + "mlp.c_proj.bias"] = (w,)

    blocks("visual.transformer", wv, c["vision_layers"], c["vision_mlp"])
    s["visual.ln_post.weight"] = s["visual.ln_post.bias"] = (wv,)
    s["token_embedding.weight"] = (c["vocab_size"], wt)
    s["positional_embedding"] = (c["context_length"], wt)
    blocks("transformer", wt, c["text_layers"], c["text_mlp"])
    s["ln_final.weight"] = s["ln_final.bias"] = (wt,)
    s["text_projection"] = (wt, d)
    s["logit_scale"] = ()
    return s


HF_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
            "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
HF_TOP = {"visual.class_embedding": "vision_model.embeddings.class_embedding",
          "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
          "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
          "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
          "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
          "visual.ln_post.weight": "vision_model.post_layernorm.weight",
          "visual.ln_post.bias": "vision_model.post_layernorm.bias",
          "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
          "positional_embedding": "text_model.embeddings.position_embedding.weight",
          "ln_final.weight": "text_model.final_layer_norm.weight",
          "ln_final.bias": "text_model.final_layer_norm.bias",
          "logit_scale": "logit_scale"}
BLOCK_RE = re.compile(r"^(visual\.transformer|transformer)\.resblocks\.(\d+)\.(.+)$")
HF_BLOCK_RE = re.compile(r"^(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.+)$")
POSITION_IDS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")


def open_clip_to_hf(state):
    """{name: (dtype, array)} OpenCLIP names -> transformers names."""
    out = OrderedDict()
    for name, (dtype, a) in state.items():
        m = BLOCK_RE.match(name)
        if m:
            tower = "vision_model" if m.group(1) == "visual.transformer" else "text_model"
            prefix, rest = f"{tower}.encoder.layers.{m.group(2)}.", m.group(3)
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if rest.endswith("weight") else "bias"
                for part, chunk in zip("qkv", np.split(a, 3, axis=0)):
                    out[f"{prefix}self_attn.{part}_proj.{kind}"] = (dtype, np.ascontiguousarray(chunk))
                continue
            mod, kind = rest.rsplit(".", 1)
            if mod not in HF_BLOCK:
                fail(f"no transformers name for {name}")
            out[prefix + HF_BLOCK[mod] + "." + kind] = (dtype, a)
        elif name == "visual.proj":
            out["visual_projection.weight"] = (dtype, np.ascontiguousarray(a.T))
        elif name == "text_projection":
            out["text_projection.weight"] = (dtype, np.ascontiguousarray(a.T))
        elif name in HF_TOP:
            out[HF_TOP[name]] = (dtype, a)
        else:
            fail(f"no transformers name for {name}")
    return out


def hf_to_open_clip(state):
    """The reverse of open_clip_to_hf (position_ids buffers dropped)."""
    inv_top = {v: k for k, v in HF_TOP.items()}
    inv_block = {v: k for k, v in HF_BLOCK.items()}
    out, qkv = OrderedDict(), {}
    for name, (dtype, a) in state.items():
        m = HF_BLOCK_RE.match(name)
        if name in POSITION_IDS:
            continue
        if m:
            tower = "visual.transformer" if m.group(1) == "vision_model" else "transformer"
            prefix, rest = f"{tower}.resblocks.{m.group(2)}.", m.group(3)
            mm = re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest)
            if mm:
                qkv.setdefault((prefix, mm.group(2)), {})[mm.group(1)] = (dtype, a)
                continue
            mod, kind = rest.rsplit(".", 1)
            if mod not in inv_block:
                fail(f"no OpenCLIP name for {name}")
            out[prefix + inv_block[mod] + "." + kind] = (dtype, a)
        elif name == "visual_projection.weight":
            out["visual.proj"] = (dtype, np.ascontiguousarray(a.T))
        elif name == "text_projection.weight":
            out["text_projection"] = (dtype, np.ascontiguousarray(a.T))
        elif name in inv_top:
            out[inv_top[name]] = (dtype, a)
        else:
            fail(f"no OpenCLIP name for {name}")
    for (prefix, kind), parts in qkv.items():
        if set(parts) != set("qkv") or len({parts[p][0] for p in "qkv"}) != 1:
            fail(f"{prefix}: q/k/v {kind}s missing or of different dtypes")
        out[f"{prefix}attn.in_proj_{kind}"] = (parts["q"][0], np.concatenate([parts[p][1] for p in "qkv"]))
    return out


# ---------------------------------------------------------------------------
# Random weights.

def random_state(c, seed, dtype):
    """OpenCLIP-named {name: (dtype, float32 array of the stored values)}.
    Scales like OpenCLIP's init (embeddings and projections width^-0.5,
    attention width^-0.5, MLP in (2 width)^-0.5, residual outputs scaled by
    (2 layers)^-0.5), LayerNorm gains 1 + noise, every bias random, so a
    transposed, swapped or dropped tensor changes the embeddings. (The key
    part of in_proj_bias cancels in the softmax: no output depends on it.)"""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for name, shape in open_clip_shapes(c).items():
        w = c["vision_width"] if name.startswith("visual.") else c["text_width"]
        layers = c["vision_layers"] if name.startswith("visual.") else c["text_layers"]
        proj_std = w ** -0.5 * (2 * layers) ** -0.5
        if name == "logit_scale":
            a = torch.tensor(math.log(1 / 0.07))
        elif name == "visual.conv1.weight":
            a = torch.randn(shape, generator=gen) * (3 * c["patch_size"] ** 2) ** -0.5
        elif re.search(r"(ln_\w+|ln_final)\.weight$", name):
            a = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif re.search(r"(ln_\w+|ln_final)\.bias$", name):
            a = 0.05 * torch.randn(shape, generator=gen)
        elif name.endswith("in_proj_weight"):
            a = torch.randn(shape, generator=gen) * w ** -0.5
        elif name.endswith(("in_proj_bias", "c_fc.bias")):
            a = 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(("out_proj.bias", "c_proj.bias")):
            a = 0.05 * torch.randn(shape, generator=gen)
        elif name.endswith(("out_proj.weight", "c_proj.weight")):
            a = torch.randn(shape, generator=gen) * proj_std
        elif name.endswith("c_fc.weight"):
            a = torch.randn(shape, generator=gen) * (2 * w) ** -0.5
        else:  # class/positional/token embeddings, visual.proj, text_projection
            a = torch.randn(shape, generator=gen) * w ** -0.5
        out[name] = (dtype, st.round_to(a.numpy(), dtype))
    return out


# ---------------------------------------------------------------------------
# Tokenizer files.

def clip_vocab(merges):
    """token -> id in CLIP's layout: 256 byte symbols in bytes_to_unicode
    order, the same with </w>, one per merge, SOT, EOT (last equal string
    wins, as in CLIP's dict)."""
    syms = list(bpe_ref.BYTE_CHAR.values())
    syms += [s + "</w>" for s in syms]
    syms += [a + b for a, b in merges]
    syms += [SOT_TOKEN, EOT_TOKEN]
    return {s: i for i, s in enumerate(syms)}, len(syms)


def load_clip_merges(path, vocab_size):
    """The merges a vocabulary of vocab_size uses (vocab_size - 514)."""
    want = vocab_size - 514
    if want < 0:
        fail(f"vocab_size {vocab_size} is below 514")
    merges = bpe_ref.load_merges(path, want)
    if len(merges) != want:
        fail(f"{path}: {len(merges)} merges, vocab_size {vocab_size} needs {want}")
    return merges


def write_tokenizer_files(out, merges, context_length):
    vocab, n = clip_vocab(merges)
    if len(vocab) != n:
        print(f"pretrained_ref.py: warning: {n - len(vocab)} duplicate vocabulary strings", file=sys.stderr)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    # As openai/clip-vit-base-patch32 has them (the AddedToken objects of
    # older transformers written as plain strings, which newer versions read).
    tok_cfg = {"unk_token": EOT_TOKEN, "bos_token": SOT_TOKEN, "eos_token": EOT_TOKEN, "pad_token": EOT_TOKEN,
               "add_prefix_space": False, "errors": "replace", "do_lower_case": True,
               "model_max_length": context_length, "tokenizer_class": "CLIPTokenizer"}
    special = {"bos_token": SOT_TOKEN, "eos_token": EOT_TOKEN, "unk_token": EOT_TOKEN, "pad_token": EOT_TOKEN}
    dump_json(os.path.join(out, "tokenizer_config.json"), tok_cfg)
    dump_json(os.path.join(out, "special_tokens_map.json"), special)


def dump_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def clip_clean(text):
    """CLIP's basic_clean + whitespace_clean + lower, without ftfy. CLIP's
    simple_tokenizer imports regex as re: \\s is the regex module's (the
    standard library's also takes U+001C..U+001F)."""
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class ClipTokenizer:
    """CLIP's tokenizer: bpe_ref's BPE with CLIP's own cleaning (html.unescape)
    and a vocabulary given as vocab.json or laid out from the merges."""

    def __init__(self, merges, vocab=None):
        self.bpe = bpe_ref.Tokenizer(merges)
        if vocab is not None:
            self.bpe.encoder = vocab
        self.encoder = self.bpe.encoder
        self.sot, self.eot = self.encoder[SOT_TOKEN], self.encoder[EOT_TOKEN]

    def encode(self, text, context_length):
        ids = [self.sot]
        for word in bpe_ref.PAT.findall(clip_clean(text)):
            if word in (SOT_TOKEN, EOT_TOKEN):
                ids.append(self.encoder[word])
                continue
            for sym in self.bpe.bpe(word.encode("utf-8", "surrogateescape")):
                if sym not in self.encoder:
                    fail(f"token {sym!r} is not in the vocabulary")
                ids.append(self.encoder[sym])
        ids.append(self.eot)
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.eot
        return ids + [0] * (context_length - len(ids))


def hf_tokenizer(src, c):
    merges_path, vocab_path = os.path.join(src, "merges.txt"), os.path.join(src, "vocab.json")
    for p in (merges_path, vocab_path):
        if not os.path.exists(p):
            fail(f"{src}: no {os.path.basename(p)}")
    vocab = load_json(vocab_path)
    merges = load_clip_merges(merges_path, c["vocab_size"])
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        fail(f"{vocab_path}: not a token -> id object")
    for s in [SOT_TOKEN, EOT_TOKEN] + list(bpe_ref.BYTE_CHAR.values()) + [a + b for a, b in merges]:
        if s not in vocab:
            fail(f"{vocab_path}: no {s!r}")
    if max(vocab.values()) != c["vocab_size"] - 1 or vocab[EOT_TOKEN] != c["vocab_size"] - 1:
        fail(f"{vocab_path}: EOT {vocab[EOT_TOKEN]}, largest id {max(vocab.values())}, "
             f"vocab_size {c['vocab_size']}: EOT must be the largest id")
    want, _ = clip_vocab(merges)
    layout = "CLIP's layout" if want == vocab else "NOT CLIP's layout (used as given)"
    print(f"pretrained_ref.py: tokenizer {len(merges)} merges + vocab.json of {len(vocab)} ({layout})")
    return ClipTokenizer(merges, vocab)


# ---------------------------------------------------------------------------
# Folder I/O.

def detect_format(src, forced=None):
    if os.path.isfile(src):
        return "safetensors"
    oc = os.path.exists(os.path.join(src, "open_clip_config.json"))
    hf = os.path.exists(os.path.join(src, "config.json"))
    if forced:
        return forced
    if oc and hf:
        print(f"pretrained_ref.py: {src} holds both formats; reading open_clip (--format to choose)",
              file=sys.stderr)
    if oc:
        return "open_clip"
    if hf:
        return "hf"
    fail(f"{src}: neither open_clip_config.json nor config.json")


def check_names(state, expected, path, allowed_extra=()):
    missing = [n for n in expected if n not in state]
    unexpected = [n for n in state if n not in expected and n not in allowed_extra]
    if missing or unexpected:
        fail(f"{path}: missing tensors {missing[:8]}{' ...' if len(missing) > 8 else ''}; "
             f"unexpected tensors {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    for n, shape in expected.items():
        dtype, a = state[n]
        if tuple(a.shape) != tuple(shape):
            fail(f"{path}: {n} has shape {list(a.shape)}, expected {list(shape)}")
        if dtype not in ("F32", "F16", "BF16"):
            fail(f"{path}: {n} has dtype {dtype}, expected F32, F16 or BF16")


def hf_shapes(c):
    shapes = OrderedDict()
    for name, shape in open_clip_to_hf({n: ("F32", np.empty(s, np.float32))
                                        for n, s in open_clip_shapes(c).items()}).items():
        shapes[name] = shape[1].shape
    return shapes


def read_folder(src, fmt, arch=None):
    """(cfg, {name: (dtype, float32 array)} in the folder's own names, fmt)."""
    if fmt == "safetensors":
        if not arch:
            fail(f"{src}: a bare safetensors file needs --arch")
        c = cfg_from_open_clip({"model_cfg": ARCHS[arch]})
        state, _ = st.read(src)
        check_names(state, open_clip_shapes(c), src)
        return c, state
    if fmt == "open_clip":
        c = cfg_from_open_clip(load_json(os.path.join(src, "open_clip_config.json")))
        path = os.path.join(src, "open_clip_model.safetensors")
        if not os.path.exists(path):
            fail(f"{src}: no open_clip_model.safetensors (pickled .bin checkpoints are not read)")
        try:
            state, _ = st.read(path)
        except st.FormatError as e:
            fail(str(e))
        check_names(state, open_clip_shapes(c), path)
        return c, state
    pre_path = os.path.join(src, "preprocessor_config.json")
    pre = load_json(pre_path) if os.path.exists(pre_path) else {}
    c = cfg_from_hf(load_json(os.path.join(src, "config.json")), pre)
    path = os.path.join(src, "model.safetensors")
    if not os.path.exists(path):
        fail(f"{src}: no model.safetensors (pytorch_model.bin is not read)")
    try:
        state, _ = st.read(path)
    except st.FormatError as e:
        fail(str(e))
    check_names(state, hf_shapes(c), path, allowed_extra=POSITION_IDS)
    grid = (c["image_size"] // c["patch_size"]) ** 2 + 1
    for name, n in zip(POSITION_IDS, (c["context_length"], grid)):
        if name in state:
            dtype, a = state[name]
            if dtype not in ("I64", "I32") or a.shape != (1, n) or not np.array_equal(a[0], np.arange(n)):
                fail(f"{path}: {name} is not arange({n}) of shape [1, {n}]")
    return c, state


def write_folder(fmt, out, c, state, legacy_position_ids=False, vocab=None, model_cfg=None):
    """state: OpenCLIP-named {name: (dtype, float32 array)}."""
    meta = {"format": "pt"}
    if fmt == "safetensors":
        return st.write(out, state, meta)
    os.makedirs(out, exist_ok=True)
    if fmt == "open_clip":
        dump_json(os.path.join(out, "open_clip_config.json"), cfg_to_open_clip(c, model_cfg))
        return st.write(os.path.join(out, "open_clip_model.safetensors"), state, meta)
    hf_state = open_clip_to_hf(state)
    if legacy_position_ids:
        grid = (c["image_size"] // c["patch_size"]) ** 2 + 1
        hf_state["text_model.embeddings.position_ids"] = ("I64", np.arange(c["context_length"])[None])
        hf_state["vision_model.embeddings.position_ids"] = ("I64", np.arange(grid)[None])
    dtypes = {d for d, _ in state.values()}
    torch_dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtypes.pop()] if len(dtypes) == 1 \
        else "float32"
    config, pre = cfg_to_hf(c, torch_dtype)
    dump_json(os.path.join(out, "config.json"), config)
    dump_json(os.path.join(out, "preprocessor_config.json"), pre)
    write_tokenizer_files(out, load_clip_merges(vocab or CLIP_MERGES, c["vocab_size"]), c["context_length"])
    return st.write(os.path.join(out, "model.safetensors"), hf_state, meta)


# ---------------------------------------------------------------------------
# Model 1: OpenCLIP's module tree and names (fused in_proj, torch's MHA).

class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def activation(name):
    return QuickGELU() if name == "quick_gelu" else nn.GELU()


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp, act):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, mlp)), ("gelu", activation(act)),
                                              ("c_proj", nn.Linear(mlp, width))]))

    def forward(self, x, mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, mlp, act):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp, act) for _ in range(layers)])

    def forward(self, x, mask=None):
        for block in self.resblocks:
            x = block(x, mask)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, p, g = c["vision_width"], c["patch_size"], c["image_size"] // c["patch_size"]
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty(g * g + 1, w))
        self.ln_pre = nn.LayerNorm(w, eps=1e-5)
        self.transformer = Transformer(w, c["vision_layers"], c["vision_heads"], c["vision_mlp"], c["vision_act"])
        self.ln_post = nn.LayerNorm(w, eps=1e-5)
        self.proj = nn.Parameter(torch.empty(w, c["embed_dim"]))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj


class OpenCLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["text_width"]
        self.visual = VisionTransformer(c)
        self.transformer = Transformer(w, c["text_layers"], c["text_heads"], c["text_mlp"], c["text_act"])
        self.token_embedding = nn.Embedding(c["vocab_size"], w)
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], w))
        self.ln_final = nn.LayerNorm(w, eps=1e-5)
        self.text_projection = nn.Parameter(torch.empty(w, c["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.empty(()))
        mask = torch.full((c["context_length"],) * 2, float("-inf")).triu(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def encode_image(self, x):
        return F.normalize(self.visual(x), dim=-1)

    def encode_text(self, ids):
        x = self.token_embedding(ids) + self.positional_embedding
        x = self.ln_final(self.transformer(x, self.attn_mask))
        x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return F.normalize(x @ self.text_projection, dim=-1)


# ---------------------------------------------------------------------------
# Model 2: transformers' CLIPModel module tree and names, written out
# (separate q/k/v, q scaled before QK^T, additive causal mask, Linear
# projections, position_ids buffers).

def hf_act(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    return lambda x: F.gelu(x)  # transformers' "gelu": the exact erf form


class HFAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x, mask=None):
        b, t, w = x.shape

        def split(y):
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q = split(self.q_proj(x) * self.head_dim ** -0.5)
        k, v = split(self.k_proj(x)), split(self.v_proj(x))
        scores = q @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores + mask
        out = scores.softmax(dim=-1) @ v
        return self.out_proj(out.transpose(1, 2).reshape(b, t, w))


class HFMLP(nn.Module):
    def __init__(self, width, inter, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(width, inter), nn.Linear(inter, width), hf_act(act)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class HFLayer(nn.Module):
    def __init__(self, width, heads, inter, act, eps):
        super().__init__()
        self.self_attn = HFAttention(width, heads)
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.mlp = HFMLP(width, inter, act)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x, mask=None):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class HFEncoder(nn.Module):
    def __init__(self, width, layers, heads, inter, act, eps):
        super().__init__()
        self.layers = nn.ModuleList([HFLayer(width, heads, inter, act, eps) for _ in range(layers)])

    def forward(self, x, mask=None):
        for layer in self.layers:
            x = layer(x, mask)
        return x


class HFVisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, p = c["vision_width"], c["patch_size"]
        n = (c["image_size"] // p) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.patch_embedding = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.position_embedding = nn.Embedding(n, w)
        self.register_buffer("position_ids", torch.arange(n)[None], persistent=False)

    def forward(self, pixels):
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(pixels.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding(self.position_ids)


class HFVisionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["vision_width"]
        self.embeddings = HFVisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(w, eps=c["vision_eps"])
        self.encoder = HFEncoder(w, c["vision_layers"], c["vision_heads"], c["vision_mlp"], c["vision_act"],
                                 c["vision_eps"])
        self.post_layernorm = nn.LayerNorm(w, eps=c["vision_eps"])

    def forward(self, pixels):
        x = self.encoder(self.pre_layrnorm(self.embeddings(pixels)))
        return self.post_layernorm(x[:, 0])


class HFTextEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.token_embedding = nn.Embedding(c["vocab_size"], c["text_width"])
        self.position_embedding = nn.Embedding(c["context_length"], c["text_width"])
        self.register_buffer("position_ids", torch.arange(c["context_length"])[None], persistent=False)

    def forward(self, ids):
        return self.token_embedding(ids) + self.position_embedding(self.position_ids[:, :ids.shape[1]])


class HFTextModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        w = c["text_width"]
        self.eos_token_id = c["eos_token_id"]
        self.embeddings = HFTextEmbeddings(c)
        self.encoder = HFEncoder(w, c["text_layers"], c["text_heads"], c["text_mlp"], c["text_act"], c["text_eps"])
        self.final_layer_norm = nn.LayerNorm(w, eps=c["text_eps"])

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.full((t, t), torch.finfo(torch.float32).min).triu(1)[None, None]
        x = self.final_layer_norm(self.encoder(self.embeddings(ids), mask))
        if self.eos_token_id == 2:  # transformers' legacy rule: EOT is the largest id
            pos = ids.argmax(dim=-1)
        else:  # the first eos_token_id
            pos = (ids == self.eos_token_id).int().argmax(dim=-1)
        return x[torch.arange(x.shape[0]), pos]


class HFCLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.text_model = HFTextModel(c)
        self.vision_model = HFVisionModel(c)
        self.visual_projection = nn.Linear(c["vision_width"], c["embed_dim"], bias=False)
        self.text_projection = nn.Linear(c["text_width"], c["embed_dim"], bias=False)
        self.logit_scale = nn.Parameter(torch.empty(()))

    def encode_image(self, x):
        return F.normalize(self.visual_projection(self.vision_model(x)), dim=-1)

    def encode_text(self, ids):
        return F.normalize(self.text_projection(self.text_model(ids)), dim=-1)


def build_model(c, state, fmt):
    model = HFCLIP(c) if fmt == "hf" else OpenCLIP(c)
    tensors = {n: torch.from_numpy(np.ascontiguousarray(a)) for n, (d, a) in state.items()
               if n not in POSITION_IDS}
    want = model.state_dict()
    if set(want) != set(tensors):  # check_names has run: this is a bug of this script
        fail(f"model/state mismatch: {sorted(set(want) ^ set(tensors))[:8]}")
    model.load_state_dict(tensors, strict=True)
    return model.eval()


# ---------------------------------------------------------------------------
# embed

def preprocess(path, c):
    import warnings
    from PIL import Image
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    from torchvision import transforms as T
    interp = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}[c["interpolation"]]
    with Image.open(path) as im:
        im = T.CenterCrop(c["crop"])(T.Resize(c["resize"], interpolation=interp)(im))
        im = im.convert("RGB")
    pixels = np.asarray(im, dtype=np.uint8).copy()
    x = T.Normalize(c["mean"], c["std"])(T.ToTensor()(im))
    return pixels, x


def read_list(path):
    with open(path, "rb") as f:
        data = f.read()
    return bpe_ref.read_lines(data)


def cmd_embed(args):
    t0 = time.perf_counter()
    fmt = detect_format(args.src, args.format)
    c, state = read_folder(args.src, fmt, args.arch)
    t_read = time.perf_counter() - t0
    logit_scale = float(state["logit_scale"][1])
    if fmt == "hf":
        tok = hf_tokenizer(args.src, c)
    else:
        tok = ClipTokenizer(load_clip_merges(args.vocab or CLIP_MERGES, c["vocab_size"]))
    model = build_model(c, state, "hf" if fmt == "hf" else "open_clip")
    del state
    images = [p for p in read_list(args.images) if p.strip()] if args.images else []
    texts = read_list(args.texts) if args.texts else []
    pixels, batch, feats = [], [], []
    with torch.no_grad():
        for i, p in enumerate(images):
            px, x = preprocess(p, c)
            pixels.append(px)
            batch.append(x)
            if len(batch) == 32 or i == len(images) - 1:
                feats.append(model.encode_image(torch.stack(batch)))
                batch = []
        img = torch.cat(feats).numpy() if feats else np.zeros((0, c["embed_dim"]), np.float32)
        ids = np.array([tok.encode(t, c["context_length"]) for t in texts], dtype=np.int64)
        ids = ids.reshape(len(texts), c["context_length"])
        txt = torch.cat([model.encode_text(torch.from_numpy(ids[i:i + 64])) for i in range(0, len(ids), 64)]) \
            .numpy() if len(ids) else np.zeros((0, c["embed_dim"]), np.float32)
    s = c["crop"]
    with h5py.File(args.output, "w") as f:
        f["image_features"] = img.astype(np.float32)
        f["text_features"] = txt.astype(np.float32)
        f["pixels"] = np.stack(pixels) if pixels else np.zeros((0, s, s, 3), np.uint8)
        f["ids"] = ids.astype(np.int32)
        f["logit_scale"] = np.float32(logit_scale)
        f.attrs["format"] = "hf" if fmt == "hf" else "open_clip"
    print(f"pretrained_ref.py: {fmt} {args.src}: {len(images)} images, {len(texts)} texts -> {args.output} "
          f"(read {t_read:.2f} s, total {time.perf_counter() - t0:.2f} s)")
    return 0


# ---------------------------------------------------------------------------
# write, convert, compare

def cmd_write(args):
    t0 = time.perf_counter()
    model_cfg = ARCHS[args.arch]
    c = cfg_from_open_clip({"model_cfg": model_cfg})
    if args.vocab:
        n = len(bpe_ref.load_merges(args.vocab, CLIP_MERGE_COUNT))
        c["vocab_size"] = 512 + n + 2
        model_cfg = json.loads(json.dumps(model_cfg))
        model_cfg["text_cfg"]["vocab_size"] = c["vocab_size"]
    if args.legacy_position_ids and args.format != "hf":
        fail("--legacy-position-ids is for hf folders")
    state = random_state(c, args.seed, args.dtype)
    size = write_folder(args.format, args.out, c, state, args.legacy_position_ids, args.vocab, model_cfg)
    print(f"pretrained_ref.py: wrote {args.format} {args.arch} {args.dtype} seed {args.seed} to {args.out} "
          f"({sum(a.size for _, a in state.values())} parameters, {size} bytes, "
          f"{time.perf_counter() - t0:.2f} s)")
    return 0


def cmd_convert(args):
    fmt = detect_format(args.src)
    if fmt == "safetensors":
        fail("convert reads folders")
    c, state = read_folder(args.src, fmt)
    if fmt == "hf":
        state = hf_to_open_clip(state)
    check_names(state, open_clip_shapes(c), args.src)
    vocab = args.vocab
    if args.to == "hf" and fmt == "hf" and not vocab:
        vocab = os.path.join(args.src, "merges.txt")
    if c["eos_token_id"] is None:
        c["eos_token_id"] = 2
    size = write_folder(args.to, args.out, c, state, args.legacy_position_ids, vocab)
    print(f"pretrained_ref.py: {fmt} {args.src} -> {args.to} {args.out} ({size} bytes)")
    return 0


def cmd_compare(args):
    bad = False
    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        for key in ("image_features", "text_features"):
            if key not in fa or key not in fb:
                print(f"{key}: missing from {'A' if key not in fa else 'B'}")
                bad = True
                continue
            a, b = np.array(fa[key], np.float64), np.array(fb[key], np.float64)
            if a.shape != b.shape or a.ndim != 2:
                print(f"{key}: shapes {a.shape} and {b.shape} differ")
                bad = True
                continue
            if a.shape[0] == 0:
                print(f"{key}: zero rows")
                bad = True
                continue
            cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
            i = int(np.argmin(cos))
            print(f"{key}: {a.shape[0]} rows, min cos {cos[i]:.9f} (1 - cos {1 - cos[i]:.2e}, row {i}), "
                  f"max |diff| {np.abs(a - b).max():.3e}")
            bad |= not cos[i] >= args.min_cos
        for key in ("pixels", "ids"):
            if key in fa and key in fb:
                a, b = np.array(fa[key]).astype(np.int64), np.array(fb[key]).astype(np.int64)
                if a.shape != b.shape:
                    print(f"{key}: shapes {a.shape} and {b.shape} differ")
                    bad |= args.strict_inputs
                    continue
                diff = (a != b).reshape(len(a), -1).any(1) if len(a) else np.zeros(0, bool)
                maxd = int(np.abs(a - b).max()) if a.size else 0
                print(f"{key}: {int(diff.sum())} of {len(a)} rows differ (max |diff| {maxd})")
                bad |= args.strict_inputs and bool(diff.any())
        if "logit_scale" in fa and "logit_scale" in fb:
            print(f"logit_scale: {float(np.array(fa['logit_scale']))} vs {float(np.array(fb['logit_scale']))}")
    print("FAIL" if bad else "OK")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("format", choices=["open_clip", "hf", "safetensors"])
    w.add_argument("out")
    w.add_argument("--arch", choices=ARCHS, required=True)
    w.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--legacy-position-ids", action="store_true")
    w.add_argument("--vocab")
    e = sub.add_parser("embed")
    e.add_argument("src")
    e.add_argument("--images")
    e.add_argument("--texts")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--format", choices=["open_clip", "hf"])
    e.add_argument("--arch", choices=ARCHS)
    e.add_argument("--vocab")
    k = sub.add_parser("compare")
    k.add_argument("a")
    k.add_argument("b")
    k.add_argument("--min-cos", type=float, default=0.99999)
    k.add_argument("--strict-inputs", action="store_true")
    v = sub.add_parser("convert")
    v.add_argument("src")
    v.add_argument("--to", choices=["hf", "open_clip"], required=True)
    v.add_argument("out")
    v.add_argument("--legacy-position-ids", action="store_true")
    v.add_argument("--vocab")
    args = ap.parse_args()
    return {"write": cmd_write, "embed": cmd_embed, "compare": cmd_compare, "convert": cmd_convert}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
