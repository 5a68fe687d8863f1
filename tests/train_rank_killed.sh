#!/usr/bin/env bash
# One MPI rank killed with SIGKILL mid-run (rank 1, then rank 0, the one
# that writes checkpoints, while it checkpoints every other step): the whole
# job must end within 60 s with a message naming the rank, leave no process
# behind, keep every checkpoint readable, and resume from the newest.
# What ends the job is Open MPI's mpirun (4.1: it notices the death, sends
# SIGTERM to the other ranks and SIGKILL a second later).
#   train_rank_killed.sh BUILD MPIEXEC
set -euo pipefail
build=$1 mpiexec=$2
source "$(dirname "$0")/train_fixture.sh"
sed -i 's/^steps = 40/steps = 100000/; s/^every = 20/every = 2/' "$dir/tiny.ini"
fail() { echo "FAIL: $*"; exit 1; }
ckpt="$dir/run/checkpoints"

for victim in 1 0; do
  "$mpiexec" --oversubscribe -n 2 "$build/vlptrain" "$dir/tiny.ini" --set train.batch_size=8 \
    > "$dir/rank$victim.log" 2>&1 &
  launcher=$!
  for _ in $(seq 1200); do [ -e "$ckpt/step_0000000020.h5" ] && break; sleep 0.05; done
  [ -e "$ckpt/step_0000000020.h5" ] || { cat "$dir/rank$victim.log"; fail "rank $victim run: no checkpoint after 60 s"; }
  pid=
  for p in $(pgrep -P "$launcher"); do
    tr '\0' '\n' < "/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$victim" && pid=$p
  done
  [ -n "$pid" ] || fail "rank $victim's process not found"
  ranks=$(pgrep -P "$launcher" | tr '\n' ',')
  kill -9 "$pid"
  start=$(date +%s%N)
  timeout 60 tail --pid="$launcher" -f /dev/null || fail "rank $victim killed: the job still runs after 60 s"
  took=$(( ($(date +%s%N) - start) / 1000000 ))
  status=0; wait "$launcher" || status=$?
  [ "$status" != 0 ] || fail "rank $victim killed: exit status 0"
  # (a zombie of the killed rank may wait for its new parent to reap it)
  left=$(ps -o stat=,pid=,args= -p "${ranks%,}" | grep -v '^Z' || true)
  [ -z "$left" ] || fail "rank $victim killed: processes left: $left"
  grep -q "noticed that process rank $victim with PID .* exited on signal 9 (Killed)" "$dir/rank$victim.log" ||
    { cat "$dir/rank$victim.log"; fail "rank $victim killed: no message naming it"; }
  n=0
  for f in "$ckpt"/step_*.h5; do
    h5dump -a /step "$f" > /dev/null 2>&1 || fail "rank $victim killed: $f is unreadable"
    n=$((n + 1))
  done
  newest=$(ls "$ckpt"/step_*.h5 | tail -1)
  echo "rank $victim killed: the job ended in ${took} ms, status $status; $n checkpoints readable, newest $(basename "$newest")"
  step=$((10#$(basename "$newest" .h5 | sed 's/step_//')))
  "$mpiexec" --oversubscribe -n 2 "$build/vlptrain" "$dir/tiny.ini" --set train.batch_size=8 \
    --set "train.steps=$((step + 3))" --resume latest > "$dir/resume$victim.log" 2>&1 ||
    { cat "$dir/resume$victim.log"; fail "rank $victim killed: --resume latest failed"; }
  grep -q "\"step\": $((step + 3))," "$dir/run/metrics.jsonl" || fail "the resumed run did not reach step $((step + 3))"
  echo "rank $victim killed: resumed from step $step to $((step + 3))"
  rm -rf "$dir/run"
done
