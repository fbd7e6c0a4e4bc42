#!/bin/sh
# mutants.sh [SOURCE_DIR] - shows that the registration cache's tests catch real bugs: for each mutant
# below, breaks one line of src/users/regcache/regcache.cc in a copy of the sources, rebuilds
# umn_regcache_tests there (one build directory, incremental per mutant) and expects the named tests to
# FAIL (each run UMN_MUTANT_RUNS times, default 1; killed if any run fails).
# Prints one line per mutant; exit 1 if any mutant survives. UMN_MUTANTS=REGEX runs only the mutants whose
# name matches. Not part of CI (a minute or two per mutant on 2 cores); run it after changing the hit,
# hold or miss protocol.
#
# Not listed, because no run on x86-64 (nor a TSan run: TSan does not model store buffering) can tell
# them from the original; src/users/regcache/hold_protocol.pml checks them on a model with store buffers
# (tests: spin_regcache_hold, spin_regcache_hold_catches_bugs):
#   - the `handshake` RMWs of chunk_invalidate and register_once_locked (notifier vs miss), and
#     epoch::fence() in process_orphans_locked (reclaimer vs a hit's hold store): each orders a store
#     before a load against another thread's store and load (store buffering). On x86-64 the store
#     buffer drains within nanoseconds, while the two sides are microseconds apart (a system call, the
#     cache lock) and each side has other full barriers (the table exchange, liburcu-bp's read lock).
#   - the second state check of lookup's counted-reference path (holds all taken): the reference is an
#     inc-not-zero on the region's counter, so the region cannot be deregistered under it; without the
#     check the get is ordered at its first check instead (an invalidation beginning between the two
#     follows the get): the same observable behaviour.
set -u
src=$(cd "${1:-$(dirname "$0")/../../..}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
survivors=0
file=src/users/regcache/regcache.cc
# name | gtest filter that must fail | sed expression on $file (each must change the file)
mutants='
hit_skips_hold_recheck|RegCachePausedHit.*:RegCacheHoldStress.*|s/  if (region->state.load(std::memory_order_seq_cst) != kValid) {/  if (false) {/
miss_accepts_unconditionally|RegCacheSim.InvalidationDuringRegRetries|s/if (!region->state.compare_exchange_strong(pending, kValid, std::memory_order_release)) {/region->state.store(kValid); (void)pending; if (false) {/
free_ignores_holds|RegCacheHold.*:RegCacheHoldStress.*|s/if (region->parked.compare_exchange_strong(never, kClosed, std::memory_order_seq_cst)) {/if ((void)never, true) {/
'
mkdir -p "$tmp/m"
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$tmp/m" -xf -
cmake -S "$tmp/m" -B "$tmp/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_DEBUG_LEVEL=1 -DUMN_BUILD_BENCH=OFF \
  -DUMN_BUILD_EXAMPLES=OFF -DUMN_BUILD_TOOLS=OFF >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }

while IFS='|' read -r name filter expr; do
  [ -n "$name" ] || continue
  if [ -n "${UMN_MUTANTS:-}" ] && ! echo "$name" | grep -Eq "$UMN_MUTANTS"; then continue; fi
  sed -i "$expr" "$tmp/m/$file"
  if cmp -s "$src/$file" "$tmp/m/$file"; then echo "mutant $name: sed did not apply"; exit 1; fi
  cmake --build "$tmp/b" --target umn_regcache_tests -j"${UMN_MUTANT_JOBS:-2}" >"$tmp/build.log" 2>&1 \
    || { tail -n 20 "$tmp/build.log"; echo "mutant $name: build failed"; exit 1; }
  killed=0
  run=0
  while [ "$run" -lt "${UMN_MUTANT_RUNS:-1}" ] && [ "$killed" = 0 ]; do
    timeout 600 "$tmp/b/tests/umn_regcache_tests" --gtest_filter="$filter" >"$tmp/out" 2>&1 || killed=1
    run=$((run + 1))
  done
  if [ "$killed" = 1 ]; then
    echo "mutant $name: killed -- failed: $(sed -n 's/^\[  FAILED  \] \([A-Za-z][^ ]*\).*/\1/p' "$tmp/out" | sort -u | tr '\n' ' ')"
  else
    echo "mutant $name: SURVIVED ($filter passed)"
    survivors=$((survivors + 1))
  fi
  cp "$src/$file" "$tmp/m/$file"  # back to the original for the next mutant
done <<EOF_MUTANTS
$mutants
EOF_MUTANTS
exit $((survivors > 0))
