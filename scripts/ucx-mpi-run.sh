#!/usr/bin/env bash
# ucx-mpi-run.sh - the Open MPI run of docs/ucx.md: 2 ranks over shared memory with --mca pml ucx, sending
# buffers freed and reallocated between sends (tests/ucx/mpi/realloc_pingpong.c), every message checked,
# with libumn-ucx.so preloaded. Not part of CI (Open MPI is not a CI dependency); installs openmpi-bin and
# libopenmpi-dev through scripts/setup-deps.sh if they are missing, and needs a build of libumn-ucx.so.
# Usage: scripts/ucx-mpi-run.sh [build dir, default build/test] [rounds, default 400]
# Runs, each printing the program's summary line:
#   1. bridge preloaded, UCX's hooks off by the bridge; Open MPI's patcher also feeding UCX (its default);
#   2. bridge preloaded, Open MPI's patcher not feeding UCX (opal_common_ucx_opal_mem_hooks 0): umn alone;
#   3. control: no bridge, UCX's hooks off, Open MPI's patcher not feeding UCX: UCX must refuse to start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/test}
rounds=${2:-400}
bridge=$(realpath "$build/src/bridges/ucx/libumn-ucx.so")
"$root/scripts/setup-deps.sh" openmpi-bin libopenmpi-dev
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpicc -O2 -Wall -Wextra -I"$root/include" "$root/tests/ucx/mpi/realloc_pingpong.c" -o "$work/realloc_pingpong"
# pml ucx over shared memory: Open MPI 4.1 only picks UCX on InfiniBand devices unless told otherwise.
mpi=(mpirun --allow-run-as-root -np 2 --mca pml ucx --mca pml_ucx_tls any --mca pml_ucx_devices any
     --mca opal_common_ucx_verbose 1)
run() {  # run NAME ARGS...: prints the run, its relevant lines, and its exit status
  local name=$1; shift
  echo "== $name"
  echo "\$ ${*}"
  set +e
  timeout 600 "$@" 2>&1 | grep -E "realloc_pingpong|rank [01]:|umn-ucx:|memory hooks|registration cache|ERROR" | sort -u
  local rc=${PIPESTATUS[0]}
  set -e
  echo "exit status $rc"
  return 0
}
run "bridge + Open MPI patcher" "${mpi[@]}" -x LD_PRELOAD="$bridge" "$work/realloc_pingpong" "$rounds"
run "bridge alone" "${mpi[@]}" --mca opal_common_ucx_opal_mem_hooks 0 -x LD_PRELOAD="$bridge" \
    "$work/realloc_pingpong" "$rounds"
run "control: no event source" "${mpi[@]}" --mca opal_common_ucx_opal_mem_hooks 0 \
    -x UCX_MEM_MMAP_HOOK_MODE=none -x UCX_MEM_MALLOC_HOOKS=n -x UCX_RCACHE_ENABLE=y "$work/realloc_pingpong" "$rounds"
