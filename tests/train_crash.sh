#!/usr/bin/env bash
# Crash safety: SIGKILL at random moments of a run that writes a checkpoint
# every step, TRIALS times; after each kill every checkpoint file must be
# complete and readable, and --resume latest must find one.
#   train_crash.sh BUILD [TRIALS]
set -euo pipefail
build=$1 trials=${2:-20}
source "$(dirname "$0")/train_fixture.sh"
sed -i 's/^every = 20/every = 1/; s/^steps = 40/steps = 100000/' "$dir/tiny.ini"
ckpt="$dir/run/checkpoints"
for trial in $(seq "$trials"); do
  resume=(--set log.overwrite=true) # a run killed before its first checkpoint starts afresh over it
  ls "$ckpt"/step_*.h5 >/dev/null 2>&1 && resume=(--resume latest)
  "$build/vlptrain" "$dir/tiny.ini" "${resume[@]}" > "$dir/log" 2>&1 &
  pid=$!
  sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  n=0
  for f in "$ckpt"/step_*.h5; do
    [ -e "$f" ] || continue
    h5dump -a /step "$f" >/dev/null 2>&1 || { echo "trial $trial: $f is unreadable"; exit 1; }
    n=$((n + 1))
  done
  newest=$(ls "$ckpt"/step_*.h5 2>/dev/null | tail -1)
  if [ -z "$newest" ]; then
    if [ "$trial" = 1 ]; then echo "trial 1: killed before the first checkpoint"; continue; fi
    echo "trial $trial: no checkpoint left"; exit 1
  fi
  echo "trial $trial: killed; $n complete checkpoints, newest $(basename "$newest"), $(ls "$ckpt" | grep -c '\.tmp$' || true) partial .tmp"
done
