#!/usr/bin/env bash
# The layers' arrows run one way (README, "Layout"): a file of src/<folder>/
# includes only its own folder's headers and those of the folders below it.
#   cli -> apps -> eval -> train -> models -> autograd -> base;
#   data -> base, beside them (train, eval and apps use data).
#   layout.sh SRC
set -euo pipefail
cd "$1/src"
declare -A allowed=(
  [base]="base"
  [autograd]="base autograd"
  [data]="base data"
  [models]="base autograd models"
  [train]="base autograd data models train"
  [eval]="base autograd data models train eval"
  [apps]="base autograd data models train eval apps"
  [cli]="base autograd data models train eval apps"
)
bad=0 files=0
for dir in "${!allowed[@]}"; do
  for f in "$dir"/*.c "$dir"/*.h; do
    [ -e "$f" ] || continue
    files=$((files + 1))
    while read -r inc; do
      folder=${inc%%/*}
      [ "$folder" = "$inc" ] && continue # "args.h": the folder's own
      [[ " ${allowed[$dir]} " == *" $folder "* ]] ||
        { echo "src/$f includes \"$inc\": $dir may not depend on $folder"; bad=1; }
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
  done
done
for dir in *; do
  [ -n "${allowed[$dir]:-}" ] || { echo "src/$dir: a folder the layout does not name"; bad=1; }
done
[ "$files" -gt 100 ] || { echo "only $files files checked"; exit 1; }
[ "$bad" = 0 ] && echo "layout: $files files, every include runs down the layers"
exit $bad
