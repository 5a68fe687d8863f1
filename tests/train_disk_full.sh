#!/usr/bin/env bash
# Disk full. First metrics.jsonl on /dev/full: a warning, the run goes on.
# Then while writing a checkpoint: the run folder is a small tmpfs that
# holds the step-10 checkpoint (1.9 MB for the fixture's model) but not a
# second one beside it. Expected: an error naming the file and the system's
# reason, the step-10 checkpoint intact and loadable, no .tmp left, and
#   [checkpoint] on_error = stop (default): the run stops, status 1, also
#                                           on 2 ranks (no hang);
#   [checkpoint] on_error = continue:       warnings, the run finishes.
# Skipped (77) where a tmpfs cannot be mounted (not root, no CAP_SYS_ADMIN).
#   train_disk_full.sh BUILD
set -euo pipefail
build=$1
source "$(dirname "$0")/train_fixture.sh"
run="$dir/run"
mkdir -p "$run"
fail() { echo "FAIL: $*"; exit 1; }

# metrics.jsonl on a full disk (/dev/full, no root needed): one warning
# naming the file, the step it begins at and the reason; the run finishes.
ln -s /dev/full "$run/metrics.jsonl"
"$build/vlptrain" "$dir/tiny.ini" --set train.steps=5 > "$dir/metrics.log" 2>&1 ||
  { cat "$dir/metrics.log"; fail "metrics.jsonl unwritable: the run failed"; }
[ "$(grep -c "metrics.jsonl: No space left on device; training goes on, but the file misses steps from 1$" \
      "$dir/metrics.log")" = 1 ] || { cat "$dir/metrics.log"; fail "not one warning about metrics.jsonl"; }
grep -q "wrote $run/model.h5; $run/metrics.jsonl misses steps from 1" "$dir/metrics.log" ||
  fail "the last line does not say metrics.jsonl misses steps"
rm -rf "$run" && mkdir -p "$run"
echo "metrics.jsonl on a full disk: one warning, the run finished"

mount -t tmpfs -o size=3m vlp-disk-full "$run" 2>/dev/null ||
  { echo "SKIP: cannot mount a tmpfs on $run (needs root)"; rm -rf "$dir"; exit 77; }
trap 'umount "$run" 2>/dev/null || true; pkill -9 -f "$dir/" 2>/dev/null || true; rm -rf "$dir"' EXIT
fresh() { umount "$run"; mount -t tmpfs -o size=3m vlp-disk-full "$run"; }
args=(--set checkpoint.every=10)
ckpt="$run/checkpoints"

expect_intact() { # expect_intact LOG: the message, and step 10's checkpoint alone and loadable
  grep -q "checkpoint of step 20 not written: cannot write $ckpt/step_0000000020.h5.tmp ([0-9]* bytes): No space left on device; the newest checkpoint, $ckpt/step_0000000010.h5, is intact" "$1" ||
    { cat "$1"; fail "no error naming the file and the reason"; }
  [ "$(ls "$ckpt")" = step_0000000010.h5 ] || fail "checkpoints left: $(ls "$ckpt" | tr '\n' ' ')"
  h5dump -a /step "$ckpt/step_0000000010.h5" | grep -q "(0): 10" || fail "step 10's checkpoint is unreadable"
  # Loadable: resume from a copy on a disk with room, five more steps.
  rm -rf "$dir/copy" && mkdir "$dir/copy" && cp "$ckpt/step_0000000010.h5" "$dir/copy/"
  "$build/vlptrain" "$dir/tiny.ini" --set "log.dir=$dir/resumed" --set train.steps=15 \
    --resume "$dir/copy/step_0000000010.h5" > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "cannot resume from it"; }
  rm -rf "$dir/resumed"
}

# on_error = stop, one process.
status=0
"$build/vlptrain" "$dir/tiny.ini" "${args[@]}" > "$dir/stop.log" 2>&1 || status=$?
grep -v '^step' "$dir/stop.log"
[ "$status" = 1 ] || fail "exit status $status, expected 1"
expect_intact "$dir/stop.log"
[ ! -e "$run/model.h5" ] || fail "the run went on to write model.h5"
echo "on_error = stop: status 1, step 10's checkpoint intact and loadable"

# on_error = stop, 2 ranks: every rank learns of rank 0's failure and the job ends.
fresh
status=0
timeout 60 mpirun --oversubscribe -n 2 "$build/vlptrain" "$dir/tiny.ini" "${args[@]}" --set train.batch_size=8 \
  > "$dir/mpi.log" 2>&1 || status=$?
[ "$status" != 124 ] || fail "2 ranks: still running after 60 s"
[ "$status" != 0 ] || fail "2 ranks: exit status 0"
expect_intact "$dir/mpi.log"
echo "on_error = stop, 2 ranks: status $status, step 10's checkpoint intact and loadable"

# on_error = continue.
fresh
"$build/vlptrain" "$dir/tiny.ini" "${args[@]}" --set checkpoint.on_error=continue > "$dir/continue.log" 2>&1 ||
  { cat "$dir/continue.log"; fail "on_error = continue: the run failed"; }
grep -q "warning: checkpoint of step 20 not written: .*No space left on device.*training goes on" "$dir/continue.log" ||
  fail "on_error = continue: no warning"
grep -q '"step": 40,' "$run/metrics.jsonl" || fail "on_error = continue: the run did not reach step 40"
expect_intact "$dir/continue.log"
echo "on_error = continue: warnings, the run finished, step 10's checkpoint intact"
