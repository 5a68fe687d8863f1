# Sourced by the training tests: a temporary folder with a small packed
# shard of the Tux Paint stamps and a tiny CLIP recipe, tiny.ini.
#   needs: $build (the build folder)
dir=$(mktemp -d)
trap 'pkill -9 -f "$dir/" 2>/dev/null || true; rm -rf "$dir"' EXIT
[ -d /usr/share/tuxpaint/stamps ] || { echo "tuxpaint-stamps-default is not installed"; exit 1; }
"$build/vlpdata" pack /usr/share/tuxpaint/stamps -o "$dir/stamps.h5" --size 24 >/dev/null 2>&1
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
batch_size = 16
steps = 40

[optim]
lr = 1e-3
warmup = 5

[checkpoint]
every = 20

[log]
dir = $dir/run
INI
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
