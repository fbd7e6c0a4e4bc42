// observer_args.hpp - the argument check of umn_process_observer_add_flags, shared by the hooked build
// (observers.cc) and the no-hooks stand-ins (unsupported.cc), so that both accept the same flags and
// treat the same misuse the same way (a flag added to umn/process.h is added here once).
//
// Locking: none. Lifetime: none (a pure check). Context: any thread, not a signal handler (a misuse
// report may abort a debug build). Memory ordering: none.
#pragma once

#include <cerrno>

#include "base/check.hpp"
#include "umn/process.h"

namespace umn::detail {

// Every UMN_PROCESS_OBSERVE_* flag of umn/process.h.
inline constexpr unsigned kKnownObserverFlags = UMN_PROCESS_OBSERVE_QUIET | UMN_PROCESS_OBSERVE_NESTED;

// Whether umn_process_observer_add_flags may go on. A NULL fn is misuse (UMN_CHECK, base/check.hpp); an
// unknown flag is not (a caller may probe for a flag this version lacks) and is only refused.
// Return: 0, or -EINVAL for either.
inline int check_observer_args(umn_process_observer_fn fn, unsigned flags) noexcept {
  if (!UMN_CHECK(fn != nullptr, "umn_process_observer_add", "NULL observer function")) return -EINVAL;
  return (flags & ~kKnownObserverFlags) == 0 ? 0 : -EINVAL;
}

}  // namespace umn::detail
