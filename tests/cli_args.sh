#!/usr/bin/env bash
# Every program refuses a bad number on its command line the same way, before
# any work: the option and the value named, the usage line, exit status 2
# (src/cli/args.h). One bad value per program, of each kind.
#   cli_args.sh BUILD
set -uo pipefail
build=$1
failed=0
expect() { # expect PATTERN PROGRAM ARGS...
  local pattern=$1 prog=$2
  shift 2
  local err status
  err=$("$build/$prog" "$@" 2>&1 >/dev/null)
  status=$?
  if [ "$status" -ne 2 ] || ! grep -q -- "$pattern" <<<"$err" || ! grep -qi "usage" <<<"$err"; then
    echo "FAIL: $prog $*: status $status, expected 2 with '$pattern' and the usage line; got: $err"
    failed=1
  else
    echo "ok: $prog $*: $(head -1 <<<"$err")"
  fi
}
expect "vlpembed: --batch: 'x' is not a whole number in \[1, 65536\]" vlpembed run data -o i.h5 --batch x
expect "vlpembed: --workers: '0' is not a whole number in \[1, 64\]" vlpembed run data -o i.h5 --workers 0
expect "vlpeval: --batch: '99999999999' is not a whole number" vlpeval run data --retrieval --batch 99999999999
expect "vlpeval: --rerank: '-1' is not a whole number" vlpeval run data --retrieval --rerank -1
expect "vlpcaption: --workers: '2x' is not a whole number" vlpcaption run data --workers 2x
expect "vlpfilter: --threshold: '2' is not a number in \[0, 1\]" vlpfilter run data -o c.tsv --threshold 2
expect "vlpfilter: --seed: '' is not a whole number" vlpfilter run data -o c.tsv --seed ''
expect "vlpsearch: -k: 'abc' is not a whole number" vlpsearch run i.h5 --text cat -k abc
expect "vlpreport: --images: '-1' is not a whole number" vlpreport run --images -1
expect "vlpsegment: --topk: 'x' is not a whole number" vlpsegment run images --classes c.txt --topk x
expect "vlpsegment: --threshold: 'nan' is not a number" vlpsegment run images --classes c.txt --threshold nan
expect "vlpvqa: --seed: '1e3' is not a whole number" vlpvqa run image.png "what?" --seed 1e3
# The decoding options of vlpcaption, vlpvqa and vlpfilter (src/cli/decode_args.h).
expect "vlpcaption: --beams: '2.5' is not a whole number in \[1, 16\]" vlpcaption run data --beams 2.5
expect "vlpvqa: --max-length: '1' is not a whole number in \[2, 1000000\]" vlpvqa run image.png "what?" --max-length 1
expect "vlpfilter: --top-p: '0' is not a number in \[1e-09, 1\]" vlpfilter run data -o c.tsv --top-p 0
expect "vlpcaption: --method sampling: greedy, beam or nucleus" vlpcaption run data --method sampling
expect "vlptok: --context-length: '5000000' is not a whole number in \[2, 1048576\]" vlptok encode --merges m --context-length 5000000
expect "vlpbench: --steps: '0' is not a whole number in \[1, 1000000\]" vlpbench --config A --steps 0
expect "vlpdemo: --lr: 'inf' is not a number" vlpdemo --lr inf
expect "vlpdata: --batch: '0' is not a whole number" vlpdata bench data --batch 0
expect "vlpdata: --alpha-threshold: '256' is not a whole number in \[1, 255\]" vlpdata scenes spec.tsv -o out --alpha-threshold 256
exit $failed
