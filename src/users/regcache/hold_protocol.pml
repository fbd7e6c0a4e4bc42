/*
 * hold_protocol.pml - a Promela model of the registration cache's two store-buffering handshakes, with
 * x86-64 (TSO) store buffers, checked with spin (tests/model/run_spin.sh; ctest spin_regcache_hold).
 *
 * Why a model: both handshakes order a thread's store before its later load against another thread's
 * store and load. Without them the code is still correct on a sequentially consistent machine, so no
 * test run (nor ThreadSanitizer, which does not model store buffers) can fail on their absence; only a
 * store buffer can. Here each modelled store that the protocol relies on goes through a one-entry
 * store buffer that a `drainer` empties at any moment; a locked RMW or a membarrier empties it at once.
 *
 * What it models (src/users/regcache/regcache.cc, by function name):
 *   A. A hit parking a hold against an invalidation and the reclaimer that frees the region:
 *      lookup + park (first state check, hold store (plain: buffered), second state check) and the
 *      holder's use -> proctype hitter; chunk_invalidate's mark (CAS: locked) then purge ->
 *      release_region_locked -> process_orphans_locked (epoch::fence() = membarrier: empties every
 *      thread's store buffer; then the hold scan; dereg when no hold parks the region) -> reclaimer.
 *      Property A: a registration is never deregistered while a hit that returned it holds it.
 *   B. A miss publishing a pending region against an invalidation of its chunk:
 *      register_once_locked (publish = table exchange: locked; the handshake RMW; read_begin waits
 *      while the chunk's seq is the address space's odd seq; reg; accept CAS pending -> valid) -> miss;
 *      the core's invalidation (address space seq odd), chunk_invalidate (set_seq: a plain store,
 *      buffered; the handshake RMW; table load; mark) then the unmap and the end -> invalidator.
 *      Property B: once both are done, a valid region registered the memory as it is after the unmap.
 * Not modelled: other threads' holds, the put's raced path, retries, several regions (the order
 * arguments are per region); the core's own protocol (src/core/collision_retry.pml).
 *
 * Bugs it catches (tests/model/run_spin.sh runs each and expects an error):
 *   -DBUG_NO_RECHECK      park returns the hold without the second state check (property A)
 *   -DBUG_NO_FENCE        process_orphans_locked scans the holds without epoch::fence() (property A)
 *   -DBUG_NO_HANDSHAKE    chunk_invalidate loads the table without the handshake RMW (property B)
 */

#define VALID 1
#define INVALID 2
#define PENDING 3

/* A. */
byte state = VALID;   /* Region::state */
bit hold = 0;         /* the hitter's Hold::region == the region (memory) */
bit hold_buf = 0;     /* a store to hold waiting in the hitter's store buffer */
bit hold_val = 0;
bit dereged = 0;
bit holding = 0;      /* ghost: the hitter returned the region and has not put it */

/* B. */
bit odd_seq = 0;      /* the address space's seq is odd (an invalidation runs) */
bit sub_mark = 0;     /* the chunk's seq == the address space's odd seq (set_seq(cur_seq)) */
bit mark_buf = 0;     /* set_seq waiting in the invalidator's store buffer */
bit published = 0;    /* the pending region is in the table */
byte rstate = 0;      /* the miss's Region::state (0: not created) */
byte memory = 0;      /* version of the pages under the region */
byte registered = 255; /* version reg registered */

bit a_done = 0, b_miss_done = 0, b_inv_done = 0;

inline store_hold(v) { atomic { hold_buf = 1; hold_val = v } }
inline drain_hold() { if :: hold_buf -> hold = hold_val; hold_buf = 0 :: else -> skip fi }
inline drain_mark() { if :: mark_buf -> sub_mark = 1; mark_buf = 0 :: else -> skip fi }

proctype drainer() {
end:
  do
  :: atomic { hold_buf -> drain_hold() }
  :: atomic { mark_buf -> drain_mark() }
  od
}

proctype hitter() {
  if
  :: state == VALID ->                      /* lookup: the first check */
    store_hold(1);                          /* park: plain store */
#ifndef BUG_NO_RECHECK
    if
    :: state != VALID -> store_hold(0); goto out  /* park: the second check */
    :: else -> skip
    fi;
#endif
    holding = 1;
    assert(!dereged);                       /* the holder uses the registration */
    assert(!dereged);                       /* ... and still at its put */
    holding = 0;
    store_hold(0)                           /* put: release store */
  :: else -> skip
  fi;
out:
  a_done = 1
}

proctype reclaimer() {
  state = INVALID;                          /* chunk_invalidate's CAS (its own buffer is empty) */
#ifndef BUG_NO_FENCE
  atomic { drain_hold() };                  /* epoch::fence(): membarrier empties the hitter's buffer */
#endif
  if
  :: hold == 0 -> dereged = 1; assert(!holding)  /* no hold parks it: free_region_locked, dereg */
  :: else -> skip                           /* an orphan: the holder's put frees it (not modelled) */
  fi
}

proctype miss() {
  atomic { published = 1; rstate = PENDING };  /* publish_locked: exchange (locked) */
  /* the handshake RMW (locked): the miss's own buffer is empty already */
  atomic { !(odd_seq && sub_mark) };        /* read_begin: waits while the chunk's invalidation runs */
  registered = memory;                      /* reg */
  atomic {
    if
    :: rstate == PENDING -> rstate = VALID  /* accept: CAS pending -> valid */
    :: else -> skip                         /* invalidated meanwhile: abandon (dereg, retry: not modelled) */
    fi
  };
  b_miss_done = 1
}

proctype invalidator() {
  odd_seq = 1;                              /* the core: the address space's seq becomes odd */
  atomic { mark_buf = 1 };                  /* chunk_invalidate: umn_interval_set_seq(cur_seq), plain */
#ifndef BUG_NO_HANDSHAKE
  atomic { drain_mark() };                  /* the handshake RMW (locked): empties the buffer */
#endif
  atomic {
    if
    :: published && (rstate == PENDING || rstate == VALID) -> rstate = INVALID  /* table load, mark */
    :: else -> skip
    fi
  };
  memory = 1;                               /* the unmap replaces the pages */
  atomic { drain_mark(); odd_seq = 0 };     /* the end (takes the core's lock): seq even, waiters wake */
  b_inv_done = 1
}

init {
  atomic {
    run drainer();
    run hitter();
    run reclaimer();
    run miss();
    run invalidator()
  };
  (a_done && b_miss_done && b_inv_done);
  assert(rstate != VALID || registered == memory)  /* property B */
}
