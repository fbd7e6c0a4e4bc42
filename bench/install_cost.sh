#!/bin/sh
# install_cost.sh BUILD [ROUNDS] - what installing the process hooks costs a process: a C program that
# only calls umn_process_hooks_install(), linked with BUILD/libumn.so, run with the hooks and with
# UMN_PROCESS_HOOKS=0 (installation refused at once: the same program, libraries and loading), in
# alternating blocks of 10 runs (ROUNDS blocks each, default 5) in the same session. Prints the median
# task-clock of each, their difference (the installation) and ratio, and, when valgrind is installed,
# the instructions of one run of each (callgrind; deterministic). Not part of CI (docs/PERFORMANCE.md
# quotes its output). Needs perf (task-clock is a software event: no hardware counters needed).
set -eu
build=$(realpath "$1") rounds=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#include <umn/process.h>\nint main(void) { return umn_process_hooks_install() != 0; }\n' > "$work/p.c"
cc -O2 -I "$src/include" "$work/p.c" -o "$work/p" -L "$build" -lumn -Wl,-rpath,"$build"
"$work/p" || { echo "install_cost: the hooks do not install" >&2; exit 1; }
# Median msec of task-clock over ROUNDS blocks of 10 runs, hooks on ($1 = 1) or refused ($1 = 0).
block() { UMN_PROCESS_HOOKS=$1 perf stat -x, -r 10 -e task-clock "$work/p" 2>&1 >/dev/null | cut -d, -f1; }
for i in $(seq "$rounds"); do
	block 1 >> "$work/on"
	block 0 >> "$work/off"
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
on=$(median "$work/on") off=$(median "$work/off")
awk -v on="$on" -v off="$off" 'BEGIN { printf "task-clock: hooks %.2f ms, refused %.2f ms: installation %.2f ms (%.2fx)\n", on, off, on - off, on / off }'
command -v valgrind > /dev/null || exit 0
ir() { UMN_PROCESS_HOOKS=$1 valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$work/p" 2>&1 | awk '/Collected/ { print $4 }'; }
ir_on=$(ir 1) ir_off=$(ir 0)
awk -v on="$ir_on" -v off="$ir_off" 'BEGIN { printf "instructions: hooks %.1fM, refused %.1fM: installation %.1fM\n", on / 1e6, off / 1e6, (on - off) / 1e6 }'
