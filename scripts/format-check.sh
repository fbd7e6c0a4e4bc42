#!/usr/bin/env bash
# format-check.sh - fails if a file listed in .clang-format-files differs from what clang-format makes
# of it (.clang-format). Lines starting with # in the list are comments.
#   scripts/format-check.sh          check (prints the differing files)
#   scripts/format-check.sh --fix    reformat them in place
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fix=0
[[ "${1:-}" == "--fix" ]] && fix=1
bad=0
while read -r file; do
  [[ -z "$file" || "$file" == \#* ]] && continue
  if [[ $fix -eq 1 ]]; then
    clang-format -i "$file"
  elif ! clang-format "$file" | diff -q "$file" - >/dev/null; then
    echo "not formatted: $file (scripts/format-check.sh --fix)" >&2
    bad=1
  fi
done < .clang-format-files
exit $bad
