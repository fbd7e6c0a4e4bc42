// exit.hpp - process exit: umn_notifier_release() on the process address space, as the kernel's
// exit_mmap runs the release notifiers.
//
// Locking: none of its own (umn_notifier_release takes the subscription lock).
// Lifetime: the armed address space is umn_mm_process()'s, which lives for the life of the process.
// Context: arm from the installer; the release runs from a late ELF destructor (priority 101), after every
//   atexit handler and static destructor of the program, on a thread of its own that exit waits for
//   2 s of CLOCK_MONOTONIC at most (another thread asleep in a callback or holding a range open would
//   make it wait forever; exit.cc). _exit() and fatal signals skip it. Past the bound the release thread
//   may go on while the last ELF destructors run (those of libumn's dependencies); what it touches is
//   never destroyed: the subscriptions (heap, never freed at exit), the semaphore (never destroyed),
//   liburcu-bp's reader registry (its destructor unmaps it only once no registered thread is left), and
//   the ->release callbacks, which run after the program's static destructors on time as well.
//   Not covered: liburcu 0.14 and later tear their call_rcu worker down in their own destructor, after a
//   synchronize_rcu() that a thread asleep in a classic callback keeps waiting for ever (0.13, which
//   Debian 12 ships and CI uses, does not).
// Memory ordering: the armed pointer is stored with release and loaded with acquire.
#pragma once

#include "umn/umn.h"

namespace umn::detail {

// Arms the release at exit for mm (called once, after a successful installation).
void arm_release_at_exit(umn_mm* mm) noexcept;

}  // namespace umn::detail
