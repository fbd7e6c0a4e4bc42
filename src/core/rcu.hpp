// rcu.hpp - umn's only door to userspace RCU: liburcu's "bulletproof" flavour (urcu-bp).
//
// Why urcu-bp (and not urcu-memb, urcu-qsbr, urcu-signal, urcu-mb):
//   - Classic callbacks may sleep (blockable ranges, ->release), so the read side must allow blocking.
//     Every liburcu flavour does (a blocked reader only delays grace periods), but QSBR would also make
//     every application thread announce quiescent states, which a library cannot demand.
//   - memb / signal / mb need rcu_register_thread() on every thread that reads. umn's readers are the
//     application's threads (whoever calls range_start, the young queries, the process hooks), which a
//     library cannot register. urcu-bp registers a thread lazily on its first read_lock and is
//     signal-safe, so the process hooks may invalidate from a signal handler or from inside malloc.
//   - Cost: the read side is a function call plus a store to a thread-local counter (no lock, no shared
//     write); the first read_lock of a thread registers it (one allocation, once per thread).
//   - liburcu is linked PRIVATE and called through its exported functions (not the _LGPL_SOURCE
//     inlines), so nothing of liburcu leaks into umn's headers or users.
//
// Locking: none of its own. Nests inside and outside Subscriptions::lock (read_lock/unlock never block).
// Lifetime: memory unlinked while readers may hold it is freed only after synchronize() or from a call()
//   callback. barrier() waits for every callback queued before it.
// Context:
//   read_lock/read_unlock: any thread, nestable, may sleep in between.
//   synchronize(), barrier(): may sleep; never inside a read-side section (deadlock) nor from a call()
//   callback (barrier from there deadlocks).
//   call(): any context, including inside a read-side section; the callback runs later on liburcu's
//   call_rcu thread and must not sleep for long.
// fork(): umn's pthread_atfork handlers (core/fork.cc, registered at load) call fork_prepare/_parent/
//   _child to quiesce liburcu around a fork, so the child has a working grace-period machinery and
//   call_rcu thread (without them a child's synchronize() or barrier() waits forever for a lock or a
//   call_rcu thread of the parent's that does not exist in the child). The prepare handler may wait for a
//   grace period in progress on another thread, so a thread must not call fork() while holding a lock
//   that a classic callback takes. From inside a read-side section (e.g. a classic callback) prepare
//   takes nothing (a grace period in progress may wait for this very section, holding the lock prepare
//   would take); the child then releases what the dead threads held and re-registers the forking thread's
//   reader with its nesting (rcu.cc, repair_child_of_section). Lost in that child: the callbacks the
//   call_rcu thread had already taken off its queue (it holds them on its own stack while its grace
//   period waits for the forking thread's section); they run in the parent only. The callbacks still
//   queued run in the child, none twice. From a call() callback the call_rcu
//   threads are not paused (this one would wait for itself); the forking thread stays the child's
//   call_rcu thread. Not covered, liburcu's own: its init_lock is not taken by its prepare, so a child
//   forked while another thread registers with liburcu (its first read_lock) or exits may hang when a
//   new thread of the child first reads.
// Memory ordering: what a reader saw inside a section happens-before whatever follows a synchronize()
//   or a call() callback that began after the section's read_unlock (liburcu's guarantee). ThreadSanitizer
//   cannot see through liburcu (uninstrumented, membarrier-based), so under TSan these edges are declared
//   to it explicitly: read_unlock and call release one token, synchronize, barrier and callback_entered
//   acquire it. That over-approximates (every unlock orders before every later grace period), which can
//   hide a race between two readers' plain accesses, never invent one.
#pragma once

#include <cstddef>
#include <cstdint>

struct rcu_head;  // liburcu's callback head, two words: stored in struct umn_notifier's private words

namespace umn::detail::rcu {

inline constexpr size_t kHeadWords = 2;  // sizeof(rcu_head) / sizeof(uintptr_t); checked in rcu.cc

void read_lock() noexcept;
void read_unlock() noexcept;
// True when this thread is inside a read-side section (e.g. a classic callback).
bool read_ongoing() noexcept;
// Waits until every read-side section begun before the call has ended.
void synchronize() noexcept;
// Runs fn(head) on liburcu's callback thread after a grace period. fn must start with callback_entered().
void call(rcu_head* head, void (*fn)(rcu_head*)) noexcept;
void callback_entered() noexcept;
// Last statement of every fn passed to call().
void callback_exited() noexcept;
// True while this thread runs a call() callback.
bool in_callback() noexcept;
// Waits for every call() callback queued before it (rcu_barrier).
void barrier() noexcept;
// Quiesce liburcu before a fork (grace-period and registry locks taken, signals blocked, call_rcu threads
// paused; less from a read-side section or a call() callback, see "fork()" above) and resume it in the
// parent, or restore it in the child. Context: core/fork.cc's pthread_atfork handlers only.
void fork_prepare() noexcept;
void fork_parent() noexcept;
void fork_child() noexcept;

// A read-side section for the scope.
class ReadGuard {
 public:
  ReadGuard() noexcept { read_lock(); }
  ~ReadGuard() { read_unlock(); }
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

}  // namespace umn::detail::rcu
