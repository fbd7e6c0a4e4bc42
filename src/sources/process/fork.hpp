// fork.hpp - the process hooks' steps in umn's fork handlers (core/fork.hpp has the whole order): the
// fork event, PROTECTION_PAGE over every private writable mapping of the parent, from prepare to the
// parent/child handler; and a fork during the first installation waits for it to finish (g_fork_lock
// is held by the installer), so that no child inherits a half-done installation (issue 17.9).
//
// Locking: g_fork_lock (fork.cc, a spin lock) guards the pending fork ranges from prepare to parent/child,
//   and is held by the installer for the whole installation (hold_forks), with its signals blocked.
// Lifetime: the pending ranges live in static storage between prepare and parent/child.
// Context: the steps run inside fork(), with the forking thread's signals blocked; they read
//   /proc/self/maps with raw system calls. Observers get the fork event's END in the parent only: in the
//   child, another thread may have held an observer's own lock at the clone, and the observer's own
//   pthread_atfork child handler may run after umn's (libumn registers its handlers at load); an observer
//   forgets its in-flight state in its own child handler (issue 17.15).
// Memory ordering: g_fork_lock is acquired with an acquire exchange and released with a release store.
#pragma once

namespace umn::detail {

// Hold forks back (prepare waits) while the installer's state may change from 0 to 1 to 2: a fork never
// clones a process whose installation is in progress. Context: the installer, never nested, with every
// signal blocked (a handler that forks would wait for its own thread: spin forever); and prepare.
void hold_forks() noexcept;
void release_forks() noexcept;

}  // namespace umn::detail
