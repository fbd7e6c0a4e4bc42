#!/usr/bin/env bash
# exits_0_and_says.sh PATTERN COMMAND [ARGS...]: runs COMMAND, shows its output, and succeeds only if it
# exited 0 and its output (stdout and stderr) has a line matching PATTERN (grep -E).
pattern=$1
shift
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[[ $rc -eq 0 ]] || { echo "exits_0_and_says: exit status $rc" >&2; exit 1; }
grep -qE -- "$pattern" <<<"$out" || { echo "exits_0_and_says: no line matching: $pattern" >&2; exit 1; }
