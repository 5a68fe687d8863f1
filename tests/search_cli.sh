#!/usr/bin/env bash
# vlpembed and vlpsearch end to end on the Tux Paint stamps with the
# fixture's tiny CLIP (40 steps): the index holds every stamp and no
# temporary file is left; a stamp queried by its own image comes back first
# with cosine 1, also with a BLIP and a GroupViT (3 steps each); a text query returns k results, best first, and an HTML
# gallery with their images; a second vlpembed replaces the index whole.
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
echo "search_cli: ok"
