#!/usr/bin/python3
"""The cost model of docs/scaling.md, from scripts/scaling.sh's measurements.

  scaling_model.py DIR COMMAND

DIR holds vlpbench JSON: w1.json (one rank), shm_w2/4.json and tcp_w2/4.json
(the collectives timed alone, "comm"), and {shm,tcp}_{overlap,serial}_{1,2}.json
(W = 2 steps with the all-reduce during or after backward, two rounds).
Per transport, a latency alpha and a bandwidth beta are fitted on the W = 2
run (least squares on the relative error of its three timings), with
latency in log2 W rounds (Open MPI's recursive doubling and Rabenseifner
schedules) and bandwidth as a ring:
  all-gather / reduce-scatter of n bytes per rank:  log2(W) alpha + (W-1) n / beta
  all-reduce of P bytes:                            2 log2(W) alpha + 2 (W-1)/W P / beta
then checked against the W = 4 run, and used for W = 8..512 at a global
batch of 32768 (CLIP's), for this run's model and for CLIP ViT-B/32, with
the all-reduce after backward and (TCP) overlapped with it.
"""
import json
import math
import sys

d, command = sys.argv[1], sys.argv[2]
load = lambda name: json.load(open(f"{d}/{name}.json"))
w1 = load("w1")
runs = {t: {w: load(f"{t}_w{w}") for w in (2, 4)} for t in ("shm", "tcp")}


def predict(alpha, beta, W, gather_bytes, P_bytes):
    """Seconds of (2 all-gathers, 2 reduce-scatters, 1 all-reduce);
    gather_bytes: one rank's image + text embeddings."""
    rounds = math.ceil(math.log2(W))
    g = 2 * rounds * alpha + (W - 1) * gather_bytes / beta  # two calls of half the bytes
    a = 2 * rounds * alpha + 2 * (W - 1) / W * P_bytes / beta
    return g, g, a


def measured(j):
    c = j["comm"]
    return c["gather_s"], c["reduce_scatter_s"], c["allreduce_s"]


def fit(j):
    """alpha, beta minimising the squared log-ratio of the three timings."""
    c, W = j["comm"], j["ranks"]
    m = measured(j)
    best = None
    for ia in range(-70, -10):  # alpha from ~1 ns to ~50 ms, 5 steps per decade
        alpha = 10 ** (ia / 5)
        for ib in range(35, 60):  # beta from ~10 MB/s to ~10 GB/s... 1e12
            beta = 10 ** (ib / 5)
            p = predict(alpha, beta, W, c["gather_bytes_per_rank"], c["allreduce_bytes"])
            err = sum(math.log(pi / mi) ** 2 for pi, mi in zip(p, m))
            if best is None or err < best[0]:
                best = (err, alpha, beta)
    # refine around the grid point
    _, alpha, beta = best
    for _ in range(3):
        for a in (alpha * f for f in (0.8, 0.9, 1.0, 1.1, 1.25)):
            for b in (beta * f for f in (0.8, 0.9, 1.0, 1.1, 1.25)):
                p = predict(a, b, W, c["gather_bytes_per_rank"], c["allreduce_bytes"])
                err = sum(math.log(pi / mi) ** 2 for pi, mi in zip(p, m))
                if err < best[0]:
                    best = (err, a, b)
        _, alpha, beta = best
    return alpha, beta


ms = lambda s: f"{1e3 * s:8.2f} ms"
print(f"command: {command}")
print(f"config {w1['config']}: {w1['params']} parameters ({w1['params'] * 4 / 2**20:.1f} MiB of gradients), "
      f"global batch {w1['batch']}; one rank alone: {w1['median_s']:.3f} s/step, "
      f"{w1['model_gflops_per_s']:.1f} GFLOP/s")
print()
print("measured (median of the collectives timed alone) and the model fitted on W = 2")
print(f"{'transport':9} {'W':>2} {'what':15} {'measured':>11} {'model':>11} {'model/measured':>15}")
params = {}
for t, by_w in runs.items():
    alpha, beta = fit(by_w[2])
    params[t] = (alpha, beta)
    for W, j in by_w.items():
        c = j["comm"]
        p = predict(alpha, beta, W, c["gather_bytes_per_rank"], c["allreduce_bytes"])
        for what, pi, mi in zip(("all-gather x2", "reduce-scatter x2", "all-reduce"), p, measured(j)):
            print(f"{t:9} {W:>2} {what:15} {ms(mi)} {ms(pi)} {pi / mi:15.2f}")
    print(f"{t:9}    fit: alpha {alpha * 1e6:.1f} us, beta {beta / 1e9:.2f} GB/s"
          f" (W = 2 step {by_w[2]['median_s']:.3f} s, communication {100 * by_w[2]['comm']['fraction_of_step']:.1f}% of it)")
print()

# The overlap: whole W = 2 steps, all-reduce during backward or after it.
print("W = 2 steps, the gradient all-reduce during backward (overlap, the default) or after it "
      "(serial, --no-overlap);")
print("median s/step of each run (alternated) and the median time rank 0 waited for the all-reduce "
      "once backward had ended")
print(f"{'transport':9} {'mode':8} {'s/step':>15} {'waited':>19}")
for t in ("shm", "tcp"):
    for mode in ("overlap", "serial"):
        js = [load(f"{t}_{mode}_{r}") for r in (1, 2)]
        print(f"{t:9} {mode:8} " + " ".join(f"{j['median_s']:7.3f}" for j in js) + " " +
              " ".join(f"{ms(j['allreduce_wait_s'])}" for j in js))
print()

# Extrapolation. Compute per rank: this machine's measured rate per rank
# (w1: one rank on one thread), FLOPs per sample from vlpbench's count.
rate = w1["model_gflops_per_s"] * 1e9
models = {
    f"config {w1['config']}": dict(P=w1["params"], D=None, flops=w1["model_flops_per_step"] / w1["batch"]),
    # CLIP ViT-B/32 (OpenAI): 151.3M parameters, D = 512; ~4.4 GFLOPs image
    # + ~2.9 GFLOPs text forward per sample (224 px, 77 tokens), x3 to train
    "CLIP ViT-B/32": dict(P=151_277_313, D=512, flops=3 * (4.4e9 + 2.9e9)),
}
N = 32768
print(f"extrapolated to a global batch of {N} (B = {N}/W pairs per rank), compute at {rate / 1e9:.1f} GFLOP/s per rank:")
for name, m in models.items():
    D = m["D"] or runs["shm"][2]["comm"]["gather_bytes_per_rank"] / (2 * 4 * runs["shm"][2]["batch_per_rank"])
    print(f"\n{name}: P = {m['P'] / 1e6:.1f}M, D = {int(D)}")
    print(f"{'W':>4} {'B':>5} {'compute':>10} {'logits BxN':>11} {'logits NxN':>11} " +
          " ".join(f"{t + ' comm':>10} {t + ' %':>6}" for t in params) + f" {'tcp % overlapped':>17}")
    for W in (8, 16, 32, 64, 128, 256, 512):
        B = N // W
        compute = B * m["flops"] / rate
        local_logits = 3 * 2 * 2 * B * N * D / rate     # the local loss: B x N both ways
        full_logits = 3 * 2 * 2 * N * N * D / rate      # every rank computing the N x N logits
        row = f"{W:>4} {B:>5} {compute:9.2f}s {local_logits:10.3f}s {full_logits:10.2f}s "
        for t, (alpha, beta) in params.items():
            g, s, a = predict(alpha, beta, W, 2 * B * D * 4, m["P"] * 4)
            comm = g + s + a
            row += f" {comm:9.3f}s {100 * comm / (comm + compute + local_logits):5.1f}%"
        # The all-reduce during backward (2/3 of the compute): what is left
        # of it is the last of the 8 buckets, or what backward cannot cover.
        left = g + s + max(a / 8, a - 2 / 3 * (compute + local_logits))
        row += f" {100 * left / (left + compute + local_logits):16.1f}%"
        print(row)
