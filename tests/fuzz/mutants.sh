#!/bin/sh
# mutants.sh [SOURCE_DIR] - shows that the fuzzer catches real bugs: for each mutant below, breaks one
# line of src/core in a copy of the sources, rebuilds the replay harness there (one CMake build directory
# per kind, incremental per mutant) and expects it to FAIL.
#   plain mutants (RelWithDebInfo build): the corpus + 3000 random differential inputs, then the
#     multi-threaded classic mode (--threads 300, tests/fuzz/threads.hpp); killed if either fails. The
#     first seven break interval notifiers, the others classic notifiers, get/put and teardown.
#   tsan mutants (ThreadSanitizer build): weakened acquire/release orders of the classic list and its
#     teardown, which no sequentially consistent run can see; the --threads mode under TSan must report
#     a race (or fail a check).
# Prints one line per mutant; exit 1 if any mutant survives. UMN_MUTANTS=REGEX runs only the mutants whose
# name matches. Not part of CI (about a minute per mutant on 2 cores, plus one TSan build of libumn); run
# it after changing the harness, the model or the code a mutant names.
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
unregister_no_release|src/core/registration.cc|s/    if (classic_claim_release(sub) \&\& sub->ops->release != nullptr) sub->ops->release(sub, mm);/    if (false) sub->ops->release(sub, mm);/
get_ignores_ops|src/core/registration.cc|s/if (sub->ops != ops || (flags_of(sub)/if ((sub->ops == nullptr \&\& ops == nullptr) || (flags_of(sub)/
put_frees_early|src/core/registration.cc|s/if (--sub->users != 0) return false;/if (--sub->users > 1) return false;/
put_last_keeps_linked|src/core/registration.cc|s/  classic_unlink_locked(sub);  \/\/ harmless/  \/\/ harmless/
unregister_claims_outside_section|src/core/registration.cc|s/^    rcu::ReadGuard guard;$/    const bool claimed = classic_claim_release(sub);  rcu::ReadGuard guard;/;s/    if (classic_claim_release(sub) \&\& sub->ops->release != nullptr) sub->ops->release(sub, mm);/    if (claimed \&\& sub->ops->release != nullptr) sub->ops->release(sub, mm);/
teardown_no_synchronize|src/core/classic.cc|s/^  rcu::synchronize();  \/\/ releases started/  \/\/ releases started/
'
# name | file | sed expression: orders only a TSan run can see weakened. Not listed, because no run can
# tell them from the original (argued where they stand): classic_empty's acquire (umn_notifier_release
# takes Subscriptions::lock again before it returns) and rcu::read_unlock's TSan release edge (an
# unregister's unlink takes the lock right after its section, before the teardown's last lock).
tsan_mutants='
link_publish_relaxed|src/core/classic.cc|s/head.store(reinterpret_cast<uintptr_t>(sub), std::memory_order_release);/head.store(reinterpret_cast<uintptr_t>(sub), std::memory_order_relaxed);/
walk_first_relaxed|src/core/classic.hpp|s/(list.head).load(std::memory_order_acquire));/(list.head).load(std::memory_order_relaxed));/
'
mkdir -p "$tmp/m"
tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$tmp/m" -xf -

# configure KIND DIR [cmake options]: a build directory of the mutated copy.
configure() {
  cmake -S "$tmp/m" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUMN_DEBUG_LEVEL=0 -DUMN_BUILD_BENCH=OFF \
    -DUMN_BUILD_EXAMPLES=OFF -DUMN_BUILD_TOOLS=OFF "$@" >"$tmp/cmake-$1.log" 2>&1 \
    || { cat "$tmp/cmake-$1.log"; exit 1; }
}

# kills_plain / kills_tsan BUILD: succeeds when the mutant is caught.
kills_plain() {
  ! { timeout 300 "$1/tests/fuzz/umn_fuzz_replay" "$src/tests/fuzz/corpus" --random 3000 --seed 20240906 \
        >"$tmp/out" 2>&1 &&
      timeout 300 "$1/tests/fuzz/umn_fuzz_replay" --threads 300 --seed 20240906 >>"$tmp/out" 2>&1; }
}
kills_tsan() {
  ! TSAN_OPTIONS="halt_on_error=1:exitcode=66:suppressions=$src/tests/tsan.supp" \
    timeout 600 "$1/tests/fuzz/umn_fuzz_replay" --threads 300 --seed 20240906 >"$tmp/out" 2>&1
}

# run_mutants KIND BUILD LIST
run_mutants() {
  while IFS='|' read -r name file expr; do
    [ -n "$name" ] || continue
    if [ -n "${UMN_MUTANTS:-}" ] && ! echo "$name" | grep -Eq "$UMN_MUTANTS"; then continue; fi
    sed -i "$expr" "$tmp/m/$file"
    if cmp -s "$src/$file" "$tmp/m/$file"; then echo "mutant $name: sed did not apply"; exit 1; fi
    cmake --build "$2" --target umn_fuzz_replay -j"${UMN_MUTANT_JOBS:-2}" >"$tmp/build.log" 2>&1 \
      || { tail -n 20 "$tmp/build.log"; echo "mutant $name: build failed"; exit 1; }
    if "kills_$1" "$2"; then
      echo "mutant $name: killed -- $(grep -m1 -E -- '-->|WARNING: ThreadSanitizer' "$tmp/out")"
    else
      echo "mutant $name: SURVIVED (the fuzzer did not notice)"
      survivors=$((survivors + 1))
    fi
    cp "$src/$file" "$tmp/m/$file"  # back to the original for the next mutant
  done <<EOF_MUTANTS
$3
EOF_MUTANTS
}

configure plain "$tmp/b"
run_mutants plain "$tmp/b" "$mutants"
configure tsan "$tmp/t" -DUMN_SANITIZE=thread
run_mutants tsan "$tmp/t" "$tsan_mutants"
exit $((survivors > 0))
