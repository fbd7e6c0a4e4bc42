/*
 * collision_retry.pml - a Promela model of umn's collision-retry protocol, checked with spin.
 *
 * What it models (src/core, by function name; no line numbers, which go stale):
 *   interval_notifier.cc  link_locked                  -> inline insert()
 *                         unlink_locked and
 *                         umn_interval_notifier_remove -> inline remove()
 *                         umn_interval_read_begin: the lock-free fast path (load the notifier's seq,
 *                         then the address space's seq) and the locked wait
 *                                                       -> inline read_begin()
 *                         umn_interval_read_retry / umn_interval_set_seq -> nseq reads / writes
 *   itree_invalidate.cc   epoch_start, the walk and the two passes of itree_invalidate, the -EAGAIN
 *                         path, itree_invalidate_end with apply_deferred
 *                                                       -> proctype invalidator, inline epoch_end()
 *   examples/fault_retry.c the driver side: user lock around set_seq + zap and around read_retry +
 *                         install                       -> proctype driver
 * One interval notifier (and "another" one, elsewhere in the tree, that a range may hit: that freezes the
 * tree without calling ours, which is how an insert gets deferred); two concurrent invalidators doing ROUNDS invalidations each, every one
 * nondeterministically covering the notifier or not, one-pass or two-pass, or failing non-blockably;
 * and one driver that inserts the notifier (at any point: idle, partially excluded, or frozen ->
 * deferred), faults through read_begin / read_retry with up to MAX_TRIES attempts, and removes it
 * (deferred + waiting when the tree is frozen, cancelling when the insert is still deferred).
 * The condition-variable waits are modelled as "release the lock; atomically re-take it once the
 * predicate holds", which is what a predicate wait under the lock guarantees.
 * Not modelled: weak memory (spin is sequentially consistent; the acquire/release pairs are argued in
 * interval_notifier.cc's header), the tree shape (one notifier), classic notifiers (classic_teardown.pml).
 *
 * Properties (spin -a; cc -DSAFETY pan.c; ./pan):
 *   P1 safety: no translation installed from pages read before an invalidation survives that
 *      invalidation's end: `fresh_from` (ghost) is raised to the new page version when a covering
 *      invalidation ends; asserted when an invalidation ends and when the driver installs.
 *   P2 once remove() has returned, no callback runs for the notifier (I-9).
 *   P3 deadlock freedom: every process terminates (spin reports invalid end states otherwise).
 * Bugs it catches (tests/model/run_spin.sh runs each and expects an error):
 *   -DBUG_READ_ORDER      read_begin loads the address space's seq before the notifier's seq
 *   -DBUG_REMOVE_NO_WAIT  remove returns without waiting for the frozen epoch to end
 *   -DBUG_NO_DEFER_INSERT an insert during a frozen epoch sets the idle seq (readers do not wait)
 *   -DBUG_REMOVE_ALWAYS_WAITS remove also waits for an epoch when none is open (a deadlock: P3)
 */

#ifndef ROUNDS
#define ROUNDS 2
#endif
#define MAX_TRIES 3

/* umn_interval_notifier::state */
#define NEVER 0
#define IN_TREE 1
#define PENDING_INSERT 2
#define PENDING_REMOVE 3
#define REMOVED 4

byte seq = 2;         /* Subscriptions::invalidate_seq */
byte nactive = 0;      /* Subscriptions::active */
bit lock = 0;         /* Subscriptions::lock */
byte state = NEVER;   /* umn_interval_notifier::state */
byte nseq = 0;        /* umn_interval_notifier::invalidate_seq */
bit ulock = 0;        /* the driver's user lock */
byte pte = 0;         /* version of the CPU page-table entries under the notifier */
bit dev_mapped = 0;   /* the device holds a translation */
byte dev_version = 0; /* the page version that translation was built from */
byte fresh_from = 0;  /* ghost: every live translation must be at least this version */
bit removed = 0;      /* ghost: remove() has returned */

inline acquire(l) { atomic { l == 0 -> l = 1 } }
inline unlock(l) { l = 0 }

/* Condition-variable wait, called and returning with the lock held: epoch_ended.wait(pred). */
inline wait_seq_changed_locked(w) {
	if
	:: seq != w -> skip
	:: else -> lock = 0; atomic { lock == 0 && seq != w -> lock = 1 }
	fi
}

/* apply_deferred(): the single notifier's pending insert or remove. */
inline apply_deferred() {
	if
	:: state == PENDING_INSERT -> state = IN_TREE
	:: state == PENDING_REMOVE -> state = REMOVED
	:: else -> skip
	fi
}

/* itree_invalidate_end(). */
inline epoch_end() {
	acquire(lock);
	nactive--;
	if
	:: nactive == 0 && (seq & 1) -> seq++; apply_deferred()
	:: else -> skip
	fi;
	unlock(lock)
}

proctype invalidator() {
	byte round = 0, cur, v;
	bit covers, other, hit, fail, two_pass;
	do
	:: round < ROUNDS ->
		round++;
		if :: covers = 1 :: covers = 0 fi;
		if :: other = 1 :: other = 0 fi;   /* hits another notifier: freezes the tree too */
		if :: fail = 0; two_pass = 0 :: fail = 0; two_pass = 1 :: fail = 1; two_pass = 0 fi;
		/* epoch_start(): active++, first_overlap, seq |= 1 on a hit, cur_seq = seq */
		acquire(lock);
		nactive++;
		hit = covers && (state == IN_TREE || state == PENDING_REMOVE);
		if :: (hit || other) && (seq & 1) == 0 -> seq = seq | 1 :: else -> skip fi;
		cur = seq;
		unlock(lock);
		if
		:: hit && fail ->
			/* non-blockable callback returns false: -EAGAIN, the range is ended at once */
			assert(!removed);
			epoch_end();
			goto next
		:: hit && !fail && !two_pass ->
			/* invalidate(): under the user lock, set_seq then zap */
			assert(!removed);
			acquire(ulock); nseq = cur; dev_mapped = 0; unlock(ulock)
		:: hit && !fail && two_pass ->
			/* invalidate_start() sets the seq and starts the zap; invalidate_finish() completes it */
			assert(!removed);
			acquire(ulock); nseq = cur; unlock(ulock);
			assert(!removed);
			acquire(ulock); dev_mapped = 0; unlock(ulock)
		:: !hit -> skip
		fi;
		/* between range_start and range_end the mm changes the pages the range covers */
		if :: covers && !fail -> atomic { v = pte; pte++ } :: else -> skip fi;
		epoch_end();
		if
		:: covers && !fail ->
			atomic {
				if :: fresh_from < v + 1 -> fresh_from = v + 1 :: else -> skip fi;
				assert(!(dev_mapped && dev_version < fresh_from))   /* P1 */
			}
		:: else -> skip
		fi;
next:		skip
	:: else -> break
	od
}

/* link_locked() */
inline insert() {
	acquire(lock);
	if
	:: nactive > 0 && (seq & 1) ->
#ifdef BUG_NO_DEFER_INSERT
		state = IN_TREE; nseq = seq - 2
#else
		state = PENDING_INSERT; nseq = seq
#endif
	:: nactive > 0 && (seq & 1) == 0 -> seq = seq | 1; nseq = seq; state = IN_TREE
	:: else -> nseq = seq - 1; state = IN_TREE
	fi;
	unlock(lock)
}

/* umn_interval_read_begin(): lock-free unless this notifier is in the open epoch. */
inline read_begin(s) {
#ifdef BUG_READ_ORDER
	t = seq;
	s = nseq;
#else
	s = nseq;     /* acquire load of sub->invalidate_seq */
	t = seq;      /* acquire load of subs.invalidate_seq */
#endif
	if
	:: t != s -> skip
	:: else -> acquire(lock); wait_seq_changed_locked(s); unlock(lock)
	fi
}

/* umn_interval_notifier_remove() with unlink_locked() */
inline remove() {
	acquire(lock);
	if
	:: state == PENDING_INSERT -> state = REMOVED
	:: state != PENDING_INSERT && (seq & 1) ->
		state = PENDING_REMOVE;
		w = seq;
#ifndef BUG_REMOVE_NO_WAIT
		wait_seq_changed_locked(w)
#endif
	:: else ->
		state = REMOVED;
#ifdef BUG_REMOVE_ALWAYS_WAITS
		w = seq;
		wait_seq_changed_locked(w)
#endif
		skip
	fi;
	unlock(lock);
	removed = 1
}

proctype driver() {
	byte s, t, w, snap, tries = 0;
	insert();
	do
	:: tries < MAX_TRIES ->
		tries++;
		read_begin(s);
		snap = pte;               /* read the pages (no lock held) */
		acquire(ulock);
		if
		:: nseq != s -> unlock(ulock)   /* read_retry() true: drop what was read, retry */
		:: else ->
			atomic {
				assert(snap >= fresh_from);  /* P1 at install */
				dev_mapped = 1; dev_version = snap
			}
			unlock(ulock);
			break
		fi
	:: else -> break
	od;
	/* teardown: the driver stops using its translation, then stops watching the range */
	acquire(ulock); dev_mapped = 0; unlock(ulock);
	remove()
}

init {
	atomic {
		run invalidator();
		run invalidator();
		run driver()
	}
}
