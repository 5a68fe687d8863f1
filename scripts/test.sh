#!/usr/bin/env bash
# Sets vlp up (scripts/setup.sh) and runs every test with ctest.
#   scripts/test.sh              the release build, every test
#   scripts/test.sh --sanitize   the ASan + UBSan build, its unit tests (the
#                                Check suites; Open MPI's own allocations
#                                would drown the whole-program tests in reports)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
if [ "${1:-}" = --sanitize ]; then
  ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)" -L unit
else
  ctest --test-dir build --output-on-failure -j "$(nproc)"
fi
