// check.hpp - umn's three assertion tiers and the diagnostic hook behind them.
//
// Locking: none; report() may be called with any umn lock held (it takes none and never allocates).
// Context: callable from any thread, including umn callbacks and signal handlers of the process hooks
//   (the default hook only writes to stderr with write(2)).
//
//   UMN_CHECK(cond, call, msg)   public-API misuse. Reports through the diagnostic hook; the default hook
//                                aborts in debug builds (UMN_DEBUG_LEVEL >= 1) unless UMN_DIAG=count.
//                                Evaluates to cond, so callers write `if (!UMN_CHECK(...)) return;`.
//   UMN_WARN_ON(cond, call, msg) a kernel WARN: a survivable "cannot happen" or a driver bug. Reports,
//                                never aborts, evaluates to cond.
//
// Which one (the rule every call site follows): UMN_CHECK when the caller of a public call broke that
// call's contract - a NULL or foreign handle, a handle in the wrong state (removed twice, never
// inserted), a call from a context the header forbids. UMN_WARN_ON when nothing the caller passed is
// wrong but something survivable went wrong elsewhere - a driver's callback breaking its own contract
// (a blockable callback answering false), an inconsistency of umn's own state, a leftover at teardown -
// and where the kernel itself answers a caller's odd request with a WARN and an error, or accepts it: a
// range with start >= end (the kernel's walks find nothing in it), an insert or register into an address
// space already released or destroyed (the kernel's insert WARNs on mm_users == 0 and returns -EINVAL).
// Those stay survivable in debug builds, so a program that is correct for the kernel never aborts here.
// So do the NULL handles of umn_regcache_create/get, which regcache.h lists among the bad input that is
// answered -EINVAL with nothing changed.
// UMN_DCHECK for umn's internal invariants that cost O(1); UMN_EXPENSIVE_CHECK when they cost O(n).
//
//   UMN_DCHECK(cond)             internal invariant, debug builds only (UMN_DEBUG_LEVEL >= 1); aborts.
//   UMN_EXPENSIVE_CHECK(cond)    an O(n) invariant walk, UMN_DEBUG_LEVEL >= 2 only (e.g. the interval
//                                tree's verify() after every insert and erase); aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef UMN_DEBUG_LEVEL
#define UMN_DEBUG_LEVEL 0
#endif

namespace umn::detail {

enum class DiagKind { kMisuse, kWarn };

// Reports one diagnostic through the installed hook (see umn_set_diagnostic_hook in umn.h).
void report(DiagKind kind, const char* call, const char* message) noexcept;

// True while no hook is installed (diagnostics go to stderr): details that only help a person reading
// stderr (e.g. a list of culprits) are written then, and not behind an installed hook's back.
bool default_hook_in_use() noexcept;

// In a fork child, before anything can report: a hook write that another (now dead) thread had begun at
// the clone is abandoned, and the child starts with the default hook. Without it the child's first
// report() waits for ever for that writer. Context: the child's atfork handler (core/fork.cc), one thread.
void diag_fork_child() noexcept;

[[noreturn]] void dcheck_failed(const char* file, int line, const char* expr) noexcept;

}  // namespace umn::detail

#define UMN_CHECK(cond, call, msg) \
  (__builtin_expect(!!(cond), 1) ? true : (::umn::detail::report(::umn::detail::DiagKind::kMisuse, call, msg), false))

#define UMN_WARN_ON(cond, call, msg) \
  (__builtin_expect(!!(cond), 0) ? (::umn::detail::report(::umn::detail::DiagKind::kWarn, call, msg), true) : false)

#if UMN_DEBUG_LEVEL >= 1
#define UMN_DCHECK(cond) ((cond) ? (void)0 : ::umn::detail::dcheck_failed(__FILE__, __LINE__, #cond))
#else
#define UMN_DCHECK(cond) ((void)0)
#endif

#if UMN_DEBUG_LEVEL >= 2
#define UMN_EXPENSIVE_CHECK(cond) ((cond) ? (void)0 : ::umn::detail::dcheck_failed(__FILE__, __LINE__, #cond))
#else
#define UMN_EXPENSIVE_CHECK(cond) ((void)0)
#endif
