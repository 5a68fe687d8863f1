#!/usr/bin/env bash
# Resume is exact: 2N steps in one run log the same losses, bit for bit, as
# N steps, SIGKILL, --resume latest, N more steps.
#   train_resume.sh BUILD WORLD     (WORLD 1: one process; 2: mpirun -n 2)
set -euo pipefail
build=$1 world=$2
source "$(dirname "$0")/train_fixture.sh"
# Long enough that the run is still going when the poll below sees the
# step-20 checkpoint (steps take a few milliseconds).
steps=200
run() { # run DIR [vlptrain args]: the training command, alone or under mpirun
  local out=$1; shift
  local args=(--set "log.dir=$out" --set "train.steps=$steps" --set "train.batch_size=$((8 / world))")
  if [ "$world" = 1 ]; then "$build/vlptrain" "$dir/tiny.ini" "${args[@]}" "$@"
  else mpirun --oversubscribe -n "$world" "$build/vlptrain" "$dir/tiny.ini" "${args[@]}" "$@"; fi
}
losses() { sed -E 's/.*"step": ([0-9]+).*"loss": ([^,]+),.*/\1 \2/' "$1/metrics.jsonl"; }

run "$dir/whole" > "$dir/whole.log" 2>&1
# The same run, killed once its step-20 checkpoint exists, then resumed.
run "$dir/broken" > "$dir/broken.log" 2>&1 &
for _ in $(seq 600); do
  [ -e "$dir/broken/checkpoints/step_0000000020.h5" ] && break
  sleep 0.02
done
pkill -9 -f "log.dir=$dir/broken" || true
wait || true
killed_at=$(losses "$dir/broken" | tail -1 | cut -d' ' -f1)
echo "killed after step $killed_at (checkpoint at 20)"
[ "$killed_at" -lt "$steps" ] || { echo "the run finished before it could be killed"; exit 1; }
run "$dir/broken" --resume latest > "$dir/resumed.log" 2>&1
if diff <(losses "$dir/whole") <(losses "$dir/broken"); then
  echo "resume exact: $(losses "$dir/whole" | wc -l) losses identical (world $world)"
else
  echo "resumed losses differ from the uninterrupted run's"; exit 1
fi
