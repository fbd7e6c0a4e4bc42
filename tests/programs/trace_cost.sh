#!/bin/sh
# trace_cost.sh UMN PRELOAD [RUNS] - the cost of `umn trace` and `umn trace --verify`: runs each workload
# RUNS times (default 5) plain, under `umn trace`, and under `umn trace --verify`, in the same session,
# and prints the median wall time of each and the ratios to plain. Not part of CI (docs/process.md
# quotes its output).
set -eu
# Absolute paths: the workloads run in a scratch directory. A umn that cannot run the check at all
# (a wrong path, a missing preload) stops the script: its failed runs would time as a tiny cost.
umn=$(realpath "$1") preload=$(realpath "$2") runs=${3:-5}
"$umn" trace --verify --preload "$preload" -o /dev/null -- true || {
	echo "trace_cost: $umn trace --verify does not run" >&2
	exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$(cd "$(dirname "$0")" && pwd)
cd "$work"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Wall time of one run of "$@", in milliseconds.
wall() {
	start=$(date +%s%N)
	"$@" > /dev/null 2>&1 || true
	end=$(date +%s%N)
	echo $(((end - start) / 1000000))
}
measure() {
	name=$1
	shift
	plain=$(for i in $(seq "$runs"); do wall "$@"; done | median)
	traced=$(for i in $(seq "$runs"); do wall "$umn" trace --preload "$preload" -o /dev/null -- "$@"; done | median)
	verified=$(for i in $(seq "$runs"); do wall "$umn" trace --verify --preload "$preload" -o /dev/null -- "$@"; done | median)
	awk -v n="$name" -v p="$plain" -v t="$traced" -v v="$verified" \
		'BEGIN { printf "%-28s plain %6d ms   trace %6d ms (%.2fx)   trace --verify %6d ms (%.2fx)\n", n, p, t, t / p, v, v / p }'
}
measure "python3 (alloc churn)" /usr/bin/python3 -c "
import threading
bufs=[bytearray(8<<20) for _ in range(16)]
del bufs
def w():
  for i in range(100):
    b=bytearray(1<<20)
    del b
ts=[threading.Thread(target=w) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]"
# The worst case: nothing but trapped calls (20000 mmap + munmap pairs; each munmap stops the process).
measure "python3 (20000 munmaps)" /usr/bin/python3 -c "
import mmap
for i in range(20000):
  m=mmap.mmap(-1,1<<16)
  m[0]=1
  m.close()"
measure "gcc -O2 -c threads.c" gcc -O2 -c "$src/threads.c" -o threads.o
measure "sort 400000 lines" sh -c "seq 1 400000 | shuf --random-source=/dev/zero > big.txt && sort big.txt -o sorted.txt && sort -n -S 1M big.txt > /dev/null"
measure "tar c+x of src/" sh -c "tar cf s.tar -C $src/../../src . && mkdir -p x && tar xf s.tar -C x"
