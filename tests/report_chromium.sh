#!/usr/bin/env bash
# vlpreport's page renders in headless Chromium: a short training run with a
# validation set, its report, a screenshot, and the rendered DOM must hold
# charts that drew data and validation images with captions.
#   report_chromium.sh BUILD [SCREENSHOT.png]
set -euo pipefail
build=$1 shot=${2:-}
command -v chromium >/dev/null || { echo "chromium is not installed"; exit 77; }
source "$(dirname "$0")/train_fixture.sh"
sed -i 's/^steps = 40/steps = 30/; s/^every = 20/every = 0/' "$dir/tiny.ini"
cat >> "$dir/tiny.ini" <<INI

[eval]
retrieval = pair
every = 10
INI
sed -i 's|^train = stamps.h5|train = stamps.h5\nval = stamps.h5|' "$dir/tiny.ini"
"$build/vlptrain" "$dir/tiny.ini" > "$dir/train.log" 2>&1
"$build/vlpreport" "$dir/run" --images 12
browser() {
  timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$dir/chrome" --window-size=1200,2400 "$@" 2>/dev/null
}
browser --dump-dom "file://$dir/run/report.html" > "$dir/dom.html"
browser --screenshot="$dir/report.png" "file://$dir/run/report.html" >/dev/null
charts=$(grep -o 'class="chart" data-points="[0-9]*"' "$dir/dom.html" | grep -c -v 'data-points="[01]"' || true)
lines=$(grep -o '<polyline[^>]*points="[0-9][^"]*"' "$dir/dom.html" | wc -l)
images=$(grep -o '<img [^>]*src="data:image/png;base64,' "$dir/dom.html" | wc -l)
size=$(stat -c %s "$dir/report.png")
echo "rendered: $charts charts with data, $lines drawn lines, $images images; screenshot $size bytes"
[ -n "$shot" ] && cp "$dir/report.png" "$shot"
# loss, lr, logit_scale, grad_norm, samples_per_s and six retrieval metrics
[ "$charts" -ge 10 ] && [ "$lines" -ge 10 ] && [ "$images" -ge 12 ] && [ "$size" -gt 20000 ] || {
  echo "the report did not render its charts and images"; exit 1; }
