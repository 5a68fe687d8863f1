# Sourced by the BLIP program tests, first: a temporary folder $dir (gone at
# exit), skipped (77) without the Tux Paint stamps, one OpenBLAS thread; and
# tiny_blip_ini FILE TRAIN BATCH, which writes a tiny BLIP recipe (10 steps)
# that trains on TRAIN into $dir/run; a test appends any section of its own.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -d /usr/share/tuxpaint/stamps ] || { echo "tuxpaint-stamps-default is not installed"; exit 77; }
export OPENBLAS_NUM_THREADS=1

tiny_blip_ini() {
  cat > "$1" <<INI
[model]
kind = blip
embed_dim = 16
image_size = 16
patch_size = 8
vision_width = 32
vision_layers = 1
vision_heads = 2
context_length = 16
text_width = 32
text_layers = 1
text_heads = 2

[data]
train = $2
vocab_size = 600

[train]
batch_size = $3
steps = 10

[log]
dir = $dir/run
INI
}
