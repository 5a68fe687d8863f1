#!/usr/bin/env bash
# Pretrained CLIPs in and out, against the PyTorch reference of
# scripts/pretrained_ref.py (our own, written from the formats' documents):
# it writes random-weight models as OpenCLIP and Hugging Face folders and
# embeds real images (PIL + torchvision preprocessing) and real captions
# (CLIP's tokenizer rules); vlpimport + vlpembed must give the same
# embeddings, vlp's own preprocessing and tokenizer included.
#   pretrained.sh SRC BUILD CASE
# CASE: open_clip_f32, open_clip_f16 (QuickGELU), hf (with legacy
# position_ids), vit_b_32 (the folder, and the bare .safetensors with its
# shapes read off), export (vlpexport's folders load in the reference and
# import back bit for bit), finetune ([train] init = an imported folder
# trains and resumes exactly). Skipped (77) without the Python packages.
set -euo pipefail
src=$1 build=$2 case=$3
py=/usr/bin/python3
$py -c 'import torch, h5py, PIL, torchvision, regex' 2>/dev/null ||
  { echo "skipped: needs python3-torch, python3-h5py, python3-pil, python3-torchvision, python3-regex"; exit 77; }
[ -d "$src/data/tuxpaint/images" ] && [ -d "$src/data/emoji/google" ] && [ -d "$src/data/fmnist/test" ] ||
  { echo "data/ is not prepared: run scripts/data/all.sh"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ref() { $py "$src/scripts/pretrained_ref.py" "$@"; }
vocab=$src/tests/data/clip/bpe_simple_vocab_16e6.txt.gz

# Images: clip art with transparency (Tux Paint, emoji), grey photos of
# clothes (Fashion-MNIST), composite scenes, JPEG photographs (Debian's
# tuxpaint-data); every size and mode they come in.
{
  find /usr/share/tuxpaint/templates -name '*.jpg' | sort | sed -n 1,3p
  find "$src/data/tuxpaint/images" -name '*.png' | sort | sed -n 1,6p
  find "$src/data/emoji/google" -name '*.png' | sort | sed -n 1,4p
  find "$src/data/fmnist/test" -name '*.png' | sort | sed -n 1,3p
  find "$src/data/scenes/val" -name '*.png' | sort | sed -n 1,2p
} > "$dir/images.txt"
{ printf 'filepath\ttitle\n'; sed 's/$/\tx/' "$dir/images.txt"; } > "$dir/images.tsv"
# Captions: real ones of the datasets, and text that CLIP's cleaning changes.
{
  cut -f2 "$src/data/emoji/google_val.tsv" | sed -n 2,21p
  cut -f2 "$src/data/tuxpaint/all.tsv" | sed -n 2,11p
  printf '%s\n' 'Baden-W&amp;uuml;rttemberg' 'A   photo&nbsp;of  a CAT' '&notit; &#x80; &#128512;' \
    "it's a dog, isn't it?" 'a very long caption that goes on and on about a small red bicycle leaning on a green fence near the sea'
} > "$dir/texts.txt"

# vlp's embeddings of the images and texts by run folder $1, into $2 in the
# reference's layout (image_features, text_features).
vlp_embed() {
  "$build/vlpembed" "$1" "$dir/images.tsv" -o "$dir/vimg.h5" > /dev/null
  "$build/vlpembed" "$1" --texts "$dir/texts.txt" -o "$dir/vtxt.h5" > /dev/null
  $py - "$dir/vimg.h5" "$dir/vtxt.h5" "$2" <<'EOF'
import sys, h5py
img, txt, out = sys.argv[1:]
with h5py.File(out, "w") as f:
    f["image_features"] = h5py.File(img, "r")["features"][:]
    f["text_features"] = h5py.File(txt, "r")["features"][:]
EOF
}

# The reference's embeddings of folder $1 against vlp's of run folder $2.
check() {
  local model=$1 run=$2 min=${3:-0.99999999} # the issue asks 0.99999; F16 rounding alone is ~1e-7
  ref embed "$model" --images "$dir/images.txt" --texts "$dir/texts.txt" -o "$dir/ref.h5" > /dev/null
  vlp_embed "$run" "$dir/vlp.h5"
  ref compare "$dir/ref.h5" "$dir/vlp.h5" --min-cos "$min"
}

same_weights() { h5diff "$1/model.h5" "$2/model.h5" && echo "same weights: $1 $2"; }

case $case in
  open_clip_f32)
    ref write open_clip "$dir/oc" --arch tiny
    "$build/vlpimport" "$dir/oc" -o "$dir/run" --vocab "$vocab"
    check "$dir/oc" "$dir/run" ;;
  open_clip_f16)
    ref write open_clip "$dir/oc" --arch tiny-quickgelu --dtype F16 --seed 1
    "$build/vlpimport" "$dir/oc" -o "$dir/run" --vocab "$vocab"
    grep -q '^activation = quick_gelu$' "$dir/run/config.ini" || { echo "not QuickGELU"; exit 1; }
    check "$dir/oc" "$dir/run" ;;
  hf)
    ref write hf "$dir/hf" --arch tiny --dtype BF16 --seed 2 --legacy-position-ids
    "$build/vlpimport" "$dir/hf" -o "$dir/run" # its merges.txt, no --vocab
    check "$dir/hf" "$dir/run" ;;
  vit_b_32)
    ref write open_clip "$dir/oc" --arch ViT-B-32
    "$build/vlpimport" "$dir/oc" -o "$dir/run" --vocab "$vocab"
    # the bare file: OpenAI's build_model reading of the shapes, QuickGELU
    "$build/vlpimport" "$dir/oc/open_clip_model.safetensors" -o "$dir/bare" --vocab "$vocab" |
      grep 'inferred from the shapes: image 224, patch 32, vision 768 x 12 layers, text 512 x 12 layers, embedding 512, context 77, vocabulary 49408; QuickGELU'
    same_weights "$dir/run" "$dir/bare"
    diff <(grep -v '^preset' "$dir/run/config.ini") <(grep -v '^preset' "$dir/bare/config.ini")
    check "$dir/oc" "$dir/run" ;;
  export)
    ref write open_clip "$dir/oc" --arch tiny-quickgelu --seed 3
    "$build/vlpimport" "$dir/oc" -o "$dir/run" --vocab "$vocab"
    for format in open_clip hf; do
      "$build/vlpexport" "$dir/run" -o "$dir/out_$format" --format "$format"
      # the reference loads the exported folder strictly and embeds as vlp does
      check "$dir/out_$format" "$dir/run"
      "$build/vlpimport" "$dir/out_$format" -o "$dir/back_$format"
      same_weights "$dir/run" "$dir/back_$format"
    done ;;
  finetune)
    ref write hf "$dir/hf" --arch tiny --seed 4
    "$build/vlpimport" "$dir/hf" -o "$dir/pre"
    cat > "$dir/ft.ini" <<EOF
[data]
train = $src/data/tuxpaint/all.tsv
[train]
init = $dir/pre
batch_size = 8
steps = 6
lock_image = true
[optim]
warmup = 2
[checkpoint]
every = 3
[log]
dir = $dir/whole
EOF
    "$build/vlptrain" "$dir/ft.ini" > "$dir/whole.log" 2>&1 || { cat "$dir/whole.log"; exit 1; }
    grep -q '^image_size = 64$' "$dir/whole/config.ini" || { echo "the init model's architecture was not taken"; exit 1; }
    grep -q '^alpha = pil$' "$dir/whole/config.ini" || { echo "the init model's preprocessing was not taken"; exit 1; }
    # the run's step-3 checkpoint in a fresh folder, resumed to step 6
    mkdir -p "$dir/resumed/checkpoints"
    cp "$dir/whole/checkpoints/step_0000000003.h5" "$dir/resumed/checkpoints/"
    "$build/vlptrain" "$dir/ft.ini" --set "log.dir=$dir/resumed" --resume latest > "$dir/resumed.log" 2>&1 ||
      { cat "$dir/resumed.log"; exit 1; }
    losses() { sed -E 's/.*"step": ([0-9]+).*"loss": ([^,]+),.*/\1 \2/' "$1/metrics.jsonl" | tail -3; }
    diff <(losses "$dir/whole") <(losses "$dir/resumed")
    same_weights "$dir/whole" "$dir/resumed"
    # a [model] key that disagrees with the init model stops the run, naming it
    if "$build/vlptrain" "$dir/ft.ini" --set model.vision_width=96 --set "log.dir=$dir/bad" > "$dir/bad.log" 2>&1; then
      echo "a disagreeing [model] key was accepted"; exit 1
    fi
    grep -q 'model.vision_width = 96 disagrees with 64 of the \[train\] init model' "$dir/bad.log" ||
      { cat "$dir/bad.log"; exit 1; }
    echo "fine-tuned from an imported model: 6 steps, resumed at 3 bit for bit" ;;
  *) echo "unknown case $case" >&2; exit 2 ;;
esac
