// lock.hpp - sim::Mutex, the simulation's lock: annotated for clang's -Wthread-safety with the
// annotations of base/lock.hpp (whose umn::detail::Mutex it extends), and measuring how long its
// contended acquisitions waited (that is how the cost of sharing one notifier lock between
// devices is measured rather than assumed). sim::WaitHistogram holds those waits.
//
// Locking
//   Mutex is a plain mutual-exclusion lock (std::mutex underneath). Lock ranks, outermost first, for the
//   whole simulation: Userptr::fault_lock_ < notifier lock (a Mutex) < Hardware lock < Device lock.
// Lifetime
//   A Mutex records into the WaitHistogram it was given; the histogram must outlive it.
// Context
//   lock() may sleep. WaitHistogram::record() is lock-free and may be called from any thread.
// Memory ordering
//   Mutex: as std::mutex. WaitHistogram counters are relaxed: they are read after the threads that wrote
//   them were joined (or as an approximate live view).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "base/lock.hpp"


namespace umn::sim {

// Waits in 1 us buckets up to 4 ms, plus one overflow bucket; no allocation after construction.
class WaitHistogram {
 public:
  static constexpr unsigned kBuckets = 4096;

  // Records one wait. Context: any thread; lock-free.
  void record(std::chrono::nanoseconds wait) noexcept;
  // The same without read-modify-write instructions (relaxed loads and stores): for a histogram with one
  // writer at a time, such as the hardware timer thread's, whose batches record one wait per completed
  // operation. Context: no concurrent record() or record_exclusive(); readers may run concurrently.
  void record_exclusive(std::chrono::nanoseconds wait) noexcept;
  // The q-quantile (0 <= q <= 1) of the recorded waits in us (bucket upper bound); 0 when empty.
  [[nodiscard]] double quantile_us(double q) const noexcept;
  [[nodiscard]] uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  [[nodiscard]] double total_us() const noexcept { return total_ns_.load(std::memory_order_relaxed) / 1e3; }
  [[nodiscard]] double max_us() const noexcept { return max_ns_.load(std::memory_order_relaxed) / 1e3; }

 private:
  std::array<std::atomic<uint64_t>, kBuckets + 1> buckets_{};  // atomic; relaxed counters
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> total_ns_{0};
  std::atomic<uint64_t> max_ns_{0};
};

class UMN_CAPABILITY("mutex") Mutex {
 public:
  // waits: where contended acquisitions record how long they waited (nullptr: not measured).
  explicit Mutex(WaitHistogram* waits = nullptr) noexcept : waits_(waits) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Takes the lock; if it was held, records the wait. Context: may sleep.
  void lock() UMN_ACQUIRE() {
    if (mutex_.try_lock()) return;
    lock_slow();
  }
  bool try_lock() UMN_TRY_ACQUIRE(true) { return mutex_.try_lock(); }
  void unlock() UMN_RELEASE() { mutex_.unlock(); }
  // Tells the analysis the caller holds the lock (e.g. inside a callable run by umn::fault_in).
  void assert_held() const UMN_ASSERT_CAPABILITY(this) {}

 private:
  void lock_slow();

  std::mutex mutex_;
  WaitHistogram* waits_;
};

// Scoped holder of a Mutex.
class UMN_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) UMN_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() UMN_RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

}  // namespace umn::sim
