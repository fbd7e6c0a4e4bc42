#!/bin/sh
# mutants.sh [SOURCE_DIR] - shows that the differential fuzzer catches real bugs: for each mutant below,
# copies the sources, breaks one line of src/core, builds the replay harness with g++ and expects the
# corpus + 3000 random inputs to FAIL. Prints one line per mutant; exit 1 if any mutant survives.
# Not part of CI (several builds); run it after changing the harness or the model.
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
'
while IFS='|' read -r name file expr; do
  [ -n "$name" ] || continue
  rm -rf "$tmp/m" && mkdir -p "$tmp/m" && cp -r "$src/include" "$src/src" "$src/tests" "$tmp/m/"
  sed -i "$expr" "$tmp/m/$file"
  if cmp -s "$src/$file" "$tmp/m/$file"; then echo "mutant $name: sed did not apply"; exit 1; fi
  (cd "$tmp/m" && g++ -std=c++20 -O1 -Iinclude -Isrc -Itests/model -DUMN_DEBUG_LEVEL=0 \
     tests/fuzz/harness.cc tests/fuzz/replay_main.cc tests/model/model.cc src/base/*.cc src/itree/*.cc \
     src/core/*.cc -lurcu-bp -lpthread -o replay) || { echo "mutant $name: build failed"; exit 1; }
  if timeout 120 "$tmp/m/replay" "$src/tests/fuzz/corpus" --random 3000 --seed 20240906 >"$tmp/out" 2>&1; then
    echo "mutant $name: SURVIVED (the fuzzer did not notice)"
    survivors=$((survivors + 1))
  else
    echo "mutant $name: killed -- $(grep -- '-->' "$tmp/out" | head -n 1)"
  fi
done <<EOF_MUTANTS
$mutants
EOF_MUTANTS
exit $((survivors > 0))
