# Sourced by the recipes: paths ($bin: the programs, VLP_BUILD or build/),
# the machine's description, a training run that is reused once finished,
# and the writer of a recipe's section of docs/results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${VLP_BUILD:-build}
[ -x "$bin/vlptrain" ] || { echo "$bin/vlptrain is missing: run scripts/setup.sh first" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# train RUN CONFIG [--set ...]: vlptrain into RUN (its log RUN.log) unless
# RUN already finished.
train() {
  local run=$1; shift
  [ -f "$run/model.h5" ] && { echo "reusing $run"; return; }
  rm -rf "$run"
  nice "$bin/vlptrain" "$@" --set log.dir="$run" > "$run.log" 2>&1 || { tail -5 "$run.log" >&2; exit 1; }
  tail -1 "$run.log"
}

# One line about where the numbers were measured.
machine() {
  local cpu
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  echo "$cpu, $(nproc) cores; OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset}, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; vlp $(git describe --always --dirty)"
}

# results_section NAME FILE: replaces NAME's section of docs/results.md (the
# lines between <!-- NAME --> and <!-- /NAME -->) with FILE, or appends it.
results_section() {
  /usr/bin/python3 - "$1" "$2" docs/results.md <<'PY'
import os, re, sys
name, body_path, results = sys.argv[1:]
body = open(body_path).read().rstrip("\n")
block = f"<!-- {name} -->\n{body}\n<!-- /{name} -->"
text = open(results).read() if os.path.exists(results) else "# Results\n"
pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
open(results, "w").write(text)
PY
  echo "wrote the $1 section of docs/results.md"
}
