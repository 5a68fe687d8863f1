#!/usr/bin/env bash
# The communication of a data-parallel CLIP step, measured and modelled
# (docs/scaling.md). build/vlpbench --comm-reps times the step's collectives
# alone (2 all-gathers of the B x D embeddings, 2 reduce-scatters of their
# gradients, 1 all-reduce of every gradient) under mpirun:
#   shm: W = 2 and 4 ranks on this machine (Open MPI's shared-memory btl);
#   tcp: W = 2 and 4 ranks in two network namespaces joined by a veth pair
#        (tests/mpi_two_hosts.sh's setup; TCP only, as between two hosts).
# Then W = 2 whole steps on both transports, with the gradient all-reduce
# overlapped with backward (the default) and after it (--no-overlap).
# scripts/scaling_model.py fits latency and bandwidth per transport on
# the W = 2 runs, checks the fit against the W = 4 runs, and extrapolates to
# W = 8..512 at CLIP's global batch of 32768.
#   scripts/scaling.sh [--config A|B] [--reps N] [--out FILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
config=A reps=20 out="" invocation="scripts/scaling.sh $*"
while [ $# -gt 0 ]; do
  case $1 in
    --config) config=$2; shift ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "scaling.sh: unexpected argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bench=("$root/build/vlpbench" --config "$config" --steps 3 --warmup 1 --sgemm-reps 0 --comm-reps "$reps")

# One rank alone: the compute a step costs without communication.
"${bench[@]}" --json "$dir/w1.json" 2>/dev/null
for w in 2 4; do
  mpirun --oversubscribe -n "$w" "${bench[@]}" --json "$dir/shm_w$w.json" 2>/dev/null
  # two "hosts", w/2 ranks each
  VLP_TWO_HOSTS_SLOTS=$((w / 2)) VLP_TWO_HOSTS_TIMEOUT=600 \
    VLP_TWO_HOSTS_RUN="${bench[*]} --json $dir/tcp_w$w.json" \
    bash "$root/tests/mpi_two_hosts.sh" "$root/build" > "$dir/tcp_w$w.log" 2>&1 ||
    { cat "$dir/tcp_w$w.log"; exit 1; }
done
# The all-reduce overlapped with backward (vlp's way) against after it, at
# W = 2 on both transports: whole steps, alternated, so that both see the
# same machine.
steps=(--steps 10 --warmup 2 --sgemm-reps 0)
for round in 1 2; do
  for mode in overlap serial; do
    flag=(); [ $mode = serial ] && flag=(--no-overlap)
    mpirun --oversubscribe -n 2 "$root/build/vlpbench" --config "$config" "${steps[@]}" "${flag[@]}" \
      --json "$dir/shm_${mode}_$round.json" 2>/dev/null
    VLP_TWO_HOSTS_TIMEOUT=600 \
      VLP_TWO_HOSTS_RUN="$root/build/vlpbench --config $config ${steps[*]} ${flag[*]} --json $dir/tcp_${mode}_$round.json" \
      bash "$root/tests/mpi_two_hosts.sh" "$root/build" > "$dir/tcp_$mode.log" 2>&1 ||
      { cat "$dir/tcp_$mode.log"; exit 1; }
  done
done
/usr/bin/python3 "$root/scripts/scaling_model.py" "$dir" "$invocation" | tee ${out:+"$out"}
