// wait_histogram.cc - recording waits and reading their quantiles.
#include "users/sim/wait_histogram.hpp"

#include <algorithm>

namespace umn::sim {

void WaitHistogram::record(std::chrono::nanoseconds wait) noexcept {
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(wait.count(), 0));
  buckets_[std::min<uint64_t>(ns / 1000, kBuckets)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  total_ns_.fetch_add(ns, std::memory_order_relaxed);
  uint64_t seen = max_ns_.load(std::memory_order_relaxed);
  while (ns > seen && !max_ns_.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
}

void WaitHistogram::record_exclusive(std::chrono::nanoseconds wait) noexcept {
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(wait.count(), 0));
  auto bump = [](std::atomic<uint64_t>& counter, uint64_t by) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  bump(buckets_[std::min<uint64_t>(ns / 1000, kBuckets)], 1);
  bump(count_, 1);
  bump(total_ns_, ns);
  if (ns > max_ns_.load(std::memory_order_relaxed)) max_ns_.store(ns, std::memory_order_relaxed);
}

double WaitHistogram::quantile_us(double q) const noexcept {
  const uint64_t total = count();
  if (total == 0) return 0;
  const auto rank = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (unsigned bucket = 0; bucket <= kBuckets; bucket++) {
    seen += buckets_[bucket].load(std::memory_order_relaxed);
    if (seen >= rank) return bucket == kBuckets ? max_us() : bucket + 1.0;
  }
  return max_us();
}

}  // namespace umn::sim
