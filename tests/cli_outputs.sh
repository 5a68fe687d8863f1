#!/usr/bin/env bash
# Careless command lines, refused before any work with exit status 2:
# an output that is one of the inputs (it would be destroyed), an output
# that exists and is not a file (a folder, a FIFO), an empty output path
# (src/base/output.h); and an unknown option or an option without its
# value, named before the usage line (src/cli/args.h, vlp_arg_reject).
# No model is needed: every refusal comes before one is loaded.
#   cli_outputs.sh BUILD
set -uo pipefail
build=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
mkdir -p run folder
echo model > run/model.h5
echo '{}' > run/metrics.jsonl
printf 'filepath\ttitle\na.png\ta cat\n' > x.tsv
printf 'cat\ndog\n' > classes.txt
echo index > index.h5
mkfifo fifo
failed=0
expect() { # expect PATTERN [--usage] PROGRAM ARGS...: status 2 and PATTERN on stderr
  local pattern=$1 usage=0
  shift
  [ "$1" = --usage ] && usage=1 && shift
  local prog=$1
  shift
  local err status
  err=$("$build/$prog" "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 2 ] || ! grep -qF -- "$pattern" <<<"$err" || { [ $usage = 1 ] && ! grep -qi usage <<<"$err"; }; then
    echo "FAIL: $prog $*: status $status, expected 2 with '$pattern'; got: $err"
    failed=1
  else
    echo "ok: $prog $*: $(head -1 <<<"$err")"
  fi
}
before=$(md5sum run/model.h5 x.tsv run/metrics.jsonl classes.txt index.h5)

# An output that is an input.
expect "vlpembed: -o run/model.h5 is the input run/model.h5: writing it would destroy it" vlpembed run x.tsv -o run/model.h5
expect "vlpembed: -o ./run/../run/model.h5 is the input run/model.h5" vlpembed run x.tsv -o ./run/../run/model.h5
expect "vlpembed: -o x.tsv is the input x.tsv" vlpembed run/model.h5 x.tsv -o x.tsv
expect "vlpdata: -o x.tsv is the input x.tsv" vlpdata pack x.tsv -o x.tsv
expect "vlpeval: --json x.tsv is the input x.tsv" vlpeval run x.tsv --retrieval --json x.tsv
expect "vlpeval: --json classes.txt is the input classes.txt" vlpeval run x.tsv --zeroshot classes.txt --json classes.txt
expect "vlpfilter: --report c.tsv is also -o c.tsv: give two paths" vlpfilter run x.tsv -o c.tsv --report c.tsv
expect "vlpfilter: -o x.tsv is the input x.tsv" vlpfilter run x.tsv -o x.tsv
expect "vlpcaption: -o x.tsv is the input x.tsv" vlpcaption run x.tsv -o x.tsv
expect "vlpreport: -o run/metrics.jsonl is the input run/metrics.jsonl" vlpreport run -o run/metrics.jsonl
expect "vlpsearch: --html index.h5 is the input index.h5" vlpsearch run index.h5 --text cat --html index.h5
expect "vlpsegment: --json classes.txt is the input classes.txt" vlpsegment run x.tsv --classes classes.txt --json classes.txt
expect "vlpexport: -o run is the input run: give another folder to write into" vlpexport run -o run --format hf
# An output that is not a file, or an empty path.
expect "vlpembed: -o folder: a folder, not a file it could write" vlpembed run x.tsv -o folder
expect "vlpembed: -o fifo: a FIFO, not a file it could write" vlpembed run x.tsv -o fifo
expect "vlpembed: -o: an empty path; give a file to write" vlpembed run x.tsv -o ''
expect "vlpdata: -o folder: a folder, not a file it could write" vlpdata pack x.tsv -o folder
expect "vlpeval: --json folder: a folder, not a file it could write" vlpeval run x.tsv --retrieval --json folder
expect "vlpcaption: -o: an empty path" vlpcaption run x.tsv -o ''
expect "vlpsegment: --out x.tsv: exists and is not a folder" vlpsegment run x.tsv --classes classes.txt --out x.tsv
expect "vlpexport: -o x.tsv: exists and is not a folder" vlpexport run -o x.tsv --format hf
expect "vlpimport: -o x.tsv: exists and is not a folder" vlpimport run -o x.tsv
expect "vlpimport: -o: an empty path; give a folder to write into" vlpimport run -o ''
expect "vlpdemo: --png folder: a folder, not a file it could write" vlpdemo --png folder
expect "vlpbench: --json folder: a folder" vlpbench --config A --json folder
expect "vlpdata: -o x.tsv: exists and is not a folder" vlpdata scenes spec.tsv -o x.tsv
expect "vlptok: -o classes.txt is the input classes.txt" vlptok train --vocab-size 600 classes.txt -o classes.txt
# A .tmp that a killed vlpembed or vlpdata pack left is removed when the next one starts (here
# one that then fails: the model and the manifest are not real).
for prog in "vlpembed run x.tsv -o new.h5" "vlpdata pack missing.tsv -o new.h5" "vlpimport run -o imported"; do
  out=${prog##* }
  [ "$out" = imported ] && mkdir -p imported && out=imported/model.h5
  echo partial > "$out.tmp"
  $build/$prog > /dev/null 2>&1
  if [ -e "$out.tmp" ]; then echo "FAIL: $prog left $out.tmp"; failed=1; else echo "ok: $prog removed a stale $out.tmp"; fi
done
[ "$(md5sum run/model.h5 x.tsv run/metrics.jsonl classes.txt index.h5)" = "$before" ] || { echo "FAIL: an input changed"; failed=1; }

# Unknown options and options without their value: named, then the usage.
for prog in vlpembed vlpeval vlpcaption vlpfilter vlpsegment vlpsearch vlpvqa; do
  expect "$prog: unknown option '--bogus'" --usage $prog run x.tsv --bogus
done
for prog in vlpreport vlpexport vlpimport vlptrain; do
  expect "$prog: unknown option '--bogus'" --usage $prog run --bogus
done
expect "vlpbench: unknown option '--bogus'" --usage vlpbench --config A --bogus
expect "vlpdemo: unknown option '--bogus'" --usage vlpdemo --bogus
expect "vlpdata: unknown option '--bogus'" --usage vlpdata info x.tsv --bogus 1
expect "vlpdata: unknown option '--bogus'" --usage vlpdata scenes spec.tsv --bogus 1
expect "vlptok: unknown option '--bogus' for encode" --usage vlptok encode --bogus
expect "vlpembed: -o needs a value" --usage vlpembed run x.tsv -o
expect "vlpeval: --json needs a value" --usage vlpeval run x.tsv --retrieval --json
expect "vlpcaption: --nearest needs a value" --usage vlpcaption run x.tsv --nearest
expect "vlpcaption: --beams needs a value" --usage vlpcaption run x.tsv --beams
expect "vlpfilter: --report needs a value" --usage vlpfilter run x.tsv --report
expect "vlpsegment: --classes needs a value" --usage vlpsegment run x.tsv --classes
expect "vlpsearch: --text needs a value" --usage vlpsearch run index.h5 --text
expect "vlpreport: -o needs a value" --usage vlpreport run -o
expect "vlpexport: --format needs a value" --usage vlpexport run -o out --format
expect "vlpimport: --vocab needs a value" --usage vlpimport run -o out --vocab
expect "vlptrain: --resume needs a value" --usage vlptrain tiny.ini --resume
expect "vlpvqa: --template needs a value" --usage vlpvqa run image.png what --template
expect "vlpbench: --json needs a value" --usage vlpbench --config A --json
expect "vlpdemo: --png needs a value" --usage vlpdemo --png
expect "vlpdata: -o needs a value" --usage vlpdata pack x.tsv -o
expect "vlpdata: --separator 'ab' is not one character" --usage vlpdata info x.tsv --separator ab
expect "vlptok: --merges needs a value" --usage vlptok encode --merges
exit $failed
