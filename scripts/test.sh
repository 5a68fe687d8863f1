#!/usr/bin/env bash
# Sets vlp up (scripts/setup.sh) and runs every test with ctest.
#   scripts/test.sh              the release build, every test
#   scripts/test.sh --sanitize   the ASan + UBSan build, its unit tests (the
#                                Check suites), as CI runs it
#   scripts/test.sh --sanitize-all   the same build, every test: the unit
#                                tests as above, then the rest (mpirun, the
#                                training scripts, the benchmark's smoke test)
#                                without LeakSanitizer, as Open MPI's own
#                                allocations would drown them in leak reports
#                                (valgrind covers a training run's leaks:
#                                scripts/memcheck.sh). About 3x --sanitize.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
if [ "$mode" = --sanitize-all ]; then set -- --sanitize; fi
scripts/setup.sh "$@"
if [ "$mode" = --sanitize ]; then
  ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L unit
elif [ "$mode" = --sanitize-all ]; then
  ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L unit
  ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -LE unit
else
  ctest --test-dir build --output-on-failure -j "$(nproc)"
fi
