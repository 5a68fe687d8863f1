#!/usr/bin/env bash
# A run folder is one run's: a fresh start in a folder that holds a run is
# refused (--resume latest or [log] overwrite = true are the ways out); a
# resume past the run's end, a contrastive batch of one pair and a manifest
# separator of two characters are refused, naming the key; stale .tmp files
# of a killed run are removed at the next start; and the run folder's
# config.ini finds its data from any working directory.
#   train_run_folder.sh BUILD
set -uo pipefail
build=$1
source "$(dirname "$0")/train_fixture.sh"
fail() { echo "FAIL: $*"; exit 1; }
expect() { # expect STATUS PATTERN ARGS... (vlptrain in $dir)
  local want=$1 pattern=$2
  shift 2
  local status=0
  (cd "$dir" && "$build/vlptrain" "$@") > "$dir/out.log" 2>&1 || status=$?
  [ "$status" = "$want" ] || { cat "$dir/out.log"; fail "vlptrain $*: status $status, expected $want"; }
  grep -qF -- "$pattern" "$dir/out.log" || { cat "$dir/out.log"; fail "vlptrain $*: no '$pattern'"; }
  echo "ok: status $status: $(grep -F -- "$pattern" "$dir/out.log" | head -1)"
}
# Started in $dir with relative paths: [data] train = stamps.h5, [log] dir = run.
(cd "$dir" && "$build/vlptrain" tiny.ini --set log.dir=run --set train.steps=4 --set checkpoint.every=2) \
  > "$dir/first.log" 2>&1 || { cat "$dir/first.log"; fail "the first run failed"; }
[ -e "$dir/run/model.h5" ] || fail "no model.h5"

expect 1 "run already holds a run (model.h5, checkpoints, metrics.jsonl): continue it with --resume latest, or start afresh over it with [log] overwrite = true" \
  tiny.ini --set log.dir=run --set train.steps=4
expect 1 "run/checkpoints/step_0000000004.h5: resumed at step 4, past the run's 2 steps ([train] steps = 2)" \
  tiny.ini --set log.dir=run --set train.steps=2 --resume latest
expect 1 "[train] batch_size = 1: a contrastive batch of 1 x 1 rank x accum_freq 1 = 1 pair has no negatives" \
  tiny.ini --set log.dir=fresh --set train.batch_size=1
[ ! -e "$dir/fresh" ] || fail "the refused run made its folder"
expect 2 "[data] separator = 'ab' is not one character (or \\t for a tab)" tiny.ini --set log.dir=fresh --set data.separator=ab

# The run's config.ini, from another working directory: its paths are absolute.
grep -q "^train = $dir/stamps.h5$" "$dir/run/config.ini" || fail "config.ini: [data] train is not absolute"
grep -q "^dir = $dir/run$" "$dir/run/config.ini" || fail "config.ini: [log] dir is not absolute"
# Stale partial writes of a killed run, removed by the next start.
echo partial > "$dir/run/model.h5.tmp"
echo partial > "$dir/run/checkpoints/step_0000000005.h5.tmp"
mkdir -p "$dir/elsewhere"
(cd "$dir/elsewhere" && "$build/vlptrain" "$dir/run/config.ini" --set train.steps=6 --resume latest) \
  > "$dir/resumed.log" 2>&1 || { cat "$dir/resumed.log"; fail "vlptrain RUN/config.ini --resume latest from elsewhere failed"; }
grep -q '"step": 6,' "$dir/run/metrics.jsonl" || fail "the resumed run did not reach step 6"
[ ! -e "$dir/elsewhere/run" ] || fail "the resumed run wrote into the working directory"
[ ! -e "$dir/run/model.h5.tmp" ] || fail "model.h5.tmp was left"
[ ! -e "$dir/run/checkpoints/step_0000000005.h5.tmp" ] || fail "a checkpoint's .tmp was left"
echo "ok: RUN/config.ini --resume latest from another folder reached step 6; stale .tmp files removed"

# [log] overwrite = true: a fresh run over the old one, whose checkpoints go.
(cd "$dir" && "$build/vlptrain" tiny.ini --set log.dir=run --set train.steps=2 --set log.overwrite=true) \
  > "$dir/over.log" 2>&1 || { cat "$dir/over.log"; fail "[log] overwrite = true: the run failed"; }
[ "$(ls "$dir/run/checkpoints")" = step_0000000002.h5 ] || fail "overwrite left: $(ls "$dir/run/checkpoints" | tr '\n' ' ')"
[ "$(grep -c '"loss"' "$dir/run/metrics.jsonl")" = 2 ] || fail "overwrite: metrics.jsonl mixes two runs"
grep -q '^overwrite = false$' "$dir/run/config.ini" || fail "the run's config.ini keeps overwrite = true"
echo "ok: [log] overwrite = true replaced the run; its config.ini says overwrite = false"
