#!/usr/bin/env bash
# vlp against its PyTorch reference (scripts/clip_ref.py) on issue 7's
# configs, in one invocation. For each config x thread count x OpenBLAS
# kernel, build/vlpbench and `clip_ref.py bench` run alternately (vlp,
# torch, vlp, torch: --rounds 2; the better median of each side counts),
# each its own process with the same OPENBLAS_NUM_THREADS and
# OPENBLAS_CORETYPE; then 2 MPI ranks of 1 thread against 1 rank of 2.
# Prints the machine and the table of ratios, and writes it all to --out.
# It measures only: no speed target is checked here or by any test.
#   scripts/bench.sh [--configs A,B] [--threads 1,2] [--steps N] [--warmup W]
#                    [--kernels both|env] [--rounds R] [--no-ranks] [--sgemm-reps R]
#                    [--build DIR] [--keep DIR] [--out FILE]
# --kernels both: OPENBLAS_CORETYPE=Haswell (AVX2) and unset (OpenBLAS's own
# choice); env: as the environment says. --keep DIR keeps each run's JSON.
# Exit status 77: no PyTorch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3 # Debian's, with python3-torch

configs=A,B threads=1,2 steps=10 warmup=2 kernels=both rounds=2 ranks=yes reps=3
build=$root/build keep="" out=""
invocation="scripts/bench.sh $*"
usage() { sed -n '10,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --configs) configs=$2; shift ;;
    --threads) threads=$2; shift ;;
    --steps) steps=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --kernels) kernels=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --no-ranks) ranks=no ;;
    --sgemm-reps) reps=$2; shift ;;
    --build) build=$2; shift ;;
    --keep) keep=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unexpected argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case $kernels in both|env) ;; *) echo "bench.sh: --kernels both|env" >&2; exit 2 ;; esac
[ -x "$build/vlpbench" ] || { echo "bench.sh: no $build/vlpbench (cmake --build build)" >&2; exit 2; }
if ! $python -c 'import torch' 2>/dev/null; then
  echo "bench.sh: $python cannot import torch (apt-get install python3-torch)" >&2
  exit 77
fi
[ -n "$keep" ] && mkdir -p "$keep"
dir=${keep:-$(mktemp -d)}
[ -n "$keep" ] || trap 'rm -rf "$dir"' EXIT

# PyTorch's best configuration on this machine (issue 7): passive OpenMP
# waiting, glibc keeping freed memory instead of unmapping and re-faulting
# it, one torch thread (clip_ref.py sets it) and OpenBLAS's threads.
torch_env=(OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=1073741824
           MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456)
mpi_env=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

# The environment of a kernel: Haswell forces AVX2; unset lets OpenBLAS
# choose by the CPU; env leaves the variable as it is.
kernel_env() {
  case $1 in
    Haswell) echo "env OPENBLAS_CORETYPE=Haswell" ;;
    unset) echo "env -u OPENBLAS_CORETYPE" ;;
    *) echo "env" ;;
  esac
}

# run NAME CMD...: runs a benchmark process, its stderr kept in NAME.err
# and shown if it fails.
run() {
  local name=$1; shift
  if ! "$@" 2>"$dir/$name.err"; then
    echo "bench.sh: failed: $*" >&2
    cat "$dir/$name.err" >&2
    exit 1
  fi
}

# median s/step of a JSON result, for the progress lines
median() { $python -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["median_s"])' "$1"; }

machine() {
  echo "== machine"
  echo "cpu:       $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  local flags; flags=$(grep -m1 '^flags' /proc/cpuinfo)
  local isa=SSE
  case " $flags " in *" avx "*) isa=AVX ;; esac
  case " $flags " in *" avx2 "*) isa=AVX2 ;; esac
  case " $flags " in *" avx512f "*) isa=AVX-512 ;; esac
  echo "cores:     $(nproc) (nproc); best vector ISA in /proc/cpuinfo: $isa"
  echo "memory:    $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "openblas:  $(dpkg-query -W -f '${Package} ${Version}' libopenblas0-pthread 2>/dev/null || echo unknown)"
  echo "torch:     $($python -c 'import torch; print(torch.__version__)') ($python)"
  echo "mpi:       $(mpirun --version 2>/dev/null | head -1)"
  echo "env:       OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS-(unset)} OMP_NUM_THREADS=${OMP_NUM_THREADS-(unset)}"
  echo "torch env: ${torch_env[*]} (torch.set_num_threads(1))"
  echo "command:   $invocation"
  echo "steps:     $warmup warm-up + $steps timed, $rounds round(s) per side, sgemm best of $reps"
}

side_by_side() {
  local c k t r kl
  if [ "$kernels" = both ]; then kl="Haswell unset"; else kl="env"; fi
  echo "== vlp and PyTorch, alternating"
  for c in ${configs//,/ }; do
    for k in $kl; do
      for t in ${threads//,/ }; do
        for r in $(seq 1 "$rounds"); do
          local base="$c.$k.$t.$r"
          run "vlp.$base" $(kernel_env "$k") OPENBLAS_NUM_THREADS="$t" "$build/vlpbench" --config "$c" \
            --steps "$steps" --warmup "$warmup" --sgemm-reps "$reps" --json "$dir/vlp.$base.json"
          run "torch.$base" $(kernel_env "$k") OPENBLAS_NUM_THREADS="$t" "${torch_env[@]}" \
            $python "$root/scripts/clip_ref.py" bench "$c" --steps "$steps" --warmup "$warmup" \
            --sgemm-reps "$reps" --json "$dir/torch.$base.json"
          echo "  $c kernel=$k threads=$t round $r: vlp $(median "$dir/vlp.$base.json") s/step," \
               "torch $(median "$dir/torch.$base.json") s/step"
        done
      done
    done
  done
}

# 2 ranks x 1 thread against 1 rank x 2 threads, same global batch,
# alternating; the environment's kernel.
rank_test() {
  local c r
  echo "== ranks: mpirun -n 2 (1 thread each) against 1 rank of 2 threads"
  for c in ${configs//,/ }; do
    for r in $(seq 1 "$rounds"); do
      run "rank1.$c.$r" env OPENBLAS_NUM_THREADS=2 "$build/vlpbench" --config "$c" --steps "$steps" \
        --warmup "$warmup" --sgemm-reps 0 --json "$dir/rank1.$c.$r.json"
      run "rank2.$c.$r" env "${mpi_env[@]}" OPENBLAS_NUM_THREADS=1 mpirun --oversubscribe -n 2 \
        -x OPENBLAS_NUM_THREADS "$build/vlpbench" --config "$c" --steps "$steps" --warmup "$warmup" \
        --sgemm-reps 0 --json "$dir/rank2.$c.$r.json"
      echo "  $c round $r: 1 rank x 2 threads $(median "$dir/rank1.$c.$r.json") s/step," \
           "2 ranks x 1 thread $(median "$dir/rank2.$c.$r.json") s/step"
    done
  done
}

# The tables, from the JSON files (each must parse and hold its numbers).
report() {
  $python - "$dir" <<'EOF'
import glob, json, os, sys
d = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(d, "*.json"))):
    side, c, *rest = os.path.basename(path)[:-5].split(".")
    with open(path) as f:
        r = json.load(f)
    for key in ("median_s", "samples_per_s", "peak_rss_mb", "model_flops_per_step"):
        if not isinstance(r.get(key), (int, float)) or r[key] <= 0:
            sys.exit(f"bench.sh: {path}: no positive {key}")
    runs.setdefault((side, c, *rest[:-1]), []).append(r)
if not runs:
    sys.exit(f"bench.sh: no results in {d}")
best = {k: min(v, key=lambda r: r["median_s"]) for k, v in runs.items()}  # the better round

def num(x, fmt):
    return format(x, fmt) if isinstance(x, (int, float)) else "-"

rows = sorted({k[1:] for k in best if k[0] in ("vlp", "torch")})
if rows:
    print("== results (better median of the rounds; speed = samples/s ratio; RSS = peak resident)")
    head = ("config", "kernel", "core", "thr", "vlp s/step", "torch s/step", "vlp smp/s", "torch smp/s",
            "vlp/torch", "vlp sgemm%", "torch sgemm%", "vlp RSS MB", "torch RSS MB", "RSS vlp/torch")
    table = [head]
    for c, k, t in rows:
        v, p = best.get(("vlp", c, k, t)), best.get(("torch", c, k, t))
        if not v or not p:
            sys.exit(f"bench.sh: missing a side of {c} {k} {t}")
        frac = lambda r: 100 * r["sgemm_fraction"] if r.get("sgemm_fraction") else None
        table.append((c, k, v["openblas_core"], t, num(v["median_s"], ".3f"), num(p["median_s"], ".3f"),
                      num(v["samples_per_s"], ".1f"), num(p["samples_per_s"], ".1f"),
                      num(v["samples_per_s"] / p["samples_per_s"], ".2f"), num(frac(v), ".0f"),
                      num(frac(p), ".0f"), num(v["peak_rss_mb"], ".0f"), num(p["peak_rss_mb"], ".0f"),
                      num(v["peak_rss_mb"] / p["peak_rss_mb"], ".2f")))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
    for r in table:
        print("  ".join(str(x).rjust(w) for x, w in zip(r, widths)))
    print("== sgemm on the step's shapes, FLOP-weighted GFLOP/s (vlp run: OpenBLAS threads / vlp_gemm / best;"
          " torch run: torch.mm), and the model's FLOPs")
    for c, k, t in rows:
        v, p = best[("vlp", c, k, t)], best[("torch", c, k, t)]
        s, q = v.get("sgemm") or {}, p.get("sgemm") or {}
        print(f"  {c} {k} {t} thread(s): vlp run {num(s.get('gflops_openblas'), '.1f')} / "
              f"{num(s.get('gflops_vlp_gemm'), '.1f')} / {num(s.get('gflops'), '.1f')}; "
              f"torch run {num(q.get('gflops'), '.1f')}; model {v['model_flops_per_step'] / 1e9:.1f} "
              f"GFLOP/step (torch counts {p['model_flops_per_step'] / 1e9:.1f}); params vlp {v['params']} "
              f"torch {p['params']}; first loss vlp {v['loss_first']:.3f} torch {p['loss_first']:.3f}")
    notes = {r.get("kernel_note") for r in best.values() if r.get("kernel_note")}
    for n in sorted(notes):
        print(f"  vlp's kernel note: {n}")
for c in sorted({k[1] for k in best if k[0] == "rank1"}):
    one, two = best.get(("rank1", c)), best.get(("rank2", c))
    if not one or not two:
        sys.exit(f"bench.sh: missing a side of the rank test of {c}")
    print(f"== ranks, config {c}: 1 rank x 2 threads {one['samples_per_s']:.1f} samples/s; "
          f"2 ranks x 1 thread {two['samples_per_s']:.1f} samples/s (batch {two['batch_per_rank']} per rank, "
          f"global {two['batch']}); 2 ranks / 1 rank = {two['samples_per_s'] / one['samples_per_s']:.2f}; "
          f"peak RSS {one['peak_rss_mb']:.0f} MB vs {two['peak_rss_mb_all_ranks']:.0f} MB (both ranks)")
EOF
}

main() {
  machine
  side_by_side
  [ "$ranks" = yes ] && rank_test
  report
  [ -n "$keep" ] && echo "== raw JSON: $keep"
  return 0
}

if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  main 2>&1 | tee "$out"
else
  main
fi
