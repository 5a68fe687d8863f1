#!/usr/bin/env bash
# Prepares Fashion-MNIST in data/fmnist/ from the Debian package
# dataset-fashion-mnist (installed if missing): 28x28 grey PNGs, train.tsv,
# test.tsv, classnames.txt, templates.txt. Safe to rerun: a finished
# preparation is only checked again, unless --force.
#   scripts/data/fmnist.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
VLP_WHO=fmnist
source scripts/data/lib.sh
parse_args "$@"

need_python
need_debs dataset-fashion-mnist
version=$(deb_version dataset-fashion-mnist)
echo "fmnist: dataset-fashion-mnist $version"
"$PY" -B scripts/data/fmnist.py "${force[@]}" --version "$version" \
  --src /usr/share/datasets/fashion-mnist \
  --readme /usr/share/doc/dataset-fashion-mnist/README.md.gz \
  --out data/fmnist | tee "$summary"
pack data/fmnist/train.tsv 28
pack data/fmnist/test.tsv 28
tail -n1 "$summary"  # the summary line last, for all.sh
