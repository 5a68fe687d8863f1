# Sourced by the recipes: paths, the machine's description, and the writer
# of a recipe's section of docs/results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
[ -x build/vlptrain ] || { echo "build/vlptrain is missing: run scripts/setup.sh first" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

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
