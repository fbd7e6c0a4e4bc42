#!/usr/bin/env bash
# format-check.sh - fails if a C or C++ file named by .clang-format-files differs from what clang-format
# makes of it (.clang-format). Each line of the list is a git pathspec: a file, a folder (every file in it,
# new ones included), a glob (include/umn/*.hpp), or an exclusion (:!bench/ucx/). Lines starting with #
# are comments. Files git ignores (build/) are never checked; untracked ones are.
#   scripts/format-check.sh          check (prints the differing files)
#   scripts/format-check.sh --fix    reformat them in place
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fix=0
[[ "${1:-}" == "--fix" ]] && fix=1
mapfile -t specs < <(grep -v -e '^#' -e '^[[:space:]]*$' .clang-format-files)
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${specs[@]}" |
                     grep -E '\.(c|cc|cpp|h|hpp)$' | sort -u)
bad=0
for file in "${files[@]}"; do
  [[ -f "$file" ]] || continue  # deleted in the work tree, not yet in the index
  if [[ $fix -eq 1 ]]; then
    clang-format -i "$file"
  elif ! clang-format "$file" | diff -q "$file" - >/dev/null; then
    echo "not formatted: $file (scripts/format-check.sh --fix)" >&2
    bad=1
  fi
done
echo "format-check: ${#files[@]} files checked"
exit $bad
