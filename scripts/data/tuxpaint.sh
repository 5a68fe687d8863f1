#!/usr/bin/env bash
# Prepares Tux Paint's stamps in data/tuxpaint/ from the Debian package
# tuxpaint-stamps-default (installed if missing): PNGs copied unchanged,
# all.tsv captioned by each stamp's English description. Safe to rerun: a
# finished preparation is only checked again, unless --force.
#   scripts/data/tuxpaint.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
VLP_WHO=tuxpaint
source scripts/data/lib.sh
parse_args "$@"

need_python
need_debs tuxpaint-stamps-default
version=$(deb_version tuxpaint-stamps-default)
echo "tuxpaint: tuxpaint-stamps-default $version"
"$PY" -B scripts/data/tuxpaint.py "${force[@]}" --version "$version" \
  --src /usr/share/tuxpaint/stamps --out data/tuxpaint | tee "$summary"
pack data/tuxpaint/all.tsv 64
tail -n1 "$summary"  # the summary line last, for all.sh
