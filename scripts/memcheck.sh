#!/usr/bin/env bash
# Runs the unit-test binaries of build/ under valgrind memcheck, in one
# process each (CK_FORK=no), and fails on any error or leak. OpenMP threads
# wait passively: valgrind runs one thread at a time, and a spinning thread
# would hold it for its whole time slice.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for t in test_engine test_kernels test_optim test_gradcheck test_tokenizer test_config test_eval; do
  echo "memcheck: $t"
  CK_FORK=no OMP_WAIT_POLICY=PASSIVE valgrind -q --suppressions=scripts/valgrind.supp --error-exitcode=3 --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible "build/tests/$t" >/dev/null || status=1
done
exit $status
