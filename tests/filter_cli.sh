#!/usr/bin/env bash
# vlpfilter (CapFilt) end to end on a tiny BLIP trained for a few steps on
# Tux Paint stamps: the report has one row per pair whose decisions agree
# with its probabilities and the threshold, the cleaned manifest holds
# exactly the kept pairs and synthetic captions and loads again, a seeded
# run repeats itself, the filter's probabilities do not depend on the
# captioner, thresholds 0 and 1 keep all and none, and bad input fails.
#   filter_cli.sh BUILD
set -euo pipefail
build=$1
source "$(dirname "$0")/tiny_blip.sh" # $dir, the skip without stamps, tiny_blip_ini
# 40 captioned stamps as a caption folder (files, so a manifest can name them),
# and one image that does not decode.
mkdir -p "$dir/pairs"
for png in $(ls /usr/share/tuxpaint/stamps/food/*/*.png | head -40); do
  txt=${png%.png}.txt
  [ -f "$txt" ] || continue
  cp "$png" "$dir/pairs/"; head -1 "$txt" > "$dir/pairs/$(basename "$txt")"
done
echo "not a png" > "$dir/pairs/broken.png"; echo "A broken picture." > "$dir/pairs/broken.txt"
"$build/vlpdata" pack "$dir/pairs" -o "$dir/pairs.h5" --size 24 >/dev/null 2>&1
tiny_blip_ini "$dir/blip.ini" pairs.h5 8
"$build/vlptrain" "$dir/blip.ini" >/dev/null
f="$build/vlpfilter"
"$f" "$dir/run" "$dir/pairs" -o "$dir/out/clean.tsv" --report "$dir/report.tsv" --seed 3 --batch 7 \
  > "$dir/stdout" 2>"$dir/stderr" && exit 1 # no folder out/: a write error
mkdir "$dir/out"
"$f" "$dir/run" "$dir/pairs" --report "$dir/report_nosyn.tsv" --no-synthetic --batch 5 > /dev/null 2>&1
# A threshold between the probabilities this untrained filter gives, so it keeps some and drops some.
t=$(/usr/bin/python3 -c 'import csv,sys,statistics; print(statistics.median(float(r["match_prob"]) for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["match_prob"] != "nan"))' "$dir/report_nosyn.tsv")
"$f" "$dir/run" "$dir/pairs" -o "$dir/out/clean.tsv" --report "$dir/report.tsv" --seed 3 --batch 7 \
  --threshold "$t" > "$dir/stdout" 2>"$dir/stderr"
grep -q "pairs" "$dir/stderr" # progress
"$f" "$dir/run" "$dir/pairs" --report "$dir/report_again.tsv" --seed 3 --batch 7 --threshold "$t" > /dev/null 2>&1
"$f" "$dir/run" "$dir/pairs" --report "$dir/report_seed4.tsv" --seed 4 --batch 7 > /dev/null 2>&1
"$f" "$dir/run" "$dir/pairs" -o "$dir/all.tsv" --threshold 0 --no-synthetic > "$dir/stdout0" 2>/dev/null
"$f" "$dir/run" "$dir/pairs" -o "$dir/none.tsv" --threshold 1 --method greedy > /dev/null 2>&1
"$build/vlpdata" info "$dir/out/clean.tsv" > "$dir/info" 2>&1 || true
/usr/bin/python3 - "$dir" "$t" <<'PY'
import csv, re, sys
d, t = sys.argv[1], float(sys.argv[2])
read = lambda p: list(csv.DictReader(open(p, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
rep, clean = read(f"{d}/report.tsv"), read(f"{d}/out/clean.tsv")
assert len(rep) >= 30, len(rep)
assert [int(r["row"]) for r in rep] == list(range(len(rep)))
decisions = {}
for r in rep:
    decisions[r["caption_decision"]] = decisions.get(r["caption_decision"], 0) + 1
    if r["caption_decision"] == "dropped_unreadable":
        assert r["image"].endswith("broken.png") and r["match_prob"] == "nan" and r["synthetic_decision"] == "none", r
        continue
    p, q = float(r["match_prob"]), float(r["synthetic_prob"])
    assert 0 <= p <= 1 and 0 <= q <= 1, r
    assert r["caption_decision"] == ("kept" if p >= t else "dropped_low_match"), r
    assert r["synthetic_decision"] == ("kept" if q >= t else "dropped_low_match"), r
assert decisions.get("dropped_unreadable") == 1, decisions
kept = decisions.get("kept", 0); syn = sum(r["synthetic_decision"] == "kept" for r in rep)
assert kept + decisions.get("dropped_low_match", 0) + 1 == len(rep), decisions
assert 0 < kept < len(rep) - 1, decisions
# The cleaned manifest: kept pairs in order, then kept synthetic captions.
want = [(r["caption"], "original") for r in rep if r["caption_decision"] == "kept"]
want += [(r["synthetic"], "synthetic") for r in rep if r["synthetic_decision"] == "kept"]
assert [(r["title"], r["source"]) for r in clean] == want, "cleaned manifest != the report's kept rows"
assert all(not r["filepath"].startswith("/") for r in clean)
out = open(f"{d}/stdout").read()
m = re.search(r"(\d+) pairs .* kept (\d+) captions, dropped (\d+) .* and (\d+) unreadable images; kept (\d+) synthetic", out)
assert m and [int(x) for x in m.groups()] == [len(rep), kept, len(rep) - kept - 1, 1, syn], (out, kept, syn)
assert f"{len(clean)} samples" in open(f"{d}/info").read(), open(f"{d}/info").read()
# Determinism, and the filter does not depend on the captioner or the batch.
assert open(f"{d}/report.tsv").read() == open(f"{d}/report_again.tsv").read(), "a seeded run changed"
s4 = read(f"{d}/report_seed4.tsv")
assert [r["synthetic"] for r in s4] != [r["synthetic"] for r in rep], "another seed drew the same captions"
nosyn = read(f"{d}/report_nosyn.tsv")
assert all(r["synthetic"] == "" and r["synthetic_decision"] == "none" for r in nosyn)
for a, b in zip(rep, nosyn):
    assert a["match_prob"] == s4[int(a["row"])]["match_prob"], (a, s4[int(a["row"])])
    assert a["match_prob"] == b["match_prob"] == "nan" or abs(float(a["match_prob"]) - float(b["match_prob"])) < 1e-5, (a, b)
# A 10-step model's probabilities are near 0.5, never 1.
assert len(read(f"{d}/all.tsv")) == len(rep) - 1 and len(read(f"{d}/none.tsv")) == 0
print(f"filter_cli: {len(rep)} pairs, {kept} kept, {syn} synthetic kept; reports repeat; thresholds 0 and 1 hold")
PY
# Bad input.
expect() { # expect CODE MESSAGE CMD...
  local code=$1 msg=$2; shift 2
  set +e; "$@" > /dev/null 2> "$dir/err"; local rc=$?; set -e
  [ "$rc" = "$code" ] && grep -q -- "$msg" "$dir/err" || { echo "expected $code '$msg' from: $*"; cat "$dir/err"; exit 1; }
}
expect 2 "--threshold: '1.5' is not a number in \[0, 1\]" "$f" "$dir/run" "$dir/pairs" --report "$dir/x.tsv" --threshold 1.5
expect 2 "nothing to write" "$f" "$dir/run" "$dir/pairs"
expect 2 "is a shard" "$f" "$dir/run" "$dir/pairs.h5" -o "$dir/x.tsv"
expect 2 "greedy, beam or nucleus" "$f" "$dir/run" "$dir/pairs" --report "$dir/x.tsv" --method sampling
expect 1 "vlpfilter: " "$f" "$dir/no_such_run" "$dir/pairs" --report "$dir/x.tsv"
expect 1 "vlpfilter: " "$f" "$dir/run" "$dir/no_such_data.tsv" --report "$dir/x.tsv"
"$f" "$dir/run" "$dir/pairs.h5" --report "$dir/shard.tsv" --no-synthetic > /dev/null 2>&1
[ "$(($(wc -l < "$dir/shard.tsv") - 1))" -ge 30 ]
echo "filter_cli: ok"
