#!/usr/bin/env bash
# Sets vlp up on Debian 12: installs the Debian packages it needs (only those
# missing; apt-get as root, or through sudo) and builds it with CMake.
#   scripts/setup.sh              release build in build/
#   scripts/setup.sh --sanitize   ASan + UBSan build in build-sanitize/
# Safe to run again: it installs nothing twice and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
for arg in "$@"; do
  case "$arg" in
    --sanitize) build=build-sanitize; cmake_args+=(-DVLP_SANITIZE=ON) ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config      # compiler and build
  libopenblas-dev                       # sgemm (cblas)
  libopenmpi-dev openmpi-bin            # data parallelism
  libhdf5-dev                           # checkpoints, packed datasets
  libstb-dev                            # image decode (all but JPEG), write; scenes resize
  libjpeg62-turbo-dev                   # JPEG decode: libjpeg-turbo, as PIL decodes
  libinih-dev libcsv-dev libcjson-dev   # INI configs, CSV manifests, JSON
  libutf8proc-dev zlib1g-dev python3-regex # tokenizer: Unicode classes, gzip merges, Python reference
  check                                 # unit tests
  python3-torch python3-h5py hdf5-tools # the PyTorch reference, converters
  tuxpaint-stamps-default               # real RGBA photos: default data, decode tests
  tuxpaint-data                         # 19 JPEG photographs: scenes, preprocess.pil_photos
  python3-pil python3-torchvision       # PIL + torchvision reference (scripts/pil_ref.py)
  chromium                              # renders vlpreport's page in a test
  valgrind                              # memcheck of the tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
echo "setup.sh: built $build/"
