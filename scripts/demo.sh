#!/usr/bin/env bash
# demo.sh - builds umn and runs its main demo (extra arguments go to the demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DUMN_BUILD_TESTS=OFF -DUMN_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j"$(nproc)"
if [[ -d tools/sim ]]; then
  exec build/release/tools/umn sim "$@"
fi
exec build/release/examples/example_fault_retry "$@"
