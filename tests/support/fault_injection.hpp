// fault_injection.hpp - test-only fault injection: a failing nothrow allocator, a watchdog, and
// helpers shared by tests/stress/fault_injection_test.cc. Nothing here is compiled into libumn.
//
// Failing allocator: include this header in exactly ONE translation unit of a test binary with
// UMN_FAULT_INJECTION_DEFINE_ALLOCATOR defined; it replaces operator new(size_t, std::nothrow_t) (the
// only allocation form umn uses) and, when armed with fail_nothrow_allocations(k, n), makes the k-th
// following nothrow allocation and the n-1 after it return nullptr.
//
// Locking: the allocator's counters are atomics. Context: any thread.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace umn_test {

inline std::atomic<long>& nothrow_skip() { static std::atomic<long> v{-1}; return v; }   // -1: disarmed
inline std::atomic<long>& nothrow_fail_count() { static std::atomic<long> v{0}; return v; }
inline std::atomic<long>& nothrow_failed() { static std::atomic<long> v{0}; return v; }   // failures injected

// Arms the allocator: let `skip` nothrow allocations succeed, then fail the next `count`.
inline void fail_nothrow_allocations(long skip, long count) {
  nothrow_failed().store(0);
  nothrow_fail_count().store(count);
  nothrow_skip().store(skip);
}
inline void disarm_allocator() { nothrow_skip().store(-1); }

// True when this allocation must fail (called by the replaced operator new).
inline bool should_fail_nothrow_allocation() {
  long skip = nothrow_skip().load();
  while (skip >= 0) {
    if (skip > 0) {
      if (nothrow_skip().compare_exchange_weak(skip, skip - 1)) return false;
      continue;
    }
    if (nothrow_fail_count().fetch_sub(1) > 0) {
      nothrow_failed().fetch_add(1);
      return true;
    }
    nothrow_skip().store(-1);
    return false;
  }
  return false;
}

// Aborts the process (with a message) if not disarmed within `seconds`: turns a hang into a failure.
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      static const char msg[] = "fault_injection: WATCHDOG: test hung\n";
      (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
      std::abort();
    };
    sigaction(SIGALRM, &sa, &old_);
    alarm(seconds);
  }
  ~Watchdog() {
    alarm(0);
    sigaction(SIGALRM, &old_, nullptr);
  }

 private:
  struct sigaction old_ {};
};

}  // namespace umn_test

#ifdef UMN_FAULT_INJECTION_DEFINE_ALLOCATOR
// Delegates to the throwing form, so that delete (and ASan's new/delete pairing) stays consistent.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (umn_test::should_fail_nothrow_allocation()) return nullptr;
  try {
    return ::operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  if (umn_test::should_fail_nothrow_allocation()) return nullptr;
  try {
    return ::operator new[](size);
  } catch (...) {
    return nullptr;
  }
}
#endif
