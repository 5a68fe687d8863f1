#!/usr/bin/env bash
# Resume is exact: 2N steps in one run log the same losses, bit for bit, as
# N steps, SIGKILL, --resume latest, N more steps.
#   train_resume.sh BUILD WORLD [KIND]   (WORLD 1: one process; 2: mpirun -n 2)
# KIND clip (the fixture's recipe), blip (with momentum encoders and queue,
# local hard negatives, the captioning prompt) or groupvit (multi-label
# prompts from a list of nouns, Gumbel noise).
set -euo pipefail
build=$1 world=$2 kind=${3:-clip}
source "$(dirname "$0")/train_fixture.sh"
kind_args=()
case $kind in
  clip) ;;
  blip) kind_args=(--set model.kind=blip --set blip.momentum=true --set blip.queue_size=24) ;;
  groupvit)
    printf '%s\n' frog bird cat dog fish flower tree apple car hat house star sun moon boat > "$dir/nouns.txt"
    kind_args=(--set model.kind=groupvit --set groupvit.depths=1,1,1 --set groupvit.group_tokens=8,4
               --set groupvit.output_groups=8,4 --set groupvit.proj_hidden=64 --set groupvit.prompts=2
               --set groupvit.labels=nouns --set "groupvit.nouns=$dir/nouns.txt") ;;
  *) echo "unknown kind $kind"; exit 2 ;;
esac
# Long enough that the run is still going when the poll below sees the
# step-20 checkpoint (steps take a few milliseconds).
steps=200
run() { # run DIR [vlptrain args]: the training command, alone or under mpirun
  local out=$1; shift
  local args=(--set "log.dir=$out" --set "train.steps=$steps" --set "train.batch_size=$((8 / world))"
              ${kind_args[@]+"${kind_args[@]}"})
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
# its progress counts on from the checkpoint's step, not from 0
grep -q "resumed at step 20 of $steps" "$dir/resumed.log" ||
  { echo "no 'resumed at step 20' line"; cat "$dir/resumed.log"; exit 1; }
grep -q "step  *$steps/$steps " "$dir/resumed.log" ||
  { echo "the resumed run's last progress line is not step $steps/$steps"; cat "$dir/resumed.log"; exit 1; }
if diff <(losses "$dir/whole") <(losses "$dir/broken"); then
  echo "resume exact: $(losses "$dir/whole" | wc -l) losses identical ($kind, world $world)"
else
  echo "resumed losses differ from the uninterrupted run's"; exit 1
fi
# The run folder and a checkpoint serve vlpeval's retrieval, whatever the kind.
if [ "$world" = 1 ]; then
  for model in "$dir/whole" "$dir/broken/checkpoints/step_0000000200.h5"; do
    "$build/vlpeval" "$model" "$dir/stamps.h5" --retrieval --batch 64 > "$dir/eval.log" 2>&1 ||
      { cat "$dir/eval.log"; exit 1; }
  done
  echo "vlpeval: $(grep -m1 'image->text' "$dir/eval.log")"
fi
