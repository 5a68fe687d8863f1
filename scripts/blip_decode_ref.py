#!/usr/bin/python3
"""PyTorch reference of vlp's BLIP decoding (src/models/blip_decode.c): greedy
search and beam search as Hugging Face's generate() runs them for BLIP
(transformers 4.15, which BLIP pins), written here in plain torch on
blip_ref.py's model. Every step recomputes the whole prefix (no key/value
cache), so it also checks vlp's cached decoder.

  blip_decode_ref.py golden -o FILE.h5   tiny weights, images, a prompt, and
                                         for each case its options and the
                                         generated ids, lengths and scores,
                                         for tests/test_blip_decode.c

Rules followed (and vlp's alike): sequences are [DEC], the prompt, then the
generated tokens; max_length and min_length count all of them. The
repetition penalty divides positive scores and multiplies negative ones of
every token in the sequence so far. Greedy applies the penalties to the
logits and scores a caption by the sum of log_softmax(logits) of its tokens
(end token included); beam search applies them to log_softmax(logits) and
ranks finished hypotheses by sum / length ** length_penalty, the length
counting [DEC] and the prompt but not the end token.

Run with Debian's /usr/bin/python3 (python3-torch, python3-h5py).
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blip_ref import BLIP, CONFIG, EOT, randomize  # noqa: E402
from clip_ref import write_config  # noqa: E402

# blip_ref's model with room for longer captions, and six images.
DECODE_CONFIG = dict(CONFIG, context_length=12, batch=6)
PAD = 0
EOS_BIAS = 1.25  # added to the end token's LM bias, so captions end at varied lengths

# name: method, max_length, min_length, num_beams, length_penalty, repetition_penalty
CASES = {
    "greedy": ("greedy", 12, 0, 1, 1.0, 1.0),
    "greedy_penalties": ("greedy", 11, 6, 1, 1.0, 1.5),
    "beam3": ("beam", 12, 0, 3, 1.0, 1.0),
    "beam3_min_length": ("beam", 12, 6, 3, 1.0, 1.0),
    "beam4_penalties": ("beam", 12, 7, 4, 0.6, 1.2),
    "beam2_long": ("beam", 10, 0, 2, 2.0, 1.0),
    "beam1": ("beam", 12, 0, 1, 1.0, 1.0),
}


def next_logits(model, image_embeds, seqs):
    """The decoder on the whole prefix (N, L) -> logits of position L (N, V)."""
    x = model.text_decoder.bert(seqs, torch.ones_like(seqs), image_embeds, causal=True)
    return model.text_decoder.cls.predictions(x[:, -1, :])


def penalise(seqs, scores, penalty, min_length, eos):
    """RepetitionPenaltyLogitsProcessor then MinLengthLogitsProcessor, in place."""
    s = torch.gather(scores, 1, seqs)
    scores.scatter_(1, seqs, torch.where(s < 0, s * penalty, s / penalty))
    if seqs.shape[1] < min_length:
        scores[:, eos] = -float("inf")
    return scores


def greedy(model, image_embeds, start, max_length, min_length, penalty, eos):
    b = image_embeds.shape[0]
    seqs = start.expand(b, -1).clone()
    unfinished = torch.ones(b, dtype=torch.bool)
    score = torch.zeros(b)
    while seqs.shape[1] < max_length and unfinished.any():
        logits = next_logits(model, image_embeds, seqs)
        tok = penalise(seqs, logits.clone(), penalty, min_length, eos).argmax(-1)
        logp = F.log_softmax(logits, -1).gather(1, tok[:, None])[:, 0]
        score += torch.where(unfinished, logp, torch.zeros(b))
        tok = torch.where(unfinished, tok, torch.full_like(tok, PAD))
        seqs = torch.cat([seqs, tok[:, None]], 1)
        unfinished &= tok != eos
    out = []
    for row in seqs[:, start.shape[1]:].tolist():
        out.append(row[:row.index(eos)] if eos in row else row)
    return out, score.tolist()


class Hypotheses:
    """BeamHypotheses: the best num_beams finished sequences of one image."""

    def __init__(self, num_beams, length_penalty):
        self.k, self.lp = num_beams, length_penalty
        self.beams, self.worst = [], 1e9

    def add(self, hyp, sum_logprobs):
        score = sum_logprobs / (len(hyp) ** self.lp)
        if len(self.beams) < self.k or score > self.worst:
            self.beams.append((score, hyp))
            if len(self.beams) > self.k:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs, cur_len):
        return len(self.beams) >= self.k and self.worst >= best_sum_logprobs / cur_len ** self.lp


def beam_search(model, image_embeds, start, max_length, min_length, k, length_penalty, penalty, eos):
    b, v = image_embeds.shape[0], DECODE_CONFIG["vocab_size"]
    embeds = image_embeds.repeat_interleave(k, 0)
    seqs = start.expand(b * k, -1).clone()
    beam_scores = torch.zeros(b, k)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [Hypotheses(k, length_penalty) for _ in range(b)]
    done = [False] * b
    while True:
        cur_len = seqs.shape[1]
        logits = next_logits(model, embeds, seqs)
        scores = penalise(seqs, F.log_softmax(logits, -1), penalty, min_length, eos)
        scores = (scores + beam_scores[:, None]).view(b, k * v)
        top_scores, top_ids = torch.topk(scores, 2 * k, dim=1, largest=True, sorted=True)
        next_scores, next_tokens, next_rows = torch.zeros(b, k), torch.zeros(b, k, dtype=torch.long), torch.zeros(b, k, dtype=torch.long)
        for i in range(b):
            if done[i]:
                next_tokens[i], next_rows[i] = PAD, torch.arange(k) + i * k
                continue
            live = 0
            for rank, (s, flat) in enumerate(zip(top_scores[i].tolist(), top_ids[i].tolist())):
                row, tok = i * k + flat // v, flat % v
                if tok == eos:
                    if rank < k:
                        hyps[i].add(seqs[row].tolist(), s)
                else:
                    next_scores[i, live], next_tokens[i, live], next_rows[i, live] = s, tok, row
                    live += 1
                if live == k:
                    break
            done[i] = done[i] or hyps[i].is_done(top_scores[i].max().item(), cur_len)
        beam_scores = next_scores.view(-1)
        seqs = torch.cat([seqs[next_rows.view(-1)], next_tokens.view(-1, 1)], 1)
        if all(done) or seqs.shape[1] >= max_length:
            break
    out, best_scores = [], []
    for i in range(b):
        if not done[i]:
            for j in range(k):
                hyps[i].add(seqs[i * k + j].tolist(), beam_scores[i * k + j].item())
        score, hyp = sorted(hyps[i].beams, key=lambda x: x[0]).pop()
        out.append(hyp[start.shape[1]:])
        best_scores.append(score)
    return out, best_scores


def cmd_golden(args):
    c = DECODE_CONFIG
    torch.manual_seed(args.seed)
    model = BLIP(c)
    gen = torch.Generator().manual_seed(args.seed + 1)
    randomize(model, gen)
    with torch.no_grad():
        model.text_decoder.cls.predictions.bias[EOT] += EOS_BIAS
    images = torch.randn(c["batch"], 3, c["image_size"], c["image_size"], generator=gen)
    prompt = torch.randint(1, EOT - 1, (2,), generator=gen)
    start = torch.cat([torch.tensor([c["dec_token_id"]]), prompt])[None]
    with h5py.File(args.output, "w") as f:
        write_config(f, c)
        params = f.create_group("params")
        for name, p in model.named_parameters():
            params.create_dataset(name, data=p.detach().numpy())
        f["inputs/images"] = images.numpy()
        f["inputs/prompt"] = prompt.numpy().astype(np.int32)
        f["config"].attrs["end_token_id"] = EOT
        summary = []
        with torch.no_grad():
            image_embeds = model.visual_encoder(images)
            for name, (method, max_length, min_length, k, lp, penalty) in CASES.items():
                if method == "greedy":
                    out, scores = greedy(model, image_embeds, start, max_length, min_length, penalty, EOT)
                else:
                    out, scores = beam_search(model, image_embeds, start, max_length, min_length, k, lp,
                                              penalty, EOT)
                ids = np.full((c["batch"], max_length), -1, dtype=np.int32)
                for i, row in enumerate(out):
                    ids[i, :len(row)] = row
                g = f.create_group(f"cases/{name}")
                g.attrs["beam"] = int(method == "beam")
                for key, value in (("max_length", max_length), ("min_length", min_length), ("num_beams", k),
                                   ("length_penalty", lp), ("repetition_penalty", penalty)):
                    g.attrs[key] = value
                g["ids"] = ids
                g["lengths"] = np.array([len(r) for r in out], dtype=np.int32)
                g["scores"] = np.array(scores, dtype=np.float32)
                summary.append(f"{name} lengths {[len(r) for r in out]}")
    print(f"blip_decode_ref: wrote {args.output}: " + "; ".join(summary))


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
