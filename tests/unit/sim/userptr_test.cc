// userptr_test.cc - the userptr driver: the two-pass flows (idle -> synchronous, busy -> synchronous,
// deferred), single-pass and multiplexed, concurrent invalidations of one range, and the stale-access
// detector firing on a deliberately broken driver. Assertions are on flows and counts, never on timing.
#include "users/sim/userptr.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "rig.hpp"

namespace umn::sim {
namespace {

using namespace std::chrono_literals;
using testing::latencies;
using testing::Rig;

// Reads every page of range r on device d; returns how many reads were allowed (ok or stale).
unsigned read_all(Rig& rig, unsigned d, unsigned r) {
  unsigned done = 0;
  for (uint64_t page = rig.spans[r].first; page < rig.spans[r].first + rig.spans[r].count; page++) {
    const Access access = rig.device(d).read(0, page);
    done += access == Access::kOk || access == Access::kStale;
  }
  return done;
}

// Nothing faulted in and every engine idle: nothing is pending, so the first pass does it all.
TEST(TwoPassUserptr, AllFencesSignaledAndNothingMappedIsSynchronous) {
  Rig rig(2, 1, latencies(1ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  rig.invalidate(0);
  EXPECT_EQ(rig.driver->stats().sync_idle.load(), 2u);
  EXPECT_EQ(rig.driver->stats().deferred.load(), 0u);
}

// Faulted in on a running engine: the first pass kicks and submits, the second waits; afterwards no
// device can read the range and nothing stale was read.
TEST(TwoPassUserptr, PendingWorkIsDeferredToTheSecondPass) {
  Rig rig(3, 1, latencies(1ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  for (unsigned d = 0; d < 3; d++) {
    ASSERT_FALSE(rig.driver->fault_in(d, 0, 1s));
    ASSERT_EQ(read_all(rig, d, 0), 4u);  // fills the TLBs
  }
  rig.invalidate(0);
  EXPECT_EQ(rig.driver->stats().deferred.load(), 3u);
  EXPECT_EQ(rig.driver->stats().sync_idle.load() + rig.driver->stats().sync_busy.load(), 0u);
  for (unsigned d = 0; d < 3; d++) {
    EXPECT_FALSE(rig.driver->ready(d, 0));
    EXPECT_FALSE(rig.driver->finish_in_use(d, 0));
    EXPECT_EQ(read_all(rig, d, 0), 0u);
  }
  EXPECT_EQ(rig.stale(), 0u);
}

// Engines preempted but the range still mapped: the TLB invalidation alone is pending and deferred.
TEST(TwoPassUserptr, MappedRangeOnIdleEngineDefersTheTlbInvalidation) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  ASSERT_FALSE(rig.driver->fault_in(0, 0, 1s));
  rig.device(0).preempt(0).wait();
  rig.invalidate(0);
  EXPECT_EQ(rig.driver->stats().deferred.load(), 1u);
  EXPECT_EQ(rig.stale(), 0u);
}

// A second invalidation of the same userptr while the first one's finish record is in use does its
// work synchronously, and both leave the range unreadable.
TEST(TwoPassUserptr, BusyFinishRecordFallsBackToSynchronous) {
  Rig rig(1, 1, latencies(300ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  ASSERT_FALSE(rig.driver->fault_in(0, 0, 1s));
  ASSERT_EQ(read_all(rig, 0, 0), 4u);
  std::thread first([&] { rig.invalidate(0); });
  while (!rig.driver->finish_in_use(0, 0)) std::this_thread::sleep_for(100us);
  rig.invalidate(0);  // concurrent with the first one's second pass
  first.join();
  EXPECT_EQ(rig.driver->stats().deferred.load(), 1u);
  EXPECT_EQ(rig.driver->stats().sync_busy.load(), 1u);
  EXPECT_FALSE(rig.driver->finish_in_use(0, 0));
  EXPECT_EQ(read_all(rig, 0, 0), 0u);
  EXPECT_EQ(rig.stale(), 0u);
}

// A non-blockable invalidation cannot wait for the device: every callback refuses it.
TEST(TwoPassUserptr, NonBlockableInvalidationIsRefused) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  ASSERT_FALSE(rig.driver->fault_in(0, 0, 1s));
  auto attempt = Invalidation::try_start(rig.mm, rig.memory.address(0), rig.memory.address(4));
  EXPECT_EQ(attempt.error(), std::errc::resource_unavailable_try_again);
  EXPECT_TRUE(rig.driver->ready(0, 0));
}

// The single-pass and multiplexed drivers leave the same state behind: unreadable, nothing stale.
class EveryMode : public ::testing::TestWithParam<DriverMode> {};

TEST_P(EveryMode, InvalidationStopsEveryDeviceAndRefaultRestoresIt) {
  Rig rig(3, 2, latencies(1ms, 1ms));
  rig.make_driver(GetParam());
  for (unsigned d = 0; d < 3; d++)
    for (unsigned r = 0; r < 2; r++) ASSERT_FALSE(rig.driver->fault_in(d, r, 1s));
  for (unsigned d = 0; d < 3; d++) ASSERT_EQ(read_all(rig, d, 0), 4u);
  rig.invalidate(0);
  for (unsigned d = 0; d < 3; d++) {
    EXPECT_FALSE(rig.driver->ready(d, 0));
    EXPECT_TRUE(rig.driver->ready(d, 1));
    EXPECT_EQ(read_all(rig, d, 0), 0u);
    ASSERT_FALSE(rig.driver->fault_in(d, 0, 1s));
    EXPECT_EQ(read_all(rig, d, 0), 4u);
  }
  EXPECT_EQ(rig.stale(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, EveryMode,
                         ::testing::Values(DriverMode::kSinglePass, DriverMode::kTwoPass, DriverMode::kMultiplexed),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)) == "two-pass"
                                                           ? std::string("TwoPass")
                                                           : std::string(to_string(param_info.param)); });

// Several threads invalidate the same range over and over while a fault thread keeps faulting it back
// in and reading it: every first pass takes one of the three flows and nothing stale is ever read.
TEST_P(EveryMode, ConcurrentInvalidationsOfOneRangeNeverReadStale) {
  constexpr unsigned kDevices = 3, kThreads = 3, kRounds = 200;
  Rig rig(kDevices, 1, latencies(50us, 20us));
  rig.make_driver(GetParam());
  std::atomic<bool> stop{false};
  std::thread faulter([&] {
    while (!stop.load()) {
      for (unsigned d = 0; d < kDevices; d++) {
        if (!rig.driver->ready(d, 0)) (void)rig.driver->fault_in(d, 0, 100ms);
        read_all(rig, d, 0);
      }
    }
  });
  std::vector<std::thread> invalidators;
  for (unsigned t = 0; t < kThreads; t++)
    invalidators.emplace_back([&] {
      for (unsigned i = 0; i < kRounds; i++) rig.invalidate(0);
    });
  for (auto& thread : invalidators) thread.join();
  stop.store(true);
  faulter.join();
  EXPECT_EQ(rig.stale(), 0u);
  const DriverStats& stats = rig.driver->stats();
  if (GetParam() == DriverMode::kTwoPass) {
    EXPECT_EQ(stats.deferred.load() + stats.sync_idle.load() + stats.sync_busy.load(), kDevices * kThreads * kRounds);
    for (unsigned d = 0; d < kDevices; d++) EXPECT_FALSE(rig.driver->finish_in_use(d, 0));
  }
}

// A deliberately broken driver: it kicks the device work but returns without waiting for it.
class NoWaitUserptr final : public IntervalNotifier {
 public:
  NoWaitUserptr(Device& device, PageSpan span, detail::Mutex& lock, DriverStats& stats)
      : userptr_(device, span, lock, stats), tlb_(device) {}
  ~NoWaitUserptr() override { remove(); }
  Userptr& userptr() { return userptr_; }

 private:
  bool invalidate(const Range& /*range*/, unsigned long cur_seq) noexcept override {
    detail::MutexLock guard(userptr_.lock());
    set_seq(cur_seq);
    PendingWork work;
    userptr_.start_invalidation(tlb_, work);
    userptr_.unmap();  // BUG: the TLB invalidation and the preemption are still in flight
    return true;
  }
  Userptr userptr_;
  TlbInvalidation tlb_;
};

// The detector fires on the broken driver: the device reads through its TLB after the invalidation
// returned and the CPU remapped the page.
TEST(StaleAccessDetector, FiresWhenTheDriverSkipsTheWait) {
  Rig rig(1, 1, latencies(60s, 60s));  // the hardware never catches up during the test
  detail::Mutex lock;
  DriverStats stats;
  NoWaitUserptr broken(rig.device(0), rig.spans[0], lock, stats);
  ASSERT_FALSE(broken.insert(rig.mm, rig.memory.address(0), 4 * UserMemory::kPageSize));
  ASSERT_FALSE(broken.userptr().fault_in(broken, 1s));
  ASSERT_EQ(rig.device(0).read(0, 0), Access::kOk);  // cached in the TLB
  rig.invalidate(0);
  EXPECT_EQ(rig.device(0).read(0, 0), Access::kStale);
  EXPECT_EQ(rig.stale(), 1u);
}

// The same sequence through the real two-pass driver reads nothing stale.
TEST(StaleAccessDetector, StaysQuietWhenTheDriverWaits) {
  Rig rig(1, 1, latencies(2ms, 1ms));
  rig.make_driver(DriverMode::kTwoPass);
  ASSERT_FALSE(rig.driver->fault_in(0, 0, 1s));
  ASSERT_EQ(rig.device(0).read(0, 0), Access::kOk);
  rig.invalidate(0);
  EXPECT_NE(rig.device(0).read(0, 0), Access::kStale);
  EXPECT_EQ(rig.stale(), 0u);
}

}  // namespace
}  // namespace umn::sim
