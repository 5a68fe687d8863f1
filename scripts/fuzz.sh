#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/; clang, ASan + UBSan) in
# build-fuzz/ and runs each for SECONDS (default 600), then prints per
# harness: inputs run, inputs per second, coverage (edges, features),
# corpus size and crashes.
#   scripts/fuzz.sh [SECONDS] [NAME...]     names: image manifest config tokenizer checkpoint safetensors
#   VLP_FUZZ_JOBS=2 scripts/fuzz.sh 600     two harnesses at a time (one core each)
#   VLP_FUZZ_DAMAGE=1 scripts/fuzz.sh 600 checkpoint
#                                           also damaged HDF5 bytes, which crash
#                                           libhdf5 1.10.8 itself (tests/fuzz/known/)
# Each harness's working corpus is build-fuzz/corpus/<name>, seeded from
# tests/fuzz/corpus/<name>; its log is build-fuzz/logs/<name>.log. An input
# that crashes (or leaks, hangs, runs out of memory) stops that harness and
# is copied into tests/fuzz/corpus/<name>/ as crash-*, where ctest's
# fuzz_replay.<name> replays it with the ordinary build from then on: fix
# the bug, keep the file. Exit status 1 if any harness found something.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(image manifest config tokenizer checkpoint safetensors)
jobs=${VLP_FUZZ_JOBS:-1}

# Largest input each harness is given: room above the seeds, small enough
# that the parsers' own limits (pixels, line lengths) are what is tested.
declare -A max_len=([image]=65536 [manifest]=8192 [config]=8192 [tokenizer]=16384 [checkpoint]=131072 [safetensors]=16384)

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (apt-get install clang)" >&2; exit 2; }
targets=()
for n in "${names[@]}"; do
  [ -n "${max_len[$n]:-}" ] || { echo "fuzz.sh: no harness '$n' (tests/fuzz/fuzz_$n.c)" >&2; exit 2; }
  targets+=("fuzz_$n")
done
CC=clang cmake -S . -B build-fuzz -DVLP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

mkdir -p build-fuzz/logs build-fuzz/tmp
# The harnesses' temporary folders ($TMPDIR/vlp-fuzz-<name>-*): a crash
# leaves its one behind, here rather than in /tmp.
export TMPDIR=$PWD/build-fuzz/tmp
run_one() {
  local n=$1 corpus=build-fuzz/corpus/$1 artifacts=build-fuzz/artifacts/$1
  mkdir -p "$corpus" "$artifacts"
  cp -n tests/fuzz/corpus/"$n"/* "$corpus"/ 2>/dev/null || true
  rm -f "$artifacts"/*
  # -timeout: an input running 30 s is a hang; the RSS limit is libFuzzer's default, said aloud.
  # A damaged HDF5 file can make libhdf5 ask for 2^64 bytes, and it copes
  # with the NULL it gets outside the sanitizers: so it does here.
  # It also keeps a few blocks then: tests/fuzz/lsan.supp.
  ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1} LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp \
    build-fuzz/tests/fuzz/fuzz_"$n" "$corpus" -max_total_time="$seconds" -max_len="${max_len[$n]}" \
    -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts"/ \
    >build-fuzz/logs/"$n".log 2>&1 || true
}

running=0
for n in "${names[@]}"; do
  echo "fuzz.sh: $n for ${seconds}s (build-fuzz/logs/$n.log)"
  run_one "$n" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
for n in "${names[@]}"; do rm -rf build-fuzz/tmp/vlp-fuzz-"$n"-*; done

status=0
printf '\n%-11s %12s %9s %8s %8s %8s  %s\n' harness inputs "inputs/s" edges features corpus crashes
for n in "${names[@]}"; do
  log=build-fuzz/logs/$n.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  corpus=$(find build-fuzz/corpus/"$n" -type f | wc -l)
  found=()
  for f in build-fuzz/artifacts/"$n"/*; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    case $base in
      crash-*) dest=$base ;;
      leak-* | timeout-* | oom-*) dest=crash-$base ;;
      *) continue ;; # slow-unit-*: slow, not wrong
    esac
    cp "$f" tests/fuzz/corpus/"$n"/"$dest"
    found+=("$dest")
  done
  [ ${#found[@]} -eq 0 ] || status=1
  printf '%-11s %12s %9s %8s %8s %8s  %s\n' "$n" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus" \
    "${#found[@]}${found[*]:+ (tests/fuzz/corpus/$n/: ${found[*]})}"
done
exit $status
