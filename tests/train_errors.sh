#!/usr/bin/env bash
# What a user sees for bad input, through the programs themselves: each case
# runs vlptrain (or vlpeval) and checks the exit status and the message
# (the rows of docs/errors.md that the unit suites do not cover).
#   train_errors.sh BUILD
set -euo pipefail
build=$(cd "$1" && pwd)
source "$(dirname "$0")/train_fixture.sh"
cd "$dir"
sed -i 's/^steps = 40/steps = 4/; s/^batch_size = 16/batch_size = 4/' tiny.ini
fail() { echo "FAIL: $*"; exit 1; }
# expect STATUS MESSAGE COMMAND...: the command fails with STATUS, its
# output holds MESSAGE (a fixed string), and it took under 10 s.
expect() {
  local want=$1 says=$2; shift 2
  local status=0 start=$SECONDS
  "$@" > out.log 2>&1 || status=$?
  [ "$status" = "$want" ] || { cat out.log; fail "$*: exit status $status, expected $want"; }
  grep -qF -- "$says" out.log || { cat out.log; fail "$*: no '$says'"; }
  [ $((SECONDS - start)) -lt 10 ] || fail "$*: took $((SECONDS - start)) s"
  echo "ok: $(grep -F -- "$says" out.log | head -1)"
}
train() { "$build/vlptrain" tiny.ini "$@"; }

# --- configuration (the unit suite test_config checks every message) ------
expect 2 "typo.ini:$(grep -n '^lr' tiny.ini | cut -d: -f1): unknown key 'learning_rate' in [optim]" \
  bash -c "sed 's/^lr = 1e-3/learning_rate = 1e-3/' tiny.ini > typo.ini && '$build/vlptrain' typo.ini"
expect 2 "missing.ini: No such file or directory" "$build/vlptrain" missing.ini

# --- data ---------------------------------------------------------------------
mkdir images
i=0
for png in $(find /usr/share/tuxpaint/stamps -name '*.png' | sort | head -16); do cp "$png" "images/$i.png"; i=$((i + 1)); done
{ printf 'filepath\ttitle\n'; for i in $(seq 0 15); do printf 'images/%s.png\tstamp %s\n' "$i" "$i"; done; } > good.tsv
sed 's/^train = stamps.h5/train = nope.tsv/' tiny.ini > nope.ini
expect 1 "nope.ini:$(grep -n '^train' nope.ini | cut -d: -f1): [data] train: $dir/nope.tsv: No such file or directory" "$build/vlptrain" "$dir/nope.ini"
printf 'path\ttitle\nimages/0.png\ta\n' > nocolumn.tsv
expect 1 "--set data.train: nocolumn.tsv:1: no column 'filepath' (the header has 'path', 'title')" \
  train --set data.train=nocolumn.tsv
printf 'filepath\ttitle\n' > header_only.tsv
expect 1 "header_only.tsv: no samples after the header" train --set data.train=header_only.tsv
: > empty.tsv
expect 1 "empty.tsv: empty file, no header" train --set data.train=empty.tsv
mkdir broken
{ printf 'filepath\ttitle\n'; for i in $(seq 0 7); do echo "not an image" > "broken/$i.png"; printf 'broken/%s.png\tbroken %s\n' "$i" "$i"; done; } > broken.tsv
expect 1 "broken.tsv: no image of the dataset can be read" train --set data.train=broken.tsv
grep -qF "vlp: warning: skipped broken/0.png: not an image stb_image can read (unknown image type)" out.log ||
  fail "no warning naming a corrupt image"
# Captions longer than the context are truncated (EOT kept), invalid UTF-8
# is tokenized byte by byte: both train, checkpoint and resume.
long=$(printf 'word%s ' $(seq 200))
{ printf 'filepath\ttitle\n'; for i in $(seq 0 15); do printf 'images/%s.png\t%s caf\xe9 \xff\xfe stamp \xc3 %s\n' "$i" "$long" "$i"; done; } > odd.tsv
train --set data.train=odd.tsv --set log.dir="$dir/odd" --set checkpoint.every=2 --set train.steps=5 > out.log 2>&1 || { cat out.log; fail "odd captions: training failed"; }
grep -qE "vlp: warning: odd.tsv: the caption of sample [0-9]+ has [0-9]+ tokens, more than the [0-9]+ a context of [0-9]+ holds" out.log ||
  { cat out.log; fail "no warning for a caption longer than the context"; }
grep -qE "epoch 0 done: 0 unreadable images skipped, 16 captions cut to the context" out.log ||
  { cat out.log; fail "cut captions not counted per epoch"; }
echo "ok: $(grep -F "vlp: warning: odd.tsv" out.log)"
echo "ok: $(grep -F "captions cut" out.log)"
train --set data.train=odd.tsv --set log.dir="$dir/odd" --set train.steps=6 --resume latest > out.log 2>&1 ||
  { cat out.log; fail "odd captions: resume failed"; }
echo "ok: 200-word captions with invalid UTF-8 train and resume"
sed 's/^dir = .*/dir = run/; /^\[eval\]/d' tiny.ini > eval.ini
printf '[eval]\nclassnames = classes.txt\n' >> eval.ini
expect 1 "eval.ini:$(grep -n '^classnames' eval.ini | cut -d: -f1): [eval] classnames: $dir/classes.txt: No such file or directory" \
  "$build/vlptrain" "$dir/eval.ini" --set data.val=good.tsv

expect 1 "stamps.h5: 785 samples make no batch of 1000 x 1 ranks" train --set train.batch_size=1000
expect 1 "tiny.ini: [eval] asks for an evaluation but [data] val is empty" train --set eval.retrieval=pair
expect 1 "--set data.tokenizer: none.bpe: cannot open: No such file or directory" train --set data.tokenizer=none.bpe
printf '#version: 0.2\na b c\n' > bad.bpe
expect 1 "--set data.tokenizer: bad.bpe:2: expected two symbols separated by one space, got 'a b c'" \
  train --set data.tokenizer=bad.bpe
expect 1 "--set train.init: none: No such file or directory" train --set train.init=none
expect 1 "--set train.positives: good.tsv: sample 0 has no class_id (positives = class needs one for every sample)" \
  train --set data.train=good.tsv --set train.positives=class
touch afile
expect 1 "$dir/afile/run: cannot create the run folder: Not a directory" train --set log.dir="$dir/afile/run"

# --- checkpoints --------------------------------------------------------------
train --set log.dir="$dir/run" --set checkpoint.every=2 > out.log 2>&1 || { cat out.log; fail "training failed"; }
ckpt=$dir/run/checkpoints/step_0000000004.h5
expect 1 "step_0000000004.h5: tensor visual.proj has shape (48, 32), the model expects (48, 16)" \
  train --set log.dir="$dir/other" --resume "$ckpt" --set model.embed_dim=16
expect 1 "step_0000000004.h5: tensor visual.transformer.resblocks.2.ln_1.weight is missing (the model expects (48))" \
  train --set log.dir="$dir/other" --resume "$ckpt" --set model.vision_layers=3
head -c 100000 "$ckpt" > truncated.h5
expect 1 "truncated.h5: an HDF5 file that cannot be read (100000 bytes: truncated or damaged?)" \
  train --set log.dir="$dir/other" --resume truncated.h5
echo "hello" > text.h5
expect 1 "text.h5: not an HDF5 file, so not a vlp checkpoint" train --set log.dir="$dir/other" --resume text.h5
expect 1 "absent.h5: No such file or directory" train --set log.dir="$dir/other" --resume absent.h5
expect 1 "vlpeval: truncated.h5: an HDF5 file that cannot be read" "$build/vlpeval" truncated.h5 good.tsv --retrieval
expect 1 "$dir/other/checkpoints: no readable checkpoint to resume from" train --set log.dir="$dir/other" --resume latest
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  cp "$ckpt" newer.h5
  /usr/bin/python3 -c "import h5py; f = h5py.File('newer.h5', 'r+'); f.attrs.modify('format_version', 2); f.close()"
  expect 1 "newer.h5: checkpoint format 2 is newer than this build's 1; update vlp" \
    train --set log.dir="$dir/other" --resume newer.h5
else
  echo "note: python3-h5py missing, the newer-format case is not run"
fi
# --resume latest passes over a newest checkpoint that is damaged.
head -c 100000 "$ckpt" > "$dir/run/checkpoints/step_0000000009.h5"
train --set log.dir="$dir/run" --set train.steps=6 --resume latest > out.log 2>&1 || { cat out.log; fail "resume past a damaged checkpoint failed"; }
grep -qF "vlp: warning: passing over $dir/run/checkpoints/step_0000000009.h5: an HDF5 file that cannot be read" out.log ||
  { cat out.log; fail "no warning about the damaged checkpoint"; }
echo "ok: $(grep -F 'passing over' out.log)"

# --- MPI ------------------------------------------------------------------------
sed 's/^lr = 1e-3/lr = 2e-3/' tiny.ini > other_lr.ini
expect 1 "rank 1's configuration differs from rank 0's at [optim] lr (rank 0 has 'lr = 0.00100000005')" \
  timeout 60 mpirun --oversubscribe -n 1 "$build/vlptrain" tiny.ini --set log.dir="$dir/mpi" : \
  -n 1 "$build/vlptrain" other_lr.ini --set log.dir="$dir/mpi"
