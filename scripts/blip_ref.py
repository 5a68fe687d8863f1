#!/usr/bin/python3
"""PyTorch reference of vlp's BLIP, written from the architecture (Salesforce
BLIP's models/blip*.py and models/med.py) with plain torch.nn modules, not
importing BLIP or transformers. The ViT blocks are clip_ref.py's.

  blip_ref.py golden -o FILE.h5     weights (and a momentum model's, and
                                    its queues), inputs, the sampled ITM
                                    negatives, outputs, the losses (ITC
                                    plain and distilled, ITM, LM) and every
                                    parameter's gradient of each, and one
                                    momentum update, for tests/test_blip.c

What it fixes for vlp's sake (and the C model does alike): LayerNorm eps
1e-5 (BLIP's BERT uses 1e-12; vlp's layernorm op has torch's default), no
dropout, and vlp's ViT (OpenCLIP's names, conv without bias, no ln_pre,
ln_post on every token as timm's final norm).

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py).
"""
import argparse
import copy
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clip_ref import Transformer, write_config  # noqa: E402

# Token ids as vlp lays them out: 0 padding, the tokenizer's words, its
# start (BERT's [CLS]) and end tokens, then [ENC] and [DEC] appended.
CONFIG = dict(embed_dim=12, image_size=12, patch_size=4, vision_width=16, vision_layers=2,
              vision_heads=2, vocab_size=40, context_length=9, text_width=16, text_layers=2,
              text_heads=4, mlp_ratio=2.0, enc_token_id=38, dec_token_id=39, batch=4,
              prompt_length=3, queue_size=6, alpha=0.4, momentum=0.995)
SOT, EOT = 36, 37


class VisionTransformer(nn.Module):
    """vlp's ViT for BLIP: patch embedding, class token, positions, blocks,
    ln_post on every token; no ln_pre, no projection."""

    def __init__(self, c):
        super().__init__()
        w, p = c["vision_width"], c["patch_size"]
        grid = c["image_size"] // p
        self.conv1 = nn.Conv2d(3, w, kernel_size=p, stride=p, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w) * w ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, w) * w ** -0.5)
        self.transformer = Transformer(w, c["vision_layers"], c["vision_heads"],
                                       int(c["mlp_ratio"] * w), "gelu")
        self.ln_post = nn.LayerNorm(w)

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        return self.ln_post(self.transformer(x))


class BertSelfAttention(nn.Module):
    def __init__(self, width, kv_width, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(kv_width, width)
        self.value = nn.Linear(kv_width, width)

    def forward(self, x, kv, mask):
        """mask: additive, broadcast to (B, heads, Tq, Tk), or None."""
        def split(t):
            return t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(kv)), split(self.value(kv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores + mask
        out = F.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(x.shape)


class DenseLayerNorm(nn.Module):
    """BertSelfOutput / BertOutput: LayerNorm(dense(h) + residual), post-LN."""

    def __init__(self, n_in, width):
        super().__init__()
        self.dense = nn.Linear(n_in, width)
        self.LayerNorm = nn.LayerNorm(width)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, width, kv_width, heads):
        super().__init__()
        self.self = BertSelfAttention(width, kv_width, heads)
        self.output = DenseLayerNorm(width, width)

    def forward(self, x, kv, mask):
        return self.output(self.self(x, kv, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, width, mlp_width):
        super().__init__()
        self.dense = nn.Linear(width, mlp_width)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        w, heads = c["text_width"], c["text_heads"]
        m = int(c["mlp_ratio"] * w)
        self.attention = BertAttention(w, w, heads)
        self.crossattention = BertAttention(w, c["vision_width"], heads)
        self.intermediate = BertIntermediate(w, m)
        self.output = DenseLayerNorm(m, w)

    def forward(self, x, mask, image):
        x = self.attention(x, x, mask)
        if image is not None:  # mode 'multimodal'; image attention mask all ones
            x = self.crossattention(x, image, None)
        return self.output(self.intermediate(x), x)


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["text_width"])
        self.position_embeddings = nn.Embedding(c["context_length"], c["text_width"])
        self.LayerNorm = nn.LayerNorm(c["text_width"])

    def forward(self, ids):
        pos = torch.arange(ids.shape[1])
        return self.LayerNorm(self.word_embeddings(ids) + self.position_embeddings(pos)[None])


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["text_layers"])])


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)

    def forward(self, ids, attention_mask, image=None, causal=False):
        """Hugging Face's extended mask: (1 - mask) * -10000, a causal
        lower triangle times the padding mask for the decoder."""
        m = attention_mask[:, None, :].float()
        if causal:
            T = ids.shape[1]
            m = torch.tril(torch.ones(T, T))[None] * m
        mask = ((1.0 - m) * -10000.0)[:, None]
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, mask, image)
        return x


class LMPredictionHead(nn.Module):
    def __init__(self, c, word_embeddings):
        super().__init__()
        w = c["text_width"]
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(w, w)
        self.transform.LayerNorm = nn.LayerNorm(w)
        self.decoder = nn.Linear(w, c["vocab_size"], bias=False)
        self.decoder.weight = word_embeddings.weight  # tied, as BLIP's
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))

    def forward(self, x):
        x = self.transform.LayerNorm(F.gelu(self.transform.dense(x)))
        return self.decoder(x) + self.bias


class BertLMHeadModel(nn.Module):
    def __init__(self, c, encoder):
        super().__init__()
        self.bert = BertModel(c)
        # tie_encoder_decoder_weights(text_encoder, text_decoder.bert, '', '/attention'):
        # everything but each layer's self-attention is the encoder's
        self.bert.embeddings = encoder.embeddings
        for mine, theirs in zip(self.bert.encoder.layer, encoder.encoder.layer):
            mine.crossattention = theirs.crossattention
            mine.intermediate = theirs.intermediate
            mine.output = theirs.output
        self.cls = nn.Module()
        self.cls.predictions = LMPredictionHead(c, encoder.embeddings.word_embeddings)

    def forward(self, ids, attention_mask, image, labels):
        x = self.bert(ids, attention_mask, image, causal=True)
        scores = self.cls.predictions(x)
        shifted = scores[:, :-1, :].reshape(-1, scores.shape[-1])
        return F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=-100,
                               label_smoothing=0.1)


class BLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.visual_encoder = VisionTransformer(c)
        self.text_encoder = BertModel(c)
        self.text_decoder = BertLMHeadModel(c, self.text_encoder)
        self.vision_proj = nn.Linear(c["vision_width"], c["embed_dim"])
        self.text_proj = nn.Linear(c["text_width"], c["embed_dim"])
        self.itm_head = nn.Linear(c["text_width"], 2)
        self.temp = nn.Parameter(0.07 * torch.ones([]))

    def features(self, images, ids, mask):
        image_embeds = self.visual_encoder(images)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0, :]), dim=-1)
        text = self.text_encoder(ids, mask)
        text_feat = F.normalize(self.text_proj(text[:, 0, :]), dim=-1)
        return image_embeds, image_feat, text_feat

    def itc(self, image_feat, text_feat, image_ids=None):
        """blip_retrieval.py's ITC without momentum: idx-equal soft targets."""
        sim_i2t = image_feat @ text_feat.t() / self.temp
        sim_t2i = text_feat @ image_feat.t() / self.temp
        if image_ids is None:
            targets = torch.eye(image_feat.shape[0])
        else:
            pos = (image_ids[:, None] == image_ids[None, :]).float()
            targets = pos / pos.sum(1, keepdim=True)
        loss_i2t = -(F.log_softmax(sim_i2t, dim=1) * targets).sum(1).mean()
        loss_t2i = -(F.log_softmax(sim_t2i, dim=1) * targets).sum(1).mean()
        return (loss_i2t + loss_t2i) / 2

    @torch.no_grad()
    def sample_negatives(self, image_feat, text_feat, image_ids, gen):
        same = image_ids[:, None] == image_ids[None, :]
        w_i2t = F.softmax(image_feat @ text_feat.t() / self.temp, dim=1).masked_fill(same, 0)
        w_t2i = F.softmax(text_feat @ image_feat.t() / self.temp, dim=1).masked_fill(same, 0)
        neg_image = torch.multinomial(w_t2i, 1, generator=gen)[:, 0]
        neg_text = torch.multinomial(w_i2t, 1, generator=gen)[:, 0]
        return neg_image, neg_text

    def itm(self, image_embeds, ids, mask, neg_image, neg_text):
        """BLIP's two passes: positives, then [texts with negative images;
        negative texts with their images]."""
        enc_ids = ids.clone()
        enc_ids[:, 0] = self.c["enc_token_id"]
        pos = self.text_encoder(enc_ids, mask, image_embeds)
        ids_all = torch.cat([enc_ids, enc_ids[neg_text]])
        mask_all = torch.cat([mask, mask[neg_text]])
        images_all = torch.cat([image_embeds[neg_image], image_embeds])
        neg = self.text_encoder(ids_all, mask_all, images_all)
        logits = self.itm_head(torch.cat([pos[:, 0, :], neg[:, 0, :]]))
        b = ids.shape[0]
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(2 * b, dtype=torch.long)])
        return F.cross_entropy(logits, labels), logits

    def lm(self, image_embeds, ids, mask, prompt_length):
        dec_ids = ids.clone()
        dec_ids[:, 0] = self.c["dec_token_id"]
        targets = dec_ids.masked_fill(mask == 0, -100)
        targets[:, :prompt_length] = -100
        return self.text_decoder(dec_ids, mask, image_embeds, targets)


class Momentum(nn.Module):
    """blip_pretrain.py's momentum encoders and queues (BLIP's buffers are
    (embed_dim, queue_size); the golden file holds them transposed, as
    vlp's rows)."""

    def __init__(self, model, gen):
        super().__init__()
        c = model.c
        self.visual_encoder_m = copy.deepcopy(model.visual_encoder)
        self.vision_proj_m = copy.deepcopy(model.vision_proj)
        self.text_encoder_m = copy.deepcopy(model.text_encoder)
        self.text_proj_m = copy.deepcopy(model.text_proj)
        for p in self.parameters():
            p.requires_grad = False
        q, d = c["queue_size"], c["embed_dim"]
        self.image_queue = F.normalize(torch.randn(d, q, generator=gen), dim=0)
        self.text_queue = F.normalize(torch.randn(d, q, generator=gen), dim=0)

    def pairs(self, model):
        return [(self.visual_encoder_m, model.visual_encoder), (self.vision_proj_m, model.vision_proj),
                (self.text_encoder_m, model.text_encoder), (self.text_proj_m, model.text_proj)]

    @torch.no_grad()
    def update(self, model, m):
        """BLIP's _momentum_update."""
        for model_m, model_ in self.pairs(model):
            for param_m, param in zip(model_m.parameters(), model_.parameters()):
                param_m.data = param_m.data * m + param.data * (1.0 - m)


def itc_momentum(model, mom, image_feat, text_feat, images, ids, mask, alpha, image_ids=None,
                 idx_queue=None):
    """blip_pretrain.py's ITC (blip_retrieval.py's targets with image ids)."""
    with torch.no_grad():
        image_embeds_m = mom.visual_encoder_m(images)
        image_feat_m = F.normalize(mom.vision_proj_m(image_embeds_m[:, 0, :]), dim=-1)
        image_feat_m_all = torch.cat([image_feat_m.t(), mom.image_queue.clone().detach()], dim=1)
        text_output_m = mom.text_encoder_m(ids, mask)
        text_feat_m = F.normalize(mom.text_proj_m(text_output_m[:, 0, :]), dim=-1)
        text_feat_m_all = torch.cat([text_feat_m.t(), mom.text_queue.clone().detach()], dim=1)
        sim_i2t_m = image_feat_m @ text_feat_m_all / model.temp
        sim_t2i_m = text_feat_m @ image_feat_m_all / model.temp
        if image_ids is None:
            sim_targets = torch.zeros(sim_i2t_m.size())
            sim_targets.fill_diagonal_(1)
        else:
            idx_all = torch.cat([image_ids, idx_queue])
            pos_idx = torch.eq(image_ids[:, None], idx_all[None, :]).float()
            sim_targets = pos_idx / pos_idx.sum(1, keepdim=True)
        sim_i2t_targets = alpha * F.softmax(sim_i2t_m, dim=1) + (1 - alpha) * sim_targets
        sim_t2i_targets = alpha * F.softmax(sim_t2i_m, dim=1) + (1 - alpha) * sim_targets
    sim_i2t = image_feat @ text_feat_m_all / model.temp
    sim_t2i = text_feat @ image_feat_m_all / model.temp
    loss_i2t = -torch.sum(F.log_softmax(sim_i2t, dim=1) * sim_i2t_targets, dim=1).mean()
    loss_t2i = -torch.sum(F.log_softmax(sim_t2i, dim=1) * sim_t2i_targets, dim=1).mean()
    return (loss_i2t + loss_t2i) / 2, image_feat_m, text_feat_m


def randomize(model, gen):
    """Weights far from BERT's N(0, 0.02), so attention is far from uniform
    and every path carries a gradient worth comparing."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "temp":
                continue
            if "LayerNorm" in name or "ln_" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                std = p[0].numel() ** -0.5 if p.ndim >= 2 else 0.1
                p.copy_(std * torch.randn(p.shape, generator=gen))


def make_inputs(c, gen):
    """Rows [SOT, two prompt words, caption..., EOT, 0...]; one row full."""
    b, ctx = c["batch"], c["context_length"]
    images = torch.randn(b, 3, c["image_size"], c["image_size"], generator=gen)
    ids = torch.zeros(b, ctx, dtype=torch.long)
    lengths = torch.zeros(b, dtype=torch.long)
    prompt = torch.randint(1, SOT, (2,), generator=gen)
    for i in range(b):
        n = ctx - 4 if i == 0 else int(torch.randint(1, ctx - 4, (1,), generator=gen))
        ids[i, 0] = SOT
        ids[i, 1:3] = prompt
        ids[i, 3:3 + n] = torch.randint(1, SOT, (n,), generator=gen)
        ids[i, 3 + n] = EOT
        lengths[i] = n + 4
    mask = (torch.arange(ctx)[None] < lengths[:, None]).long()
    image_ids = torch.tensor([i // 2 * 2 if i < 2 else i for i in range(b)])  # pairs 0, 1 share an image
    return images, ids, lengths, mask, image_ids


def grads_of(model, loss, group):
    model.zero_grad()
    loss.backward(retain_graph=True)
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        group.create_dataset(name, data=g.numpy())


def cmd_golden(args):
    c = CONFIG
    torch.manual_seed(args.seed)
    model = BLIP(c)
    gen = torch.Generator().manual_seed(args.seed + 1)
    randomize(model, gen)
    images, ids, lengths, mask, image_ids = make_inputs(c, gen)
    image_embeds, image_feat, text_feat = model.features(images, ids, mask)
    neg_image, neg_text = model.sample_negatives(image_feat, text_feat, image_ids, gen)
    loss_itc = model.itc(image_feat, text_feat)
    loss_itc_grouped = model.itc(image_feat, text_feat, image_ids)
    loss_itm, itm_logits = model.itm(image_embeds, ids, mask, neg_image, neg_text)
    loss_lm = model.lm(image_embeds, ids, mask, c["prompt_length"])
    mom = Momentum(model, gen)
    with torch.no_grad():  # as if some steps behind the model
        for p in mom.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    idx_queue = torch.tensor([0, -100, 3, -100, 2, 0])  # positives in the queue, too
    loss_itc_m, image_feat_m, text_feat_m = itc_momentum(model, mom, image_feat, text_feat, images, ids,
                                                         mask, c["alpha"])
    loss_itc_m_grouped, _, _ = itc_momentum(model, mom, image_feat, text_feat, images, ids, mask,
                                            c["alpha"], image_ids, idx_queue)
    with h5py.File(args.output, "w") as f:
        write_config(f, c)
        params = f.create_group("params")
        for name, p in model.named_parameters():  # tied tensors once, by their first name
            params.create_dataset(name, data=p.detach().numpy())
        i32 = np.int32
        f["inputs/images"] = images.numpy()
        f["inputs/text"] = ids.numpy().astype(i32)
        f["inputs/lengths"] = lengths.numpy().astype(i32)
        f["inputs/image_ids"] = image_ids.numpy().astype(i32)
        f["inputs/neg_image"] = neg_image.numpy().astype(i32)
        f["inputs/neg_text"] = neg_text.numpy().astype(i32)
        f["inputs/idx_queue"] = idx_queue.numpy().astype(i32)
        momentum = f.create_group("momentum")
        for name, p in mom.named_parameters():
            momentum.create_dataset(name, data=p.numpy())
        momentum["image_queue"] = mom.image_queue.t().contiguous().numpy()
        momentum["text_queue"] = mom.text_queue.t().contiguous().numpy()
        f["outputs/image_feat_m"] = image_feat_m.numpy()
        f["outputs/text_feat_m"] = text_feat_m.numpy()
        f["outputs/image_embeds"] = image_embeds.detach().numpy()
        f["outputs/image_feat"] = image_feat.detach().numpy()
        f["outputs/text_feat"] = text_feat.detach().numpy()
        f["outputs/itm_logits"] = itm_logits.detach().numpy()
        for name, loss in (("itc", loss_itc), ("itc_grouped", loss_itc_grouped), ("itm", loss_itm),
                           ("lm", loss_lm), ("itc_m", loss_itc_m), ("itc_m_grouped", loss_itc_m_grouped)):
            f[f"outputs/loss_{name}"] = np.float32(loss.item())
            grads_of(model, loss, f.create_group(f"grads/{name}"))
        mom.update(model, c["momentum"])
        updated = f.create_group("momentum_updated")
        for name, p in mom.named_parameters():
            updated.create_dataset(name, data=p.numpy())
    print(f"blip_ref: wrote {args.output}: ITC {loss_itc.item():.6f} (grouped "
          f"{loss_itc_grouped.item():.6f}), ITM {loss_itm.item():.6f}, LM {loss_lm.item():.6f}, "
          f"ITC distilled {loss_itc_m.item():.6f} (grouped {loss_itc_m_grouped.item():.6f}), "
          f"negatives image {neg_image.tolist()} text {neg_text.tolist()}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")


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
