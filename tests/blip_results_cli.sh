#!/usr/bin/env bash
# vlpeval --rerank and vlpcaption --nearest end to end on a tiny BLIP trained
# for a few steps on 300 Tux Paint stamps (caption_cli.sh's fixture):
# re-ranking ITC's top K leaves R@j for j >= K at ITC's values (the same
# candidates, re-ordered) and top 1 leaves everything at ITC's; the
# nearest-neighbour baseline captions a training set with its own captions
# (each image is its own nearest neighbour); bad K fails with a message.
#   blip_results_cli.sh BUILD
set -euo pipefail
build=$1
source "$(dirname "$0")/tiny_blip.sh" # $dir, the skip without stamps, tiny_blip_ini
# 300 stamps, each caption unique (numbered first, as the context is short):
# equal captions would tie in ITC, which counts a tie in the query's favour.
/usr/bin/python3 - "$dir/stamps.tsv" <<'PY'
import glob, os, sys
paths = sorted(glob.glob("/usr/share/tuxpaint/stamps/**/*.png", recursive=True))[:300]
with open(sys.argv[1], "w") as f:
    f.write("filepath\ttitle\n")
    for i, p in enumerate(paths):
        name = os.path.splitext(os.path.basename(p))[0].replace("_", " ").replace("-", " ")
        f.write(f"{p}\t{i} {name}\n")
PY
"$build/vlpdata" pack "$dir/stamps.tsv" -o "$dir/stamps.h5" --size 24 >/dev/null 2>&1
tiny_blip_ini "$dir/blip.ini" stamps.h5 16
"$build/vlptrain" "$dir/blip.ini" >/dev/null
for k in 1 5; do
  "$build/vlpeval" "$dir/run" "$dir/stamps.h5" --retrieval --rerank $k --json "$dir/rerank_$k.json" >/dev/null
done
"$build/vlpcaption" "$dir/run" "$dir/stamps.h5" --nearest "$dir/stamps.h5" --score -o "$dir/nearest.json" >/dev/null
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
for k in (1, 5):
    r = json.load(open(f"{d}/rerank_{k}.json"))["retrieval"]
    rr = r["rerank"]
    assert rr["k"] == k, rr
    for way in ("i2t", "t2i"):
        for j in (1, 5, 10):
            key = f"{way}_r{j}"
            assert 0 <= rr[key] <= 1, (key, rr)
            if j >= k:
                assert abs(rr[key] - r[key]) < 1e-12, (k, key, rr[key], r[key])
        assert rr[f"{way}_r1"] <= rr[f"{way}_r5"] <= rr[f"{way}_r10"], rr
    print(f"blip_results_cli: top {k}: ITC R@1 {r['i2t_r1']:.4f}/{r['t2i_r1']:.4f}, "
          f"re-ranked {rr['i2t_r1']:.4f}/{rr['t2i_r1']:.4f}")
j = json.load(open(f"{d}/nearest.json"))
caps, m = j["captions"], j["metrics"]
self_match = sum(c["score"] > 0.9999 for c in caps) / len(caps)
assert self_match > 0.95, f"only {self_match:.3f} of the images found themselves"
assert m["bleu4"] > 0.9, m
print(f"blip_results_cli: nearest: {self_match:.3f} found themselves; BLEU-4 {m['bleu4']:.4f}, CIDEr-D {m['cider_d']:.4f}")
PY
if "$build/vlpeval" "$dir/run" "$dir/stamps.h5" --retrieval --rerank 100000 2>"$dir/err"; then exit 1; fi
grep -q "between 1 and the" "$dir/err"
echo "blip_results_cli: ok"
