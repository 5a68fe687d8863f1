# Shared helpers for the dataset scripts in scripts/data/, sourced, not run.
# It installs missing Debian packages and finds the tools; the datasets
# themselves are prepared by the Python (standard library only) beside it.
# shellcheck shell=bash

# Only Debian's interpreter: the first python3 on PATH may be another one
# (pyenv) with other modules; ours needs nothing but the standard library.
PY=/usr/bin/python3

# vlp_sudo: prefix for commands that need root (empty when we are root).
vlp_sudo() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  else
    command -v sudo >/dev/null || { echo "$VLP_WHO: run as root or install sudo" >&2; exit 1; }
    sudo "$@"
  fi
}

# need_debs PKG...: apt-get install those of the Debian packages that are missing.
need_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "$VLP_WHO: installing Debian packages ${missing[*]}"
  vlp_sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive vlp_sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# need_python: Debian's python3 with its full standard library (gzip, zlib, json).
need_python() {
  need_debs python3
  [ -x "$PY" ] || { echo "$VLP_WHO: $PY is missing after installing python3" >&2; exit 1; }
}

# need_npm: the machine's npm if there is one, else Debian's (it brings nodejs).
need_npm() {
  command -v npm >/dev/null && return 0
  need_debs npm ca-certificates
}

# deb_version PKG: the installed version of a Debian package.
deb_version() {
  dpkg-query -W -f='${Version}' "$1"
}

# The build whose programs the scripts run (VLP_BUILD, default build/).
VLPDATA=${VLP_BUILD:-build}/vlpdata

# pack MANIFEST SIZE: writes MANIFEST's packed shard (same name, .h5) with
# SIZE x SIZE images through $VLPDATA; kept when newer than MANIFEST.
pack() {
  local manifest=$1 size=$2 shard=${1%.*}.h5
  [ -x "$VLPDATA" ] || { echo "$VLP_WHO: $VLPDATA is missing: run scripts/setup.sh first" >&2; exit 1; }
  if [ "$shard" -nt "$manifest" ] && [ -z "${VLP_FORCE:-}" ]; then
    echo "$VLP_WHO: $shard is up to date"
    return 0
  fi
  "$VLPDATA" pack "$manifest" -o "$shard" --size "$size" | sed "s/^vlpdata/$VLP_WHO/"
}

# parse_args "$@": the scripts' one option, --force (sets force=(--force) for
# the Python side and VLP_FORCE for pack), and a temporary file $summary
# removed on exit.
# shellcheck disable=SC2034  # force and summary are read by the calling script
parse_args() {
  force=()
  local arg
  for arg in "$@"; do
    case "$arg" in
      --force) force=(--force); export VLP_FORCE=1 ;;
      *) echo "$VLP_WHO.sh: unknown option $arg" >&2; exit 2 ;;
    esac
  done
  summary=$(mktemp)
  trap 'rm -f "$summary"' EXIT
}
