#!/usr/bin/env bash
# setup-deps.sh - installs the Debian packages umn builds and tests with, if any are missing.
# As root it runs apt-get (update once, then install); otherwise it prints the command to run.
# Usage: scripts/setup-deps.sh [PACKAGE...] - the arguments are extra packages a documented script needs
# on top of these (scripts/ucx-mpi-run.sh: Open MPI), installed the same way.
set -euo pipefail

packages=(build-essential cmake pkg-config git libgtest-dev libgmock-dev libbenchmark-dev liburcu-dev
          libcli11-dev libfmt-dev valgrind clang clang-format libclang-rt-14-dev spin
          libucx-dev ucx-utils  # libucx-dev, ucx-utils: the UCX bridge and its tests (tests/ucx), regcache_bench
          liburing-dev          # io_uring fixed buffers on the registration cache (src/users/uring)
          libzydis-dev          # the patcher decodes the functions holding syscall sites
          libcapstone-dev       # ... and, in a fully static program (no static Zydis in Debian 12), with Capstone
          golang-go fzf         # real Go programs (tests/programs/go)
          python3 libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0  # umn trace runs (tests/programs)
          "$@")

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "umn: missing Debian packages: ${missing[*]}" >&2
  echo "umn: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "umn: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
