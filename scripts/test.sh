#!/usr/bin/env bash
# Sets vlp up (scripts/setup.sh) and runs every test with ctest.
#   scripts/test.sh              the release build
#   scripts/test.sh --sanitize   the ASan + UBSan build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
build=build
[ "${1:-}" = --sanitize ] && build=build-sanitize
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
