// fork.hpp - fork: a PROTECTION_PAGE range over every private writable mapping of the parent, from the
// pthread_atfork prepare handler until the parent and child handlers.
//
// Locking: g_fork_lock (fork.cc) serialises concurrent forks from prepare to parent/child.
// Lifetime: the pending ranges live in static storage between prepare and parent/child.
// Context: the handlers run inside fork(); they read /proc/self/maps with raw system calls.
// Memory ordering: g_fork_lock is acquired with an acquire exchange and released with a release store.
#pragma once

namespace umn::detail {

// Registers the fork handlers (once, by the installer after the sites are patched).
void install_fork_handlers() noexcept;

}  // namespace umn::detail
