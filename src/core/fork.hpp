// fork.hpp - umn across fork() (issue 12 defect 1): the one set of pthread_atfork handlers of libumn, and
// the order in which they take every lock a forked child may need. docs/locking.md, "fork", has the why.
//
// The child of a multithreaded process has one thread: every lock another thread held at the clone stays
// held forever, and every range another thread had open never ends. So around every fork (the event
// source's steps are those of the process hooks, src/sources/process/fork.cc):
//   prepare  1. block the forking thread's signals (a handler's munmap would take the locks it holds)
//            2. source->enter() (ForkSource, core/query.hpp): waits for an installation in progress, takes
//               the source's own lock; returns the process address space when the source hands it out
//            3. take ClassicList::get_lock of the process address space (when the source hands it out,
//               its subscriptions are published first, so none can appear and be locked before the
//               clone; else only existing ones are locked)
//            4. source->start(mm): start the fork event's ranges (a registration under get_lock waits for
//               ranges, so get_lock comes first)
//            5. liburcu's prepare (rcu::fork_prepare: its grace-period and registry locks)
//            6. take Subscriptions::lock (a range ending inside a read-side section takes it: after 5)
//   parent / child, in reverse (the child first abandons a diagnostic-hook write a dead thread began:
//   diag_fork_child, base/check.hpp, so that nothing below waits for it in report()):
//            6. release Subscriptions::lock; in the child first forget what the dead threads left: their
//               open ranges (the epoch they kept odd closes, deferred inserts/removes are applied), their
//               bare ranges, and their waits on epoch_ended (a fresh condition variable: glibc's
//               broadcast would wait for waiters that no longer exist)
//            5. liburcu's parent/child
//            4. source->finish(child): end the fork ranges
//            3. release get_lock;  2. source->leave();  1. restore the signal mask
//
// Locking: as above; lock order get_lock, then Subscriptions::lock (as umn_notifier_get takes them).
// Lifetime: the source is static; mm is umn_mm_process(), never freed.
// Context: fork() must not be called from inside alloc_notifier (get_lock held: self-deadlock), nor
//   from a classic callback that waits for another thread's registration or read_begin.
// Memory ordering: the locks' own; the source pointer is published with release, read with acquire.
#pragma once

#include "core/query.hpp"
#include "umn/umn.h"

namespace umn::detail {

// This thread's ranges open on the process address space: counted where the core counts them (active in
// itree_invalidate.cc, bare_ranges in invalidate.cc), so that a child keeps exactly the forking thread's.
struct OwnProcessRanges {
  long active = 0;  // counted in Subscriptions::active of the process address space
  long bare = 0;    // counted in umn_mm::bare_ranges of the process address space
};
[[gnu::tls_model("initial-exec")]] extern thread_local OwnProcessRanges t_own_process_ranges;

}  // namespace umn::detail
