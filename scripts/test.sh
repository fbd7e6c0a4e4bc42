#!/usr/bin/env bash
# test.sh - builds and runs every test: the format check, the plain build, the build without process hooks,
# every target compiled with clang, ASan+UBSan (with the expensive checks), and TSan. CONTRIBUTING.md has each
# stage's commands.
#   scripts/test.sh          CI-sized stress tests
#   scripts/test.sh --long   long stress runs (UMN_STRESS_LONG=1)
# Build folders: build/test, build/nohooks, build/clang (everything compiled with clang, -Wthread-safety),
# build/asan, build/tsan.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for arg in "$@"; do
  case "$arg" in
    --long) export UMN_STRESS_LONG=1 ;;
    *) echo "usage: scripts/test.sh [--long]" >&2; exit 2 ;;
  esac
done

scripts/setup-deps.sh
jobs=$(nproc)
scripts/format-check.sh  # the files listed in .clang-format-files

# configure_build DIR [CMAKE ARGS...]
configure_build() {
  local dir=$1; shift
  echo "=== build $dir ==="
  cmake -S . -B "build/$dir" -DUMN_DEBUG_LEVEL=1 -DUMN_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "build/$dir" -j"$jobs"
}
# run_tests DIR [CTEST ARGS...]
run_tests() {
  local dir=$1; shift
  echo "=== test $dir ==="
  ctest --test-dir "build/$dir" --output-on-failure -j"$jobs" "$@"
}

configure_build test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_BUILD_BENCH=ON
run_tests test

# The process hooks compiled out, as on every architecture but x86-64: the library must build and link
# without them, the core tests must pass, and the process API must answer -ENOSYS (tests/unit/nohooks).
configure_build nohooks -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_PROCESS_HOOKS=OFF -DUMN_BUILD_TOOLS=OFF \
  -DUMN_BUILD_EXAMPLES=OFF "-DUMN_UNIT_ONLY=core;classic;cxx;itree;misuse;nohooks"
run_tests nohooks

# clang: the whole tree (library, umn command, tests, benchmarks, examples) compiled with clang, the warning
# set of cmake/umn_warnings.cmake, its thread-safety analysis (every UMN_GUARDED_BY / UMN_REQUIRES,
# src/base/lock.hpp) and -Werror; first a negative control that proves the analysis is on.
tsa=(clang++ -std=c++20 -fsyntax-only -Wthread-safety -Werror -Isrc tests/thread_safety/unlocked_read.cc)
"${tsa[@]}"
if "${tsa[@]}" -DUMN_EXPECT_REJECTED 2>/dev/null; then
  echo "clang accepted an unlocked read of a UMN_GUARDED_BY field: the analysis is off" >&2
  exit 1
fi
# Compiled, not run (gcc's builds run the tests), so -O0 and no debug info: clang's warnings come from its
# front end and do not depend on the optimisation level. NDEBUG as in the plain build, so that what only
# assert() uses is checked as release builds see it.
CC=clang CXX=clang++ configure_build clang -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS_RELEASE=-O0 -DNDEBUG" \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG" -DUMN_BUILD_BENCH=ON

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# ASan+UBSan at UMN_DEBUG_LEVEL=2: the O(n) checks too (every interval tree verified after each change;
# LibraryDebugLevelDeathTest in tests/unit/core proves the level reaches the library).
configure_build asan -DCMAKE_BUILD_TYPE=Debug -DUMN_SANITIZE=address -DUMN_DEBUG_LEVEL=2
run_tests asan

# die_after_fork=0: umn's fork handler gives a forked child a fresh liburcu call_rcu thread (see
# src/core/rcu.hpp), which TSan by default refuses in the child of a multi-threaded parent.
export TSAN_OPTIONS=halt_on_error=1:die_after_fork=0:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp
configure_build tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_SANITIZE=thread -DUMN_BUILD_EXAMPLES=OFF
run_tests tsan

echo "=== all tests passed ==="
