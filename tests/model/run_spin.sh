#!/bin/sh
# run_spin.sh PML WORK_DIR [MODE] - model-checks a Promela model of src/core with spin
# (src/core/collision_retry.pml, src/core/classic_teardown.pml).
#   MODE check  (default) exhaustive search of the correct protocol: must report errors: 0, no invalid
#               end states (deadlock freedom) and no assertion violation. ROUNDS from $UMN_SPIN_ROUNDS
#               (default 1: invalidations per invalidator; 2 takes minutes and ~2 GB).
#   MODE bugs   each seeded bug must be caught (errors > 0): shows the checker can fail. The bugs are
#               the "-DBUG_..." lines of the model's header comment.
# Exit: 0 pass, 1 fail, 77 when spin or a C compiler is missing (ctest: skipped).
set -u
pml=$1
work=$2
mode=${3:-check}
rounds=${UMN_SPIN_ROUNDS:-1}
command -v spin >/dev/null 2>&1 || { echo "run_spin: spin not installed" >&2; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || cc=gcc
mkdir -p "$work" && cd "$work" || exit 1
cp "$pml" model.pml

# verify NAME [spin -D options]: prints spin's summary; returns pan's error count through $errors.
verify() {
  name=$1; shift
  rm -f pan pan.* model.pml.trail
  spin -a "$@" model.pml >spin.log 2>&1 || { cat spin.log; echo "run_spin: spin -a failed" >&2; exit 1; }
  "$cc" -O2 -DSAFETY -DCOLLAPSE -o pan pan.c 2>cc.log || { cat cc.log; exit 1; }
  ./pan -m1000000 -w26 >"pan-$name.log" 2>&1
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "pan-$name.log")
  states=$(sed -n 's/^ *\([0-9e+.]*\) states, stored.*/\1/p' "pan-$name.log")
  [ -n "$errors" ] || { cat "pan-$name.log"; echo "run_spin: no result from pan" >&2; exit 1; }
  echo "spin $name: $states states, errors: $errors"
}

case "$mode" in
  check)
    verify "rounds=$rounds" -DROUNDS="$rounds"
    grep -E "violated|^pan:.*invalid end state|Search not completed" "pan-rounds=$rounds.log" && exit 1
    [ "$errors" -eq 0 ] || { cat "pan-rounds=$rounds.log"; exit 1; }
    ;;
  bugs)
    status=0
    bugs=$(sed -n 's/^ \*   -D\(BUG_[A-Z_]*\) .*/\1/p' model.pml)
    [ -n "$bugs" ] || { echo "run_spin: no -DBUG_ lines in $pml" >&2; exit 1; }
    for bug in $bugs; do
      verify "$bug" -DROUNDS=1 -D"$bug"
      if [ "$errors" -eq 0 ]; then
        echo "run_spin: the model did NOT catch $bug" >&2
        status=1
      else
        grep -m1 -E "violated|^pan:.*invalid end" "pan-$bug.log"
      fi
    done
    exit $status
    ;;
  *) echo "usage: run_spin.sh PML WORK_DIR [check|bugs]" >&2; exit 2 ;;
esac
