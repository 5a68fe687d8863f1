"""The BLIP recipe's data, seeded, from what scripts/data/emoji.sh and
tuxpaint.sh installed (python3's standard library only):
  - Tux Paint stamps split into train and held-out by description (stamps
    sharing a description stay together): tux_train.tsv, tux_val.tsv;
  - blip_train.tsv: the Google-style emoji of the training concepts plus
    tux_train, paths relative to data/emoji (Tux Paint's concept ids moved
    past the emoji's);
  - VQA-style question/answer manifests from emoji.json (category,
    subcategory, skin tone; several question templates each), split by the
    emoji train/val concepts: vqa_train.tsv (title = "question answer", for
    the captioning loss), vqa_val.tsv (filepath, question, answer, qtype).
Not the packing (vlpdata pack) nor the training.
  blip_data.py EMOJI_DIR TUXPAINT_DIR [--seed N] [--tux-val 0.15]"""
import argparse
import csv
import json
import random
import re

# Short questions: the recipe's tokenizer, trained on the captions, spends
# many tokens on words they lack, and question + answer must fit the context.
TEMPLATES = {
    "category": ["category?", "what category?", "what kind?"],
    "subcategory": ["subgroup?", "what subgroup?", "what group?"],
    "skin tone": ["skin tone?", "what skin tone?", "which skin?"],
}
TONES = {"1F3FB": "light", "1F3FC": "medium light", "1F3FD": "medium", "1F3FE": "medium dark",
         "1F3FF": "dark"}


def normalise(text):
    """What an answer is compared as: lower case, punctuation as spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"{path}: {len(rows)} rows")


def emoji_facts(meta_path):
    """image file name -> {qtype: answer} from emoji.json (skin tone only for
    emoji that come in skin tones: "default" for the yellow base)."""
    facts = {}
    for e in json.load(open(meta_path)):
        base = {"category": normalise(e["category"]), "subcategory": normalise(e["subcategory"])}
        variations = e.get("skin_variations") or {}
        facts[e["image"]] = dict(base, **({"skin tone": "default"} if variations else {}))
        for key, v in variations.items():
            tones = {TONES[t] for t in key.split("-")}
            facts[v["image"]] = dict(base, **{"skin tone": tones.pop() if len(tones) == 1 else "mixed"})
    return facts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("emoji")
    p.add_argument("tuxpaint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tux-val", type=float, default=0.15)
    a = p.parse_args()
    rng = random.Random(a.seed)

    tux = read(f"{a.tuxpaint}/all.tsv")
    titles = sorted({r["title"] for r in tux})
    rng.shuffle(titles)
    held = set(titles[:round(a.tux_val * len(titles))])
    header = ["filepath", "title", "concept_id"]
    write(f"{a.tuxpaint}/tux_train.tsv", header, [[r[k] for k in header] for r in tux if r["title"] not in held])
    write(f"{a.tuxpaint}/tux_val.tsv", header, [[r[k] for k in header] for r in tux if r["title"] in held])

    emoji_train = read(f"{a.emoji}/google_train.tsv")
    offset = max(int(r["concept_id"]) for r in emoji_train) + 1
    write(f"{a.emoji}/blip_train.tsv", header,
          [[r["filepath"], r["title"], r["concept_id"]] for r in emoji_train] +
          [["../tuxpaint/" + r["filepath"], r["title"], offset + int(r["concept_id"])]
           for r in tux if r["title"] not in held])

    facts = emoji_facts(f"{a.emoji}/npm/emoji-datasource-google-16.0.0/package/emoji.json")
    for split in ("train", "val"):
        rows = []
        for r in read(f"{a.emoji}/google_{split}.tsv"):
            for qtype, answer in facts.get(r["filepath"].split("/")[-1], {}).items():
                # training sees every template; evaluation one drawn per image and type
                questions = TEMPLATES[qtype] if split == "train" else [rng.choice(TEMPLATES[qtype])]
                for q in questions:
                    rows.append([r["filepath"], q, answer, qtype, r["concept_id"]])
        if split == "train":
            write(f"{a.emoji}/vqa_train.tsv", header, [[f, f"{q} {ans}", c] for f, q, ans, _, c in rows])
        else:
            write(f"{a.emoji}/vqa_val.tsv", ["filepath", "question", "answer", "qtype", "concept_id"], rows)


if __name__ == "__main__":
    main()
