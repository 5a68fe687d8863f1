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
for t in test_engine test_kernels test_optim test_gradcheck test_tokenizer test_config test_eval; do
  echo "memcheck: $t"
  CK_FORK=no "${memcheck[@]}" "build/tests/$t" >/dev/null || status=1
done

echo "memcheck: vlptrain, 20 steps"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
build/vlpdata pack /usr/share/tuxpaint/stamps -o "$dir/stamps.h5" --size 24 >/dev/null 2>&1
cat > "$dir/tiny.ini" <<INI
[model]
embed_dim = 32
image_size = 16
patch_size = 4
vision_width = 48
vision_layers = 2
vision_heads = 4
context_length = 16
text_width = 48
text_layers = 2
text_heads = 4
[data]
train = stamps.h5
vocab_size = 600
[train]
batch_size = 8
steps = 20
[checkpoint]
every = 10
[log]
dir = $dir/run
INI
"${memcheck[@]}" build/vlptrain "$dir/tiny.ini" >/dev/null || status=1
exit $status
