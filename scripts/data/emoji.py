"""Prepares emoji image-caption pairs from npm packages as manifests.

Run by scripts/data/emoji.sh, which fetches the tarballs with `npm pack`; not
a loader. Images: emoji-datasource-google and -twitter (img/<style>/64/*.png,
64x64 RGBA); captions: emojibase-data (en/data.json), joined by hexcode with
FE0F removed; emoji-datasource's own names where emojibase has no entry.
Writes <style>_train.tsv / <style>_val.tsv with concept_id = the base emoji.
"""
import argparse
import collections
import hashlib
import json
import os
import shutil
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifest import Failure, Stamp, check_manifest, clean_caption, elapsed, prepare, read_tsv, run, write_tsv  # noqa: E402

WHO = "emoji"
FORMAT = 1  # bump when the output changes, so stamps from older runs go stale
STYLES = ("google", "twitter")
VAL_PERCENT = 20
MIN_PAIRS = 3500  # per style; fewer means the packages changed under us

# emoji-datasource's skin_variations keys -> emojibase's wording.
TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone",
         "1F3FD": "medium skin tone", "1F3FE": "medium-dark skin tone",
         "1F3FF": "dark skin tone"}


def norm(hexcode):
    """Join key: upper case, variation selector FE0F dropped (the two
    packages disagree on where it is written)."""
    return "-".join(p for p in hexcode.upper().split("-") if p != "FE0F")


def val_concepts(bases):
    """The validation base emoji: the VAL_PERCENT% whose sha1 of the normalised
    hexcode sorts first. Stable (sha1, not Python's salted hash()), exact in
    size, and the same on every run for the same package versions."""
    ranked = sorted(bases, key=lambda b: hashlib.sha1(norm(b).encode()).hexdigest())
    return set(ranked[:round(len(ranked) * VAL_PERCENT / 100)])


def extract(tgz, dest, wanted):
    """Extracts the members under the `wanted` prefixes of an npm tarball into
    dest (once: `.extracted` marks a finished extraction). Member names are
    checked so that nothing lands outside dest."""
    marker = os.path.join(dest, ".extracted")
    if os.path.exists(marker):
        return False
    shutil.rmtree(dest, ignore_errors=True)
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for m in tar:
                if not m.isfile() or not m.name.startswith(wanted):
                    continue
                parts = m.name.split("/")
                if m.name.startswith("/") or ".." in parts:
                    raise Failure(f"{tgz}: unsafe member name {m.name}")
                path = os.path.join(dest, *parts)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with tar.extractfile(m) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (OSError, tarfile.TarError) as e:
        raise Failure(f"{tgz}: cannot extract ({e})")
    open(marker, "w").close()
    return True


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Failure(f"{path}: cannot read JSON ({e})")


def emojibase_index(entries, path):
    """norm(hexcode) -> (label, tags) for every emoji and skin variant. A skin
    variant has no tags of its own: it takes its base emoji's."""
    index, clashes = {}, []
    for e in entries:
        tags = e.get("tags") or []
        for item in [e, *e.get("skins", [])]:
            key = norm(item["hexcode"])
            if key in index:
                clashes.append(item["hexcode"])
            index[key] = (item["label"], tags)
    if clashes:
        print(f"{WHO}: {path}: {len(clashes)} hexcodes equal once FE0F is removed "
              f"(last one kept): {', '.join(clashes[:5])}")
    return index


def datasource_items(emojis):
    """Every image-bearing emoji of emoji.json, skin variants included, as
    dicts {base, unified, non_qualified, image, name, short_names, tone, has}."""
    items = []
    for e in sorted(emojis, key=lambda e: (e["sort_order"], e["unified"])):
        base = {"base": e["unified"], "unified": e["unified"], "non_qualified": e.get("non_qualified"),
                "image": e["image"], "name": e.get("name") or e["short_name"],
                "short_names": e.get("short_names") or [], "tone": None,
                "has": {s: e.get(f"has_img_{s}", False) for s in STYLES}}
        items.append(base)
        for tone, v in sorted((e.get("skin_variations") or {}).items()):
            items.append(dict(base, unified=v["unified"], non_qualified=v.get("non_qualified"),
                              image=v["image"], tone=tone,
                              has={s: v.get(f"has_img_{s}", False) for s in STYLES}))
    return items


def caption(item, index, stats):
    """"<emojibase label>: <tags>", else emoji-datasource's name and short names."""
    for key in (item["unified"], item["non_qualified"]):
        if key and norm(key) in index:
            label, tags = index[norm(key)]
            stats["joined"] += 1
            return clean_caption(f"{label}: {', '.join(tags)}" if tags else label)
    stats["fallback"] += 1
    stats["fallback_examples"].append(item["unified"])
    label = item["name"].lower()
    if item["tone"]:
        label += ": " + ", ".join(TONES[t] for t in item["tone"].split("-"))
    words = ", ".join(s.replace("_", " ") for s in item["short_names"])
    return clean_caption(f"{label}: {words}" if words else label)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="redo even if already prepared")
    ap.add_argument("--google", required=True, help="emoji-datasource-google tarball")
    ap.add_argument("--twitter", required=True, help="emoji-datasource-twitter tarball")
    ap.add_argument("--emojibase", required=True, help="emojibase-data tarball")
    ap.add_argument("--out", required=True, help="output folder (data/emoji)")
    args = ap.parse_args()
    t0 = time.time()
    out = args.out
    cache = os.path.dirname(os.path.abspath(args.google))

    # Unpack only what is used: the 64 px images, emoji.json, licence, readme.
    pkgs = {}
    for key, tgz, wanted in [
            ("google", args.google, ("package/img/google/64/",)),
            ("twitter", args.twitter, ("package/img/twitter/64/",)),
            ("emojibase", args.emojibase, ("package/en/data.json",))]:
        dest = os.path.join(cache, os.path.basename(tgz)[:-len(".tgz")])
        common = ("package/package.json", "package/LICENSE", "package/README.md", "package/emoji.json")
        if extract(tgz, dest, wanted + common):
            print(f"{WHO}: unpacked {os.path.relpath(tgz)} into {os.path.relpath(dest)}/")
        meta = load_json(os.path.join(dest, "package", "package.json"))
        pkgs[key] = {"dir": os.path.join(dest, "package"), "name": meta["name"],
                     "version": meta["version"], "license": meta.get("license", "?")}
        print(f"{WHO}: {meta['name']} {meta['version']} (package.json licence: {pkgs[key]['license']})")

    stamp = Stamp(out, "\n".join(f"{p['name']} {p['version']}" for p in pkgs.values())
                  + f"\nemoji.py format {FORMAT}")
    totals = prepare(WHO, stamp, args.force, lambda: build(out, pkgs), lambda: verify(out))
    print(f"{WHO}: took {elapsed(t0)}")
    print(f"{WHO}: " + ", ".join(f"{s} {totals[(s, 'train')]} train / {totals[(s, 'val')]} val"
                                 for s in STYLES) + f" pairs in {os.path.relpath(out)}/")


def verify(out):
    """Checks the four manifests and their files, prints counts and examples."""
    totals = {}
    for style in STYLES:
        concepts = set()
        for split in ("train", "val"):
            path = os.path.join(out, f"{style}_{split}.tsv")
            rows = check_manifest(path, ["concept_id"], size=(64, 64),
                                  say=lambda s: print(f"{WHO}: {s}"))
            ids = {r[2] for r in rows}
            if ids & concepts:
                raise Failure(f"{path}: concept ids also in the other split: {sorted(ids & concepts)[:5]}")
            concepts |= ids
            totals[(style, split)] = len(rows)
        n = totals[(style, "train")] + totals[(style, "val")]
        if n < MIN_PAIRS:
            print(f"{WHO}: warning: only {n} {style} pairs, fewer than the {MIN_PAIRS} expected",
                  file=sys.stderr)
    _, rows = read_tsv(os.path.join(out, "google_train.tsv"))
    print(f"{WHO}: example captions (google_train.tsv):")
    for r in rows[::max(1, len(rows) // 6)][:6]:
        print(f"  {r[0]}\t{r[1]}")
    return totals


def build(out, pkgs):
    base_json = os.path.join(pkgs["google"]["dir"], "emoji.json")
    emojis = load_json(base_json)
    other_json = os.path.join(pkgs["twitter"]["dir"], "emoji.json")
    other = load_json(other_json)
    if other != emojis:
        known = {e["unified"] for e in emojis}
        extra = [e for e in other if e["unified"] not in known]
        print(f"{WHO}: {other_json} differs from {base_json}; {len(extra)} emoji only in it added")
        emojis = emojis + extra
    data_json = os.path.join(pkgs["emojibase"]["dir"], "en", "data.json")
    base_entries = load_json(data_json)
    index = emojibase_index(base_entries, data_json)
    items = datasource_items(emojis)

    # concept_id: the base emoji, numbered in emoji-datasource's sort order,
    # the same in both styles.
    concept = {}
    for it in items:
        concept.setdefault(it["base"], len(concept))
    stats = {"joined": 0, "fallback": 0, "fallback_examples": []}
    titles = {it["unified"]: caption(it, index, stats) for it in items}
    used = {norm(k) for it in items for k in (it["unified"], it["non_qualified"]) if k}
    base_only = [k for k in index if k not in used]
    print(f"{WHO}: {len(emojis)} base emoji, {len(items)} with skin variants in emoji.json; "
          f"{len(base_entries)} emoji, {len(index)} with skins in emojibase")
    print(f"{WHO}: join by hexcode without FE0F: {stats['joined']} captions from emojibase, "
          f"{stats['fallback']} from emoji-datasource names "
          f"({', '.join(stats['fallback_examples'][:8]) or 'none'}); "
          f"{len(base_only)} emojibase entries have no image here "
          f"({', '.join(sorted(base_only)[:6])}{'...' if len(base_only) > 6 else ''})")

    val = val_concepts(concept)
    print(f"{WHO}: split by sha1 of the base hexcode: {len(concept) - len(val)} concepts train, "
          f"{len(val)} val ({100 * len(val) / len(concept):.1f}%), skin variants with their base")

    for style in STYLES:
        img_dir = os.path.join(pkgs[style]["dir"], "img", style, "64")
        on_disk = set(os.listdir(img_dir))
        folder = os.path.join(out, style)
        shutil.rmtree(folder, ignore_errors=True)  # no stale images from an older run
        os.makedirs(folder)
        rows = {"train": [], "val": []}
        no_file, no_flag, digests = [], [], collections.defaultdict(list)
        for it in items:
            if it["image"] not in on_disk:
                if it["has"][style]:
                    no_file.append(it["image"])
                continue
            if not it["has"][style]:
                no_flag.append(it["image"])  # a file the package says is a fallback
                continue
            src = os.path.join(img_dir, it["image"])
            shutil.copyfile(src, os.path.join(folder, it["image"]))
            with open(src, "rb") as f:
                digests[hashlib.sha1(f.read()).hexdigest()].append(it["unified"])
            split = "val" if it["base"] in val else "train"
            rows[split].append((f"{style}/{it['image']}", titles[it["unified"]], concept[it["base"]]))
        unused = on_disk - {it["image"] for it in items}
        same = [v for v in digests.values() if len(v) > 1]
        print(f"{WHO}: {style}: {sum(len(r) for r in rows.values())} images copied to "
              f"{os.path.relpath(folder)}/; {len(no_file)} flagged but missing, "
              f"{len(no_flag)} present but flagged has_img_{style}=false (skipped), "
              f"{len(unused)} files not in emoji.json; "
              f"{sum(len(v) for v in same)} images in {len(same)} groups of byte-identical files"
              + (f" (e.g. {', '.join(same[0][:3])})" if same else ""))
        for split, r in rows.items():
            write_tsv(os.path.join(out, f"{style}_{split}.tsv"), ["filepath", "title", "concept_id"], r)


if __name__ == "__main__":
    run(WHO, main)
