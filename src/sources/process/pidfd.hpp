// pidfd.hpp - whether a pidfd names this process (process_madvise on ourselves is announced).
//
// Locking: none. Lifetime: nothing is kept. Context: async-signal-safe (raw system calls, stack buffers).
// Memory ordering: none.
#pragma once

namespace umn::detail {

// Whether process_madvise's pidfd names this process: a PIDFD_SELF sentinel, or a pidfd whose
// /proc/self/fdinfo "Pid:" is our pid or one of our threads. When that cannot be read: yes (announcing
// is harmless, missing is not).
bool pidfd_is_self(long pidfd) noexcept;

}  // namespace umn::detail
