#!/usr/bin/env bash
# Careless and hostile model, checkpoint and index files, end to end (the
# issue "Hostile and careless input"): one NaN weight in a model file or a
# checkpoint is refused by vlpembed, vlpsearch, vlpeval, [train] init and
# --resume, naming the tensor; a NaN in an index, or an index whose
# captions do not match its rows, is refused by vlpsearch (no crash); a
# run's model.h5 evaluates by itself, a model file without its config
# says what to pass; missing, truncated and non-HDF5 model files are told
# apart; --zeroshot on data without class ids, or with a missing or empty
# class-name file, says what is missing and where.
# NaN is written into the files by byte offset (h5dump gives it; vlp
# stores tensors uncompressed), so python3-h5py is not needed.
#   hostile_models.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/train_fixture.sh"
stamps=/usr/share/tuxpaint/stamps
cd "$dir"
"$build/vlptrain" tiny.ini --set train.steps=4 --set checkpoint.every=2 > train.log 2>&1 || { tail -5 train.log; exit 1; }
"$build/vlpembed" run stamps.h5 -o index.h5 > embed.log 2>&1 || { cat embed.log; exit 1; }

poke_nan() { # poke_nan FILE DATASET: the dataset's first float becomes NaN
  local off
  off=$(h5dump -p -H -d "$2" "$1" | sed -n 's/^ *OFFSET \([0-9]*\).*/\1/p')
  [ -n "$off" ] || { echo "no offset for $2 in $1"; exit 1; }
  printf '\x00\x00\xc0\x7f' | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
# fails STATUS "MESSAGE PART" CMD...: CMD exits with STATUS and says MESSAGE PART on stderr
fails() {
  local want=$1 part=$2 st=0
  shift 2
  "$@" > out.txt 2> err.txt || st=$?
  if [ "$st" -ne "$want" ] || ! grep -qF -- "$part" err.txt; then
    echo "FAIL: $* exited $st (want $want), stderr:"; cat err.txt
    echo "  (wanted: $part)"; exit 1
  fi
  echo "ok: $(tail -n 1 err.txt)"
}
query=$(find "$stamps" -name '*.png' | sort | sed -n 1p) # not head: its early exit can SIGPIPE sort, and pipefail fails
nan_msg="tensor visual.proj holds NaN (element 0 of"

# 1. A model with one NaN weight.
cp -r run nan
poke_nan nan/model.h5 /visual.proj
fails 1 "nan/model.h5: $nan_msg" "$build/vlpembed" nan stamps.h5 -o nanindex.h5
test ! -e nanindex.h5
fails 1 "nan/model.h5: $nan_msg" "$build/vlpsearch" nan index.h5 --image "$query" -k 3
fails 1 "nan/model.h5: $nan_msg" "$build/vlpsearch" nan index.h5 --text frog -k 3
fails 1 "nan/model.h5: $nan_msg" "$build/vlpeval" nan stamps.h5 --retrieval
fails 1 "nan/model.h5: $nan_msg" "$build/vlptrain" tiny.ini --set train.init=nan --set "log.dir=$dir/init"
cp run/checkpoints/step_0000000002.h5 nanckpt.h5
poke_nan nanckpt.h5 /params/visual.proj
fails 1 "nanckpt.h5: $nan_msg" "$build/vlptrain" tiny.ini --set train.steps=6 --resume nanckpt.h5 --set "log.dir=$dir/resume"
test ! -e resume/model.h5
fails 1 "nanckpt.h5: $nan_msg" "$build/vlpeval" nanckpt.h5 stamps.h5 --retrieval
cp run/checkpoints/step_0000000002.h5 nanm.h5
poke_nan nanm.h5 /optim/m/visual.proj
fails 1 "tensor visual.proj under /optim/m holds NaN" "$build/vlptrain" tiny.ini --set train.steps=6 --resume nanm.h5 --set "log.dir=$dir/resume_m"

# 2. Indexes: a NaN row, and arrays that disagree (785 rows, 1 caption).
cp index.h5 nanix.h5
poke_nan nanix.h5 /features
fails 1 "nanix.h5: the features of row 0 (" "$build/vlpsearch" run nanix.h5 --text frog -k 3
mkdir -p few/a
cp "${query%.png}".* few/a/
"$build/vlpembed" run few -o small.h5 > /dev/null 2>&1
h5copy -i index.h5 -o mixed.h5 -s /features -d /features
for d in captions paths source; do h5copy -i small.h5 -o mixed.h5 -s /$d -d /$d; done
fails 1 "mixed.h5: /features holds $(h5dump -H -d features index.h5 | sed -n 's/.*SIMPLE { ( \([0-9]*\), .*/\1/p') rows but /captions holds 1 string:" \
  "$build/vlpsearch" run mixed.h5 --text frog -k 3
"$build/vlpsearch" run index.h5 --image "$query" -k 3 > ok.txt # the whole index still searches
# An index records the model that made it: another model of the same width is refused.
"$build/vlptrain" tiny.ini --set train.steps=2 --set train.seed=7 --set log.dir=other > other.log 2>&1 ||
  { tail -5 other.log; exit 1; }
fails 1 "index.h5 was made by another model (run, weights " "$build/vlpsearch" other index.h5 --text frog -k 3

# 3. A run's model.h5 by itself evaluates as its run folder does; alone, it says what to pass.
"$build/vlpeval" run stamps.h5 --retrieval > folder.txt
"$build/vlpeval" run/model.h5 stamps.h5 --retrieval > file.txt
diff <(grep R@1 folder.txt) <(grep R@1 file.txt)
mkdir alone && cp run/model.h5 alone/
fails 1 "alone/model.h5: a model file (weights only), not a checkpoint, and its folder alone has no config.ini (the architecture): pass the run folder" \
  "$build/vlpeval" alone/model.h5 stamps.h5 --retrieval
printf 'frog\nhat\n' > classes.txt
fails 1 "stamps.h5: sample 0 (" "$build/vlpeval" run stamps.h5 --zeroshot classes.txt
grep -qF "has no class id: zero-shot classification needs one for every sample" err.txt
fails 1 "nope.txt: cannot read the --zeroshot class names: No such file or directory" \
  "$build/vlpeval" run stamps.h5 --zeroshot nope.txt
: > empty.txt
fails 1 "empty.txt: no class names (one per line) for --zeroshot" "$build/vlpeval" run stamps.h5 --zeroshot empty.txt

# 4. Missing, truncated and not-HDF5 model files, told apart.
cp -r run broken
truncate -s 20000 broken/model.h5
fails 1 "broken/model.h5: an HDF5 file that cannot be read (20000 bytes: truncated or damaged?)" \
  "$build/vlpeval" broken stamps.h5 --retrieval
echo "not a model" > broken/model.h5
fails 1 "broken/model.h5: not an HDF5 file, so not a vlp model file" "$build/vlpeval" broken stamps.h5 --retrieval
rm broken/model.h5
fails 1 "broken/model.h5: No such file or directory" "$build/vlpeval" broken stamps.h5 --retrieval
fails 1 "absent.h5: No such file or directory" "$build/vlpsearch" run absent.h5 --text frog
echo "hostile_models: all refused as expected"
