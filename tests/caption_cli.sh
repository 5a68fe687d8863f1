#!/usr/bin/env bash
# vlpcaption and vlpvqa end to end on a tiny BLIP trained for a few steps on
# the Tux Paint stamps (the training tests' fixture data): TSV and JSON
# outputs hold one caption per image, --score's metrics are in range, a
# seeded nucleus run repeats itself, vlpvqa answers, and bad options fail
# with a message.
#   caption_cli.sh BUILD
set -euo pipefail
build=$1
source "$(dirname "$0")/tiny_blip.sh" # $dir, the skip without stamps, tiny_blip_ini
"$build/vlpdata" pack /usr/share/tuxpaint/stamps -o "$dir/stamps.h5" --size 24 >/dev/null 2>&1
tiny_blip_ini "$dir/blip.ini" stamps.h5 16
printf '\n[blip]\nprompt = a picture of\n' >> "$dir/blip.ini"
"$build/vlptrain" "$dir/blip.ini" >/dev/null
n=$(/usr/bin/python3 -c 'import h5py,sys; f=h5py.File(sys.argv[1]); print(len(f["captions"]) if "captions" in f else -1)' "$dir/stamps.h5" 2>/dev/null || echo -1)

"$build/vlpcaption" "$dir/run" "$dir/stamps.h5" -o "$dir/caps.tsv" --method greedy --batch 64
"$build/vlpcaption" "$dir/run" "$dir/stamps.h5" -o "$dir/caps.json" --score --beams 2 --batch 64
for seed in 1 1 2; do
  "$build/vlpcaption" "$dir/run" "$dir/stamps.h5" -o "$dir/nucleus_$seed.$RANDOM.tsv" --method nucleus \
    --top-p 0.9 --seed $seed --batch 64 >/dev/null
done
/usr/bin/python3 - "$dir" "$n" <<'PY'
import glob, json, sys
d, n = sys.argv[1], int(sys.argv[2])
rows = open(f"{d}/caps.tsv").read().splitlines()
assert rows[0] == "image\tcaption\tscore", rows[0]
assert all(len(r.split("\t")) == 3 for r in rows[1:]), "a TSV row without 3 columns"
j = json.load(open(f"{d}/caps.json"))
caps, m = j["captions"], j["metrics"]
assert len(caps) == len(rows) - 1 and (n < 0 or len(caps) == n), (len(caps), len(rows) - 1, n)
assert m["images"] == len(caps)
assert all(0 <= m[k] <= 1 for k in ("bleu1", "bleu2", "bleu3", "bleu4")) and 0 <= m["cider_d"] <= 100, m
runs = {}
for path in glob.glob(f"{d}/nucleus_*.tsv"):
    runs.setdefault(path.split("_")[-1].split(".")[0], []).append(open(path).read())
assert len(runs["1"]) == 2 and runs["1"][0] == runs["1"][1], "a seeded nucleus run changed"
assert runs["2"][0] != runs["1"][0], "another seed drew the same captions"
print(f"caption_cli: {len(caps)} captions; BLEU-4 {m['bleu4']:.4f}, CIDEr-D {m['cider_d']:.4f}; nucleus runs repeat")
PY
stamps=(/usr/share/tuxpaint/stamps/animals/*/*.png) # not ls | head: SIGPIPE fails the pipe
img=${stamps[0]}
"$build/vlpvqa" "$dir/run" "$img" "what?" "colour?" --template "q: {}" | tee "$dir/vqa.txt"
[ "$(grep -c '^A: ' "$dir/vqa.txt")" = 2 ]
if "$build/vlpcaption" "$dir/run" "$dir/stamps.h5" --method sampling 2>"$dir/err"; then exit 1; fi
grep -q "greedy, beam or nucleus" "$dir/err"
if "$build/vlpvqa" "$dir/run" "$img" "q" --max-length 40 2>"$dir/err"; then exit 1; fi
grep -q "fit the context of 16" "$dir/err"
echo "caption_cli: ok"
