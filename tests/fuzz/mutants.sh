#!/bin/sh
# mutants.sh [SOURCE_DIR] - shows that the differential fuzzer catches real bugs: for each mutant below,
# breaks one line of src/core in a copy of the sources, rebuilds the replay harness there (one CMake
# build directory, incremental per mutant) and expects the corpus + 3000 random inputs to FAIL. The
# first seven break interval notifiers, the others classic notifiers and get/put. Prints one line per
# mutant; exit 1 if any mutant survives. Not part of CI (about a minute per mutant on 2 cores); run it
# after changing the harness or the model.
set -u
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
survivors=0
# name | file | sed expression (each must change the file)
mutants='
epoch_start_no_odd|src/core/itree_invalidate.cc|s/seq |= 1;/seq |= 0;/
partial_insert_not_odd|src/core/interval_notifier.cc|s/seq |= 1;/seq |= 0;/
remove_not_deferred|src/core/interval_notifier.cc|s/if ((seq \& 1) != 0) {/if (false) {/
end_keeps_epoch_open_early|src/core/itree_invalidate.cc|s/if (subs.active > 0 || (seq \& 1) == 0) {/if (subs.active > 1 || (seq \& 1) == 0) {/
finish_reverse_order|src/core/itree_invalidate.cc|s/    \*tail_ = finish;/    finish->link = head_; head_ = finish; if (tail_ == \&head_) tail_ = \&finish->link; return;/
nonblock_no_stop|src/core/itree_invalidate.cc|s/^    break;$/    continue;/
insert_idle_seq_equal|src/core/interval_notifier.cc|s/set_seq_relaxed(sub, seq - 1);/set_seq_relaxed(sub, seq);/
classic_nonblock_fail_no_ends|src/core/classic.cc|s/  call_ends(classic_first(subs.classic), range);/  (void)range;/
classic_end_skips_newest|src/core/classic.cc|s/  first_ = classic_first(subs->classic);/  first_ = classic_first(subs->classic); if (first_ != nullptr) first_ = classic_next(first_);/
classic_teardown_release_twice|src/core/classic.cc|s/if (classic_claim_release(sub) \&\& sub->ops->release != nullptr)/if (sub->ops->release != nullptr)/
test_young_no_stop|src/core/classic.cc|s/return query_walk(mm, true,/return query_walk(mm, false,/
unregister_no_release|src/core/registration.cc|s/  if (classic_claim_release(sub) \&\& sub->ops->release != nullptr) {/  if (false) {/
get_ignores_ops|src/core/registration.cc|s/if (sub->ops != ops || (flags_of(sub)/if ((sub->ops == nullptr \&\& ops == nullptr) || (flags_of(sub)/
put_frees_early|src/core/registration.cc|s/if (--sub->users != 0) return false;/if (--sub->users > 1) return false;/
put_last_keeps_linked|src/core/registration.cc|s/  classic_unlink_locked(sub);  \/\/ harmless/  \/\/ harmless/
'
mkdir -p "$tmp/m"
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$tmp/m" -xf -
cmake -S "$tmp/m" -B "$tmp/b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_DEBUG_LEVEL=0 -DUMN_BUILD_BENCH=OFF \
  -DUMN_BUILD_EXAMPLES=OFF -DUMN_BUILD_TOOLS=OFF >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
while IFS='|' read -r name file expr; do
  [ -n "$name" ] || continue
  sed -i "$expr" "$tmp/m/$file"
  if cmp -s "$src/$file" "$tmp/m/$file"; then echo "mutant $name: sed did not apply"; exit 1; fi
  cmake --build "$tmp/b" --target umn_fuzz_replay -j"${UMN_MUTANT_JOBS:-2}" >"$tmp/build.log" 2>&1 \
    || { tail -n 20 "$tmp/build.log"; echo "mutant $name: build failed"; exit 1; }
  if timeout 300 "$tmp/b/tests/fuzz/umn_fuzz_replay" "$src/tests/fuzz/corpus" --random 3000 --seed 20240906 \
      >"$tmp/out" 2>&1; then
    echo "mutant $name: SURVIVED (the fuzzer did not notice)"
    survivors=$((survivors + 1))
  else
    echo "mutant $name: killed -- $(grep -- '-->' "$tmp/out" | head -n 1)"
  fi
  cp "$src/$file" "$tmp/m/$file"  # back to the original for the next mutant
done <<EOF_MUTANTS
$mutants
EOF_MUTANTS
exit $((survivors > 0))
