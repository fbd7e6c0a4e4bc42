// rcu_delay.hpp - test-only yield injection at liburcu's read-side lock: a per-thread hook and a
// process-wide random jitter, both run just before the real urcu_bp_read_lock.
//
// libumn enters every read-side section through liburcu-bp's exported urcu_bp_read_lock (core/rcu.cc),
// so a test binary that defines that symbol interposes on it (static link: the executable's definition
// wins; shared libumn: the executable's symbol comes first in the lookup scope) and forwards to the real
// one through dlsym(RTLD_NEXT). Define UMN_RCU_DELAY_DEFINE_INTERPOSER in exactly ONE translation unit
// of the binary. Nothing here is compiled into libumn.
//
// Locking: none; the hook is per thread, the jitter an atomic. Context: tests only, never from a signal
// handler. Memory ordering: the hook is thread-local; the jitter bound is relaxed (a tuning knob).
#pragma once

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace umn_test {

// Called on this thread before each read_lock (nullptr: none).
struct ReadLockHook {
  void (*fn)(void* context) = nullptr;
  void* context = nullptr;
};
inline thread_local ReadLockHook t_read_lock_hook;

// Every thread: before a read_lock, sleep a pseudo-random 0..bound microseconds (0: never) on one
// read_lock in four. The seed is per thread (set_jitter_seed) so a failing run can be repeated.
inline std::atomic<unsigned> g_read_lock_jitter_us{0};
inline thread_local uint64_t t_jitter_state = 0x9e3779b97f4a7c15ull;
inline void set_jitter_seed(uint64_t seed) { t_jitter_state = seed * 0x9e3779b97f4a7c15ull + 1; }

inline void before_read_lock() {
  if (t_read_lock_hook.fn != nullptr) t_read_lock_hook.fn(t_read_lock_hook.context);
  const unsigned bound = g_read_lock_jitter_us.load(std::memory_order_relaxed);
  if (bound == 0) return;
  t_jitter_state ^= t_jitter_state << 13;  // xorshift64
  t_jitter_state ^= t_jitter_state >> 7;
  t_jitter_state ^= t_jitter_state << 17;
  if ((t_jitter_state & 3) != 0) return;
  const auto us = static_cast<unsigned>((t_jitter_state >> 8) % (bound + 1));
  if (us == 0)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(us));
}

}  // namespace umn_test

#ifdef UMN_RCU_DELAY_DEFINE_INTERPOSER
extern "C" void urcu_bp_read_lock(void) {
  using Fn = void (*)();
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "urcu_bp_read_lock"));
  umn_test::before_read_lock();
  real();
}
#endif
