// dispatch.hpp - the stubs' entry: one hooked system call, announced or passed through.
//
// Algorithm, for each hooked system call (arguments as the kernel gets them):
//   0. Classify it (events.hpp): the ranges it takes away, in the kernel's order (at most kMaxEvents).
//      A call with none, when no observer asked for QUIET calls, is issued at once: nothing to deliver.
//      Otherwise claim the thread's delivery state (thread_state.hpp: by kernel thread id, ending the
//      deliveries the thread abandoned) and push a level holding the call's events.
//   1. If this thread is inside a delivery (a callback or observer called munmap, or a signal handler
//      interrupted one), count it and announce it to the observers added with UMN_PROCESS_OBSERVE_NESTED
//      only (the UCX bridge: UCM announces such calls too), never to the notifiers: no recursion into
//      the core, no self-deadlock.
//   2. Special cases: mremap growing with MREMAP_MAYMOVE first tries to grow in place (no event); only if
//      that fails is the old range announced and the moving call made. process_madvise on this process
//      is issued one iovec at a time, each with its own event.
//   3. Start (delivery.hpp), 4. the real system call through sources/sys, 5. end.
//
// Locking: see delivery.hpp. Lifetime: the events in the thread's delivery state (thread_state.hpp).
// Context: any thread, signal handlers included; async-signal-safe.
// Memory ordering: see state.hpp (the installer publishes g_mm and g_active before patching).
#pragma once

#include <cstddef>
#include <cstdint>

namespace umn::detail {

// The stubs' entry (patch::DispatchFn): a1..a6 and nr as the kernel would get them (only nr's low 32
// bits count, as in the kernel); site_rsp points to the return address into the caller of the libc
// function. Return: the raw kernel result.
long dispatch(long a1, long a2, long a3, long a4, long a5, long a6, long nr, uintptr_t site_rsp);

// munmap(addr, length) through the same path, announced like a program's (patch/scratch.hpp: the
// patcher's own scratch memory after installation). Return: the raw result.
long announced_munmap(void* addr, size_t length) noexcept;

}  // namespace umn::detail
