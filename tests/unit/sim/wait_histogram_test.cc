// wait_histogram_test.cc - sim::WaitHistogram as the recorder of a measured umn::detail::Mutex: the
// `umn sim` lock_contended and lock_wait_p99_us columns come from it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "base/lock.hpp"
#include "users/sim/wait_histogram.hpp"

namespace umn::sim {
namespace {

using namespace std::chrono_literals;

// An acquisition that finds the lock free records nothing; one that has to wait records its wait. (A
// waiter may reach lock() only after the holder let go, when the machine is loaded: up to 10 rounds.)
TEST(WaitHistogram, MeasuredMutexRecordsOnlyContendedAcquisitions) {
  WaitHistogram waits;
  detail::Mutex mutex(&waits);
  { detail::MutexLock free_lock(mutex); }
  EXPECT_EQ(waits.count(), 0u);

  unsigned rounds = 0;
  while (waits.count() == 0 && rounds++ < 10) {
    std::atomic<bool> waiter_started{false};
    mutex.lock();
    std::thread waiter([&] {
      waiter_started.store(true);
      detail::MutexLock contended(mutex);
    });
    while (!waiter_started.load()) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);
    mutex.unlock();
    waiter.join();
  }
  EXPECT_EQ(waits.count(), 1u);
  EXPECT_GT(waits.max_us(), 0.0);
}

// Quantiles are bucket upper bounds in us; the overflow bucket answers the maximum.
TEST(WaitHistogram, QuantilesAreBucketUpperBounds) {
  WaitHistogram waits;
  waits.record(1500ns);
  waits.record(2500ns);
  waits.record(10ms);
  EXPECT_EQ(waits.quantile_us(0), 2.0);
  EXPECT_EQ(waits.quantile_us(0.5), 3.0);
  EXPECT_EQ(waits.quantile_us(1), 10000.0);
  EXPECT_EQ(waits.count(), 3u);
}

}  // namespace
}  // namespace umn::sim
