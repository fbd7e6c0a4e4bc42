// wait_histogram.hpp - sim::WaitHistogram: a fixed-size histogram of waits. The simulation records in
// it how long contended notifier-lock acquisitions waited (it is the LockWaitRecorder of a measured
// umn::detail::Mutex, base/lock.hpp: that is how the cost of sharing one notifier lock between devices
// is measured rather than assumed), and how late the hardware timer completes operations.
//
// Locking
//   None: the counters are atomics.
// Lifetime
//   A measured Mutex records into its histogram, which must outlive it.
// Context
//   record() is lock-free and may be called from any thread; record_exclusive() from one writer at a time.
// Memory ordering
//   The counters are relaxed: they are read after the threads that wrote them were joined (or as an
//   approximate live view).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/lock.hpp"

namespace umn::sim {

// Waits in 1 us buckets up to 4 ms, plus one overflow bucket; no allocation after construction.
class WaitHistogram final : public umn::detail::LockWaitRecorder {
 public:
  static constexpr unsigned kBuckets = 4096;

  // Records one wait. Context: any thread; lock-free.
  void record(std::chrono::nanoseconds wait) noexcept;
  // The same without read-modify-write instructions (relaxed loads and stores): for a histogram with one
  // writer at a time, such as the hardware timer thread's, whose batches record one wait per completed
  // operation. Context: no concurrent record() or record_exclusive(); readers may run concurrently.
  void record_exclusive(std::chrono::nanoseconds wait) noexcept;
  // A measured Mutex's contended acquisition: record(wait).
  void record_wait(std::chrono::nanoseconds wait) noexcept override { record(wait); }
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

}  // namespace umn::sim
