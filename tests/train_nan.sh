#!/usr/bin/env bash
# The NaN/Inf guard, driven by the trainer's test hook VLP_TEST_NAN_STEPS
# (a NaN in those steps' images):
# - one bad step is skipped and counted, and the run finishes with finite
#   losses after it (an AdamW update with a NaN gradient would poison every
#   later step);
# - [train] max_bad_steps bad steps in a row stop the run with a message
#   naming the step, the count and the newest checkpoint, exit status 1, no
#   checkpoint written during the streak, and that checkpoint resumes.
#   train_nan.sh BUILD WORLD     (WORLD 1: one process; 2: mpirun -n 2)
set -euo pipefail
build=$1 world=$2
source "$(dirname "$0")/train_fixture.sh"
run() { # run DIR [vlptrain args]
  local out=$1; shift
  local args=(--set "log.dir=$out" --set "train.batch_size=$((8 / world))" --set checkpoint.every=5)
  if [ "$world" = 1 ]; then "$build/vlptrain" "$dir/tiny.ini" "${args[@]}" "$@"
  else mpirun --oversubscribe -n "$world" "$build/vlptrain" "$dir/tiny.ini" "${args[@]}" "$@"; fi
}
fail() { echo "FAIL: $*"; exit 1; }

# One bad step.
VLP_TEST_NAN_STEPS=5 run "$dir/one" > "$dir/one.log" 2>&1 || { cat "$dir/one.log"; fail "the run with one NaN step failed"; }
grep "update skipped" "$dir/one.log" || fail "no 'update skipped' message"
grep -q '"step": 5, .*"loss": null, .*"skipped": true, "bad_steps": 1' "$dir/one/metrics.jsonl" ||
  fail "step 5 is not logged as skipped"
nulls=$(grep -c '"loss": null' "$dir/one/metrics.jsonl" || true)
[ "$nulls" = 1 ] || fail "$nulls steps have no finite loss (expected only step 5)"
[ "$(grep -c '"loss"' "$dir/one/metrics.jsonl")" = 40 ] || fail "the run did not log 40 steps"
grep "1 of 40 steps skipped" "$dir/one.log" || fail "no count of skipped steps at the end"
[ -e "$dir/one/model.h5" ] || fail "no model.h5"

# max_bad_steps = 3 bad steps in a row: 19, 20, 21. The step-20 checkpoint
# falls inside the streak and must not be written; step 15's is the newest.
set +e
VLP_TEST_NAN_STEPS=19,20,21 run "$dir/streak" --set train.max_bad_steps=3 > "$dir/streak.log" 2>&1
status=$?
set -e
cat "$dir/streak.log" | grep -v '^step' || true
[ "$status" != 0 ] || fail "the run ended with status 0"
grep -q "step 21: 3 steps in a row (from step 19) had a loss or gradient norm that is not finite" "$dir/streak.log" ||
  fail "no message naming the step and the count"
grep -q "the newest checkpoint, $dir/streak/checkpoints/step_0000000015.h5, is from before it" "$dir/streak.log" ||
  fail "the message does not name the newest checkpoint"
newest=$(ls "$dir/streak/checkpoints"/step_*.h5 | tail -1)
[ "$(basename "$newest")" = step_0000000015.h5 ] || fail "newest checkpoint is $newest, written during the streak"
[ ! -e "$dir/streak/model.h5" ] || fail "model.h5 written after the streak"
h5dump -a /step "$newest" | grep -q "(0): 15" || fail "$newest is unreadable"
run "$dir/streak" --resume latest > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "--resume latest failed"; }
grep '"step": 40,' "$dir/streak/metrics.jsonl" | grep -qv '"loss": null' || fail "the resumed run did not reach step 40"
echo "NaN guard: one bad step skipped, a streak of 3 stopped the run at step 21, resumed from step 15 (world $world)"
