#!/usr/bin/env bash
# vlpembed and vlpsearch end to end on the Tux Paint stamps with the
# fixture's tiny CLIP (40 steps): the index holds every stamp and no
# temporary file is left; a stamp queried by its own image comes back first
# with cosine 1, also with a BLIP and a GroupViT (3 steps each); a text query returns k results, best first, and an HTML
# gallery with their images; a second vlpembed replaces the index whole;
# unreadable images are left out of the index and of vlpeval, and counted.
#   search_cli.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/train_fixture.sh"
"$build/vlptrain" "$dir/tiny.ini" > "$dir/train.log" 2>&1 || { tail -5 "$dir/train.log"; exit 1; }
stamps=/usr/share/tuxpaint/stamps
# rows of DATASET in an HDF5 file
rows() { h5dump -H -d "$2" "$1" | sed -n 's/.*SIMPLE { ( \([0-9]*\), .*/\1/p'; }
n=$(rows "$dir/stamps.h5" images) # the captioned stamps
"$build/vlpembed" "$dir/run" "$stamps" -o "$dir/index.h5" > "$dir/embed.log" 2>&1
test ! -e "$dir/index.h5.tmp"
[ "$(rows "$dir/index.h5" features)" -eq "$n" ] || { echo "index: $(rows "$dir/index.h5" features) rows, $n stamps"; exit 1; }

# An image of the index, queried by itself: first, at cosine 1.
query=$(find "$stamps" -name '*.png' | sort | while read -r f; do [ -f "${f%.png}.txt" ] && echo "$f"; done | sed -n 7p)
finds_itself() { # finds_itself RUN INDEX
  "$build/vlpsearch" "$1" "$2" --image "$query" -k 3 > "$dir/image.txt"
  cat "$dir/image.txt"
  /usr/bin/python3 - "$dir/image.txt" "$query" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1]) if re.match(r"\s*1[\s.:]", l)]
assert lines, "no first result"
first = lines[0]
assert sys.argv[2].split("/")[-1] in first, first
score = float(re.findall(r"[-+]?\d*\.\d+", first)[0])
assert abs(score - 1.0) < 1e-3, score
PY
}
finds_itself "$dir/run" "$dir/index.h5"

# The other kinds (BLIP: its ITC features), a few steps each.
for kind in blip groupvit; do
  "$build/vlptrain" "$dir/tiny.ini" --set model.kind=$kind --set train.steps=3 --set "log.dir=$dir/$kind" \
    > "$dir/$kind.log" 2>&1 || { tail -5 "$dir/$kind.log"; exit 1; }
  "$build/vlpembed" "$dir/$kind" "$stamps" -o "$dir/$kind.h5" > /dev/null
  finds_itself "$dir/$kind" "$dir/$kind.h5"
done

# A text query: k results, scores not increasing, and a gallery.
"$build/vlpsearch" "$dir/run" "$dir/index.h5" --text "a red apple" -k 5 --html "$dir/gallery.html" > "$dir/text.txt"
cat "$dir/text.txt"
/usr/bin/python3 - "$dir/text.txt" "$dir/gallery.html" <<'PY'
import re, sys
scores = [float(m) for m in re.findall(r"^\s*\d+[\s.:]+([-+]?\d*\.\d+)", open(sys.argv[1]).read(), re.M)]
assert len(scores) == 5, scores
assert all(a >= b for a, b in zip(scores, scores[1:])), scores
html = open(sys.argv[2]).read()
assert html.count("<img") >= 5, html.count("<img")
PY

# Embedding again replaces the index whole (written aside, then renamed).
"$build/vlpembed" "$dir/run" "$dir/stamps.h5" -o "$dir/index.h5" > /dev/null
test ! -e "$dir/index.h5.tmp"
[ "$(rows "$dir/index.h5" features)" -eq "$n" ] || { echo "index: $(rows "$dir/index.h5" features) rows, $n in the shard"; exit 1; }

# Unreadable images are in no index and no metric: 5 pairs, 3 of them
# images that cannot be read (missing, not an image, empty).
mkdir -p "$dir/bad"
good=$(find "$stamps" -name '*.png' | sort | sed -n 1,2p)
printf 'not a png' > "$dir/bad/text.png"
: > "$dir/bad/empty.png"
{
  printf 'filepath\ttitle\n'
  i=0
  for f in $good; do i=$((i + 1)); printf '%s\tgood stamp %d\n' "$f" "$i"; done
  printf '%s\tmissing\n%s\tnot an image\n%s\tempty\n' "$dir/bad/none.png" "$dir/bad/text.png" "$dir/bad/empty.png"
} > "$dir/bad/pairs.tsv"
"$build/vlpembed" "$dir/run" "$dir/bad/pairs.tsv" -o "$dir/bad/index.h5" > "$dir/bad/embed.log" 2>&1
grep -q 'vlpembed: 2 images of .* embedded into .*, 3 unreadable skipped' "$dir/bad/embed.log" ||
  { cat "$dir/bad/embed.log"; exit 1; }
[ "$(rows "$dir/bad/index.h5" features)" -eq 2 ] || { echo "the index holds unreadable images"; exit 1; }
/usr/bin/python3 -c 'import h5py, sys; p = [x.decode() for x in h5py.File(sys.argv[1])["paths"][:]]
assert len(p) == 2 and all("/stamps/" in x for x in p), p' "$dir/bad/index.h5"
[ "$(h5dump -d unreadable "$dir/bad/index.h5" | sed -n 's/.*(0): \([0-9]*\).*/\1/p')" = 3 ] ||
  { echo "the index does not count the unreadable images"; exit 1; }
"$build/vlpeval" "$dir/run" "$dir/bad/pairs.tsv" --retrieval --json "$dir/bad/eval.json" > "$dir/bad/eval.log" 2>&1
grep -q '^3 of 5 images unreadable: left out of every number below' "$dir/bad/eval.log" &&
  grep -q '^retrieval over 2 pairs' "$dir/bad/eval.log" || { cat "$dir/bad/eval.log"; exit 1; }
/usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); assert (j["samples"], j["unreadable"]) == (2, 3), j' \
  "$dir/bad/eval.json"
echo "unreadable images: 3 of 5 left out of the index and of retrieval"
echo "search_cli: ok"
