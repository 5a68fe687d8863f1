#!/usr/bin/env bash
# Prepares emoji image-caption pairs in data/emoji/ from npm packages fetched by
# name with `npm pack` (nothing is npm-installed): Google's and Twitter's emoji
# art (emoji-datasource-*@16) captioned by emojibase-data@17. Safe to rerun:
# tarballs already in data/emoji/npm/ are reused and a finished preparation is
# only checked again, unless --force (which still reuses the tarballs; delete
# data/emoji/npm/ to fetch them anew).
#   scripts/data/emoji.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
VLP_WHO=emoji
source scripts/data/lib.sh
parse_args "$@"

need_python
exec 3>&1  # fetch's messages go to the terminal, its result to $(...)
cache=data/emoji/npm
mkdir -p "$cache"

# fetch NAME MAJOR: prints the cached tarball NAME-MAJOR.x.y.tgz, fetching it
# with npm pack (the newest MAJOR.x release) when none is cached.
fetch() {
  local name=$1 major=$2 tgz="" cached
  cached=("$cache/$name-$major".[0-9]*.tgz)
  [ -e "${cached[0]}" ] && tgz=$(printf '%s\n' "${cached[@]}" | sort -V | tail -n1)
  if [ -z "$tgz" ]; then
    need_npm >&3
    echo "emoji: npm pack $name@$major (npm $(npm --version), node $(node --version))" >&3
    tgz=$(cd "$cache" && npm pack --silent "$name@$major" 2>"$name.npm.log") || {
      echo "emoji: npm pack $name@$major failed; npm said:" >&2
      cat "$cache/$name.npm.log" >&2
      exit 1
    }
    rm -f "$cache/$name.npm.log"
    tgz=$cache/$(echo "$tgz" | tail -n1)
    [ -f "$tgz" ] || { echo "emoji: npm pack did not leave $tgz" >&2; exit 1; }
  fi
  echo "$tgz"
}

google=$(fetch emoji-datasource-google 16)
twitter=$(fetch emoji-datasource-twitter 16)
emojibase=$(fetch emojibase-data 17)
"$PY" -B scripts/data/emoji.py "${force[@]}" --out data/emoji \
  --google "$google" --twitter "$twitter" --emojibase "$emojibase" | tee "$summary"
pack data/emoji/google_train.tsv 64
pack data/emoji/google_val.tsv 64
pack data/emoji/twitter_train.tsv 64
pack data/emoji/twitter_val.tsv 64
tail -n1 "$summary"  # the summary line last, for all.sh
