#!/bin/sh
# run_libfuzzer.sh SOURCE_DIR WORK_DIR [SECONDS] - builds the libFuzzer target with clang++ and runs it.
#   SECONDS defaults to $UMN_FUZZ_SECONDS, else 60 (the CI session). The seed corpus is
#   SOURCE_DIR/tests/fuzz/corpus; new interesting inputs go to WORK_DIR/corpus, crashes to WORK_DIR/crash-*.
#   A crash is a divergence between umn and the model (or a sanitizer report): copy the crash file into
#   tests/fuzz/corpus once it is fixed, so that the corpus test keeps it fixed.
# Exit: 0 clean, 77 when clang++ with libFuzzer is not available (ctest: skipped), else the fuzzer's.
set -eu
src=$1
work=$2
seconds=${3:-${UMN_FUZZ_SECONDS:-60}}
cxx=${UMN_FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "run_libfuzzer: $cxx not found; install clang to fuzz" >&2
  exit 77
fi
mkdir -p "$work/corpus"
bin=$work/umn_fuzz
# libumn itself is built by the project's CMake with clang (whatever sources it has today), instrumented
# for coverage (-fsanitize=fuzzer-no-link) and ASan+UBSan; the harness is then linked against it.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -g"
cmake -S "$src" -B "$work/clang" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="${UMN_FUZZ_CC:-clang}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_DEBUG_LEVEL=1 -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DUMN_BUILD_TESTS=OFF -DUMN_BUILD_BENCH=OFF -DUMN_BUILD_EXAMPLES=OFF -DUMN_BUILD_TOOLS=OFF >"$work/cmake.log" 2>&1 \
  || { cat "$work/cmake.log"; echo "run_libfuzzer: configure failed" >&2; exit 1; }
cmake --build "$work/clang" --target umn_static -j"${UMN_FUZZ_JOBS:-2}" >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; echo "run_libfuzzer: build of libumn failed" >&2; exit 1; }
lib=$work/clang/libumn.a
if [ ! -x "$bin" ] || [ -n "$(find "$lib" "$src/tests/fuzz" "$src/tests/model" -newer "$bin" \
      -name '*.[ch]*' 2>/dev/null | head -n 1)" ] || [ "$lib" -nt "$bin" ]; then
  echo "run_libfuzzer: linking $bin"
  "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -DUMN_DEBUG_LEVEL=1 -I"$src/include" -I"$src/src" -I"$src/tests/model" \
    "$src/tests/fuzz/harness.cc" "$src/tests/fuzz/fuzz_target.cc" "$src/tests/model/model.cc" "$lib" \
    -lurcu-bp -lpthread -ldl -o "$bin.tmp" || { echo "run_libfuzzer: build failed" >&2; exit 1; }
  mv "$bin.tmp" "$bin"
fi
echo "run_libfuzzer: fuzzing for $seconds s"
# Leaks: LeakSanitizer checks once, at exit (ASAN_OPTIONS detect_leaks=1; a leak fails the session, with
# the allocating stack). libFuzzer's own per-input check (-detect_leaks) is off: an input with get/put
# leaves its frees to liburcu's call_rcu thread, so its mallocs outlive it, and libFuzzer reran every
# such input under LeakSanitizer to look for a leak that was not there (2.6x fewer inputs per second).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=1
exec "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=512 -print_final_stats=1 -detect_leaks=0 \
  -artifact_prefix="$work/" "$work/corpus" "$src/tests/fuzz/corpus"
