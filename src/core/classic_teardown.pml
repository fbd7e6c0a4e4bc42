/*
 * classic_teardown.pml - a Promela model of the classic notifiers' teardown protocol, checked with spin.
 *
 * What it models (src/core, function names):
 *   classic.cc        classic_release: the fast path on an empty list (classic_empty), the walk that
 *                     claims and calls ->release inside one read-side section, unlink_all_locked, and
 *                     the final synchronize                            -> proctype teardown
 *                     classic_claim_release: one atomic test-and-set   -> inline claim()
 *                     classic_invalidate_start / ClassicEndWalk / query_walk: a lock-free walk inside
 *                     a read-side section                              -> proctype walker
 *   registration.cc   unregister_notifier: read-side section, claim, ->release, unlink under the lock,
 *                     synchronize                                      -> proctype unregister
 *                     umn_notifier_put: the last put unlinks under the lock and queues the free behind
 *                     a grace period (call_rcu)                        -> proctypes putter, freer
 *   rcu.cc            urcu-bp: a reader flag and an exit counter per thread; synchronize waits, for every
 *                     thread inside a section when it looks, until that thread has left it
 *                                                                      -> inline synchronize()
 * Two notifiers: notifier 0 is a plain registration that one thread unregisters, notifier 1 comes from
 * umn_notifier_get and another thread drops its last reference; a third thread walks the list ROUNDS
 * times (an invalidation or a young query), and the teardown (umn_notifier_release) runs at any point.
 * Subscriptions::lock is the atomic blocks around list changes (no callback runs under it).
 * Not modelled: weak memory (spin is sequentially consistent; the acquire/release pairs are argued in
 * classic.hpp), the list's order and its next words (a walker sees the notifiers linked when it looks),
 * registration (the notifiers are linked before the threads start), interval notifiers.
 *
 * Properties (spin -a; cc -DSAFETY pan.c; ./pan):
 *   T1 when the teardown returns, every ->release that was claimed has finished, and notifier 0 (still
 *      registered when the teardown began, or unregistered with its ->release) has had its ->release
 *      (umn.h: "when any release returns, every RELEASE and ->release has run").
 *   T2 ->release runs at most once per registration.
 *   T3 no callback runs on a notifier after its unregister returned, nor after its free_notifier.
 *   T4 deadlock freedom: every process terminates (spin reports invalid end states otherwise).
 * Bugs it catches (tests/model/run_spin.sh PML DIR bugs runs each -DBUG_ listed here, expects an error):
 *   -DBUG_CLAIM_OUTSIDE_SECTION  unregister claims ->release before entering its read-side section
 *                                (the issue 12 defect: T1)
 *   -DBUG_TEARDOWN_NO_SYNC       teardown returns without its final synchronize (T1)
 *   -DBUG_UNREGISTER_NO_CLAIM    unregister calls ->release without claiming it (T2)
 *   -DBUG_FREE_NO_GRACE          the last put's free does not wait for a grace period (T3)
 */

#ifndef ROUNDS
#define ROUNDS 2
#endif

/* readers (urcu-bp threads) */
#define R_UNREG 0
#define R_TEARDOWN 1
#define R_WALKER 2
#define NR 3

bit rdr[NR];          /* inside a read-side section */
byte gen[NR];         /* read_unlock count */

bit linked[2];        /* on the classic list */
bit claimed[2];       /* kClassicReleaseClaimed */
byte release_calls[2];
bit release_done[2];  /* the ->release call returned */
bit unreg_done = 0;   /* umn_notifier_unregister(notifier 0) returned */
bit free_queued = 0;  /* the last put queued free_notifier (call_rcu) */
bit freed = 0;        /* notifier 1's free_notifier ran */
bit teardown_done = 0;

inline read_lock(me) { rdr[me] = 1 }
inline read_unlock(me) { atomic { rdr[me] = 0; gen[me]++ } }

/* Waits until every thread other than `me` that is inside a section now has left it. */
inline synchronize(me) {
  i = 0;
  do
  :: i < NR ->
     if
     :: atomic { i != me && rdr[i] -> g = gen[i] }; (gen[i] != g)
     :: else -> skip
     fi;
     i++
  :: else -> break
  od
}

inline claim(n, got) { atomic { got = !claimed[n]; claimed[n] = 1 } }

inline call_release(n) {
  assert(release_calls[n] == 0);  /* T2 */
  release_calls[n]++;
  release_done[n] = 1
}

proctype unregister() {
  byte i, g; bit got;
#ifdef BUG_CLAIM_OUTSIDE_SECTION
  claim(0, got);
  read_lock(R_UNREG);
#else
  read_lock(R_UNREG);
  claim(0, got);
#endif
#ifdef BUG_UNREGISTER_NO_CLAIM
  got = 1;
#endif
  if
  :: got -> call_release(0)
  :: else -> skip
  fi;
  read_unlock(R_UNREG);
  linked[0] = 0;          /* under Subscriptions::lock */
  synchronize(R_UNREG);
  unreg_done = 1
}

proctype putter() {
  linked[1] = 0;          /* the last put, under Subscriptions::lock */
  free_queued = 1         /* call_rcu(free_after_grace_period) */
}

proctype freer() {
  byte i, g;
  free_queued;
#ifndef BUG_FREE_NO_GRACE
  synchronize(NR);        /* liburcu's call_rcu thread is no reader */
#endif
  freed = 1
}

proctype walker() {
  byte round = 0, n;
  do
  :: round < ROUNDS ->
     read_lock(R_WALKER);
     n = 0;
     do
     :: n < 2 ->
        if
        :: linked[n] ->
           assert(!(n == 0 && unreg_done) && !(n == 1 && freed))  /* T3 */
        :: else -> skip
        fi;
        n++
     :: else -> break
     od;
     read_unlock(R_WALKER);
     round++
  :: else -> break
  od
}

proctype teardown() {
  byte i, g, n; bit got;
  if
  :: !linked[0] && !linked[1] -> skip   /* classic_empty: nothing to do */
  :: else ->
     read_lock(R_TEARDOWN);
     n = 0;
     do
     :: n < 2 ->
        if
        :: linked[n] ->
           claim(n, got);
           if
           :: got -> call_release(n)
           :: else -> skip
           fi
        :: else -> skip
        fi;
        n++
     :: else -> break
     od;
     read_unlock(R_TEARDOWN);
     atomic { linked[0] = 0; linked[1] = 0 }   /* unlink_all_locked */
#ifndef BUG_TEARDOWN_NO_SYNC
     synchronize(R_TEARDOWN)
#endif
  fi;
  /* T1 */
  assert(release_done[0] && (!claimed[1] || release_done[1]));
  teardown_done = 1
}

init {
  atomic {
    linked[0] = 1; linked[1] = 1;
    run unregister(); run putter(); run freer(); run walker(); run teardown()
  }
}
