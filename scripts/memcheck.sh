#!/usr/bin/env bash
# Runs the unit-test binaries of build/ under valgrind memcheck, in one
# process each (CK_FORK=no), then a 20-step training run of a tiny CLIP on
# the Tux Paint stamps (data loader threads, checkpoints, the model file),
# and fails on any error or leak. OpenMP threads wait passively: valgrind
# runs one thread at a time, and a spinning thread would hold it for its
# whole time slice.
set -euo pipefail
cd "$(dirname "$0")/.."
memcheck=(valgrind -q --suppressions=scripts/valgrind.supp --error-exitcode=3 --leak-check=full
          --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible)
export OMP_WAIT_POLICY=PASSIVE
status=0
for t in test_engine test_kernels test_optim test_gradcheck test_tokenizer test_config test_eval test_image test_pretrained; do
  echo "memcheck: $t"
  CK_FORK=no "${memcheck[@]}" "build/tests/$t" >/dev/null || status=1
done

echo "memcheck: vlptrain, 20 steps"
build=build
source tests/train_fixture.sh # $dir/tiny.ini: a tiny CLIP on the Tux Paint stamps
"${memcheck[@]}" build/vlptrain "$dir/tiny.ini" --set train.steps=20 --set train.batch_size=8 \
  --set checkpoint.every=10 >/dev/null || status=1
exit $status
