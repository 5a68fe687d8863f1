#!/usr/bin/env bash
# vlpdata scenes and vlpsegment end to end on a few real scenes: random
# GroupViT and CLIP from their configs (no trained model needed), the label
# maps, overlays and index written, and miou.json holding the four methods
# with every number in [0, 1], the oracle foreground's background IoU
# exactly 1 (it paints the true foreground) and the oracle groups' pixel
# accuracy at least GroupViT's (both name each group once; the oracle by
# its majority true label), with either --naming; a bad --naming refused.
# Skipped (77) without the prepared datasets or tuxpaint-data's photographs.
#   tests/segment_cli.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
if ! [ -f "$src/data/tuxpaint/.prepared" ] || ! [ -f "$src/data/emoji/.prepared" ] ||
   ! [ -d /usr/share/tuxpaint/templates ]; then
  echo "data/ not prepared or no tuxpaint-data: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/vlpdata" scenes "$src/scripts/data/scene_classes.tsv" -o "$tmp/scenes" --root "$src/data" \
  --backgrounds /usr/share/tuxpaint/templates --size 64 --train 0 --val 6 --unseen 3
# a tokenizer learnt from the scenes' captions and prompts
tok=$tmp/merges.txt
cut -f2 "$tmp/scenes/val.tsv" "$tmp/scenes/unseen.tsv" | cat - "$tmp/scenes/templates.txt" >"$tmp/captions.txt"
"$build/vlptok" train --vocab-size 600 "$tmp/captions.txt" -o "$tok"
# the unseen split names each group by its pixels alone
for split in val unseen; do
  naming=groups; [ $split = unseen ] && naming=masked
  "$build/vlpsegment" "$src/configs/groupvit_tiny.ini" "$tmp/scenes/$split.tsv" --tokenizer "$tok" \
    --classes "$tmp/scenes/classes.txt" --templates "$tmp/scenes/templates.txt" --naming $naming \
    --clip "$src/configs/clip_tiny.ini" --threshold 0.1 --out "$tmp/out_$split" --overlays 2
done
if "$build/vlpsegment" "$src/configs/groupvit_tiny.ini" "$tmp/scenes/val.tsv" --tokenizer "$tok" \
     --classes "$tmp/scenes/classes.txt" --naming pixels 2>"$tmp/err"; then
  echo "--naming pixels was accepted"; exit 1
fi
grep -q -- "--naming is groups or masked" "$tmp/err"
/usr/bin/python3 - "$tmp" <<'PY'
import json, os, sys
tmp = sys.argv[1]
for split, n in (("val", 6), ("unseen", 3)):
    out = f"{tmp}/out_{split}"
    r = json.load(open(f"{out}/miou.json"))
    assert r["n_images"] == n, r["n_images"]
    assert r["naming"].startswith("groups" if split == "val" else "masked"), r["naming"]
    assert sorted(r["methods"]) == ["dense_clip", "groupvit", "oracle_foreground", "oracle_groups"], r["methods"].keys()
    for name, m in r["methods"].items():
        for v in [m["miou"], m["pixel_accuracy"], *m["per_class_iou"].values()]:
            assert 0 <= v <= 1, (name, v)
        assert "background" in m["per_class_iou"], name
    # the oracle paints exactly the true foreground: background IoU 1
    assert r["methods"]["oracle_foreground"]["per_class_iou"]["background"] == 1.0
    m = r["methods"]
    assert m["oracle_groups"]["pixel_accuracy"] >= m["groupvit"]["pixel_accuracy"], m
    labels = sorted(os.listdir(f"{out}/labels"))
    assert labels == [f"{i:06d}.png" for i in range(n)], labels
    assert sorted(os.listdir(f"{out}/overlays")) == ["000000.png", "000001.png"]
    for f in ("labels/000000.png", "overlays/000001.png"):
        assert open(f"{out}/{f}", "rb").read(8) == b"\x89PNG\r\n\x1a\n", f
    rows = open(f"{out}/index.tsv").read().splitlines()
    assert len(rows) == n + 1 and rows[1].endswith(f"{split}/images/000000.png"), rows[:2]
print("segment_cli: vlpsegment wrote label maps, overlays, index and mIoU of 4 methods for val and unseen")
PY
