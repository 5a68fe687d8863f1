"""The BLIP recipe's VQA-style evaluation (python3's standard library only).
  blip_vqa.py split VQA_VAL.tsv OUT_DIR   one manifest per question (absolute
      paths), OUT_DIR/questions.tsv listing them, for vlpcaption --prompt
  blip_vqa.py score VQA_TRAIN.tsv VQA_VAL.tsv OUT_DIR OUT.json   exact match
      of the normalised answers of OUT_DIR/answers_<i>.json, per question
      type, beside the majority answer of each type in the training rows
Not the answering (vlpcaption with the question as the prompt)."""
import csv
import json
import os
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(__file__))
from blip_data import TEMPLATES, normalise  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def split(val, out):
    rows, base = read(val), os.path.dirname(os.path.abspath(val))
    questions = sorted({r["question"] for r in rows})
    with open(f"{out}/questions.tsv", "w") as f:
        for i, q in enumerate(questions):
            f.write(f"{i}\t{q}\n")
            with open(f"{out}/question_{i}.tsv", "w") as m:
                m.write("filepath\ttitle\n")
                for r in rows:
                    if r["question"] == q:
                        m.write(f"{os.path.join(base, r['filepath'])}\t{r['answer']}\n")
    print(f"{len(questions)} questions, {len(rows)} question/image pairs")


def score(train, val, out, json_out):
    # the majority answer of each type: the training rows' question text tells the type
    type_of = {q: t for t, qs in TEMPLATES.items() for q in qs}
    counts = defaultdict(Counter)
    for r in read(train):
        question = next(q for q in type_of if r["title"].startswith(q + " "))
        counts[type_of[question]][r["title"][len(question) + 1:]] += 1
    majority = {t: c.most_common(1)[0][0] for t, c in counts.items()}
    questions = dict(line.rstrip("\n").split("\t")[::-1] for line in open(f"{out}/questions.tsv"))
    predicted = {}
    for q, i in questions.items():
        for c in json.load(open(f"{out}/answers_{i}.json"))["captions"]:
            predicted[(os.path.abspath(c["image"]), q)] = normalise(c["caption"])
    base = os.path.dirname(os.path.abspath(val))
    hits, base_hits, total, answered = Counter(), Counter(), Counter(), 0
    for r in read(val):
        t, answer = r["qtype"], normalise(r["answer"])
        got = predicted.get((os.path.join(base, r["filepath"]), r["question"]))
        total[t] += 1
        answered += got is not None
        hits[t] += got == answer
        base_hits[t] += majority[t] == answer
    result = {"questions": sum(total.values()), "answered": answered,
              "accuracy": sum(hits.values()) / sum(total.values()),
              "majority_accuracy": sum(base_hits.values()) / sum(total.values()),
              "per_type": {t: {"questions": total[t], "accuracy": hits[t] / total[t],
                               "majority_answer": majority[t],
                               "majority_accuracy": base_hits[t] / total[t]} for t in sorted(total)}}
    json.dump(result, open(json_out, "w"), indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    {"split": split, "score": score}[sys.argv[1]](*sys.argv[2:])
