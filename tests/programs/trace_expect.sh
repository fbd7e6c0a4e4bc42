#!/bin/sh
# trace_expect.sh STATUS PROCESSES PATTERN UMN PRELOAD [VAR=VALUE...] -- CMD [ARGS...]
# Runs `umn trace --verify --json` over CMD (with the VAR=VALUE settings in its environment) and checks
# that umn trace exits with STATUS, that it traced PROCESSES processes (N exactly, or N+ for at least N),
# and that the JSON summary contains PATTERN (a fixed string; "-" for none). Prints the summary when a
# check fails.
set -u
status=$1 processes=$2 pattern=$3 umn=$4 preload=$5
shift 5
out=$(mktemp)
trap 'rm -f "$out"' EXIT
env_args=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	env_args="$env_args $1"
	shift
done
shift
# shellcheck disable=SC2086
env $env_args "$umn" trace --verify --json -o "$out" --preload "$preload" -- "$@"
got=$?
count=$(grep -o '"processes":[0-9]*' "$out" | cut -d: -f2)
fail=""
[ "$got" -eq "$status" ] || fail="exit status $got, expected $status"
case $processes in
*+) [ "${count:-0}" -ge "${processes%+}" ] || fail="$fail; $count processes, expected at least ${processes%+}" ;;
*) [ "${count:-0}" -eq "$processes" ] || fail="$fail; $count processes, expected $processes" ;;
esac
if [ "$pattern" != "-" ] && ! grep -qF -- "$pattern" "$out"; then fail="$fail; no $pattern in the summary"; fi
if [ -n "$fail" ]; then
	echo "trace_expect: $fail" >&2
	cat "$out" >&2
	exit 1
fi
exit 0
