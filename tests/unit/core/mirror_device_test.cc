// mirror_device_test.cc - the dmirror-style fake device used by the stress tests, checked on its own:
// faults install translations through the collision-retry loop, invalidations clear them (first or
// second pass), and its stale-access detector does catch a driver that breaks the protocol.
#include "support/mirror_device.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "support/diag_capture.hpp"

namespace {

using umn::test::CpuPages;
using umn::test::DiagCapture;
using umn::test::MirrorDevice;
using umn::test::mutate;
using Access = MirrorDevice::Access;

constexpr uint64_t kBase = 1ull << 32;

class MirrorDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override { mm_ = umn_mm_create(); ASSERT_NE(mm_, nullptr); }
  void TearDown() override { umn_mm_destroy(mm_); }
  umn_mm* mm_ = nullptr;
  CpuPages cpu_{kBase, 16};
  DiagCapture diags_;

  // Faults page in on dev, with one mutation of pages [0, 4) (and its invalidation) between the
  // fault's snapshot and its commit. Return: what fault returned.
  bool fault_with_one_mutation_before_commit(MirrorDevice& dev, size_t page) {
    MirrorDevice* devices[] = {&dev};
    bool once = true;
    dev.between_snapshot_and_commit = [&] {
      if (std::exchange(once, false)) mutate(mm_, cpu_, 0, 4, true, devices);
    };
    const bool faulted = dev.fault(page);
    dev.between_snapshot_and_commit = nullptr;
    return faulted;
  }
};

// A fault installs a translation that reads as current; an invalidation of its page clears it (the
// access misses), and one of another page leaves it alone.
TEST_F(MirrorDeviceTest, FaultInstallsAndInvalidationClears) {
  MirrorDevice dev(mm_, cpu_, 4, 8, {});
  ASSERT_EQ(dev.insert(), 0);
  EXPECT_EQ(dev.access(5), Access::kMiss);
  ASSERT_TRUE(dev.fault(5));
  ASSERT_TRUE(dev.fault(6));
  EXPECT_EQ(dev.access(5), Access::kHit);
  MirrorDevice* devices[] = {&dev};
  EXPECT_EQ(mutate(mm_, cpu_, 5, 1, true, devices).survivors, 0u);
  EXPECT_EQ(dev.access(5), Access::kMiss);
  EXPECT_EQ(dev.access(6), Access::kHit);
  EXPECT_EQ(dev.counters.stale.load(), 0u);
}

// An invalidation between a fault's snapshot and its commit makes the fault retry and install the new
// generation.
TEST_F(MirrorDeviceTest, InvalidationDuringAFaultForcesARetry) {
  MirrorDevice dev(mm_, cpu_, 0, 4, {});
  ASSERT_EQ(dev.insert(), 0);
  ASSERT_TRUE(fault_with_one_mutation_before_commit(dev, 2));
  EXPECT_EQ(dev.counters.retries.load(), 1u);
  EXPECT_EQ(dev.access(2), Access::kHit);
}

// A driver that skips set_seq installs the stale snapshot in the same situation, and the device's access
// check reports it: the detector the stress test relies on works.
TEST_F(MirrorDeviceTest, BrokenDriverWithoutSetSeqIsCaughtAsStale) {
  MirrorDevice dev(mm_, cpu_, 0, 4, {.skip_set_seq = true});
  ASSERT_EQ(dev.insert(), 0);
  ASSERT_TRUE(fault_with_one_mutation_before_commit(dev, 2));
  EXPECT_EQ(dev.counters.retries.load(), 0u);
  EXPECT_EQ(dev.access(2), Access::kStale);
  EXPECT_EQ(dev.counters.stale.load(), 1u);
}

// Two-pass: the first pass leaves the translation (the device may use it until its flush completes), the
// second pass, before range_start returns, clears it.
TEST_F(MirrorDeviceTest, TwoPassClearsInTheSecondPassBeforeRangeStartReturns) {
  MirrorDevice dev(mm_, cpu_, 0, 8, {.mode = MirrorDevice::Mode::kTwoPass});
  ASSERT_EQ(dev.insert(), 0);
  ASSERT_TRUE(dev.fault(3));
  MirrorDevice* devices[] = {&dev};
  EXPECT_EQ(mutate(mm_, cpu_, 0, 8, true, devices).survivors, 0u);
  EXPECT_EQ(dev.counters.first_passes.load(), 1u);
  EXPECT_EQ(dev.counters.second_passes.load(), 1u);
  EXPECT_EQ(dev.access(3), Access::kMiss);
}

// A device that refuses non-blockable ranges makes the mutator's non-blocking start fail with -EAGAIN,
// leaving its translation and the CPU page untouched.
TEST_F(MirrorDeviceTest, RefusedNonblockingRangeChangesNothing) {
  MirrorDevice dev(mm_, cpu_, 0, 8, {.refuse_nonblock = true});
  ASSERT_EQ(dev.insert(), 0);
  ASSERT_TRUE(dev.fault(1));
  MirrorDevice* devices[] = {&dev};
  EXPECT_EQ(mutate(mm_, cpu_, 0, 8, false, devices).err, -EAGAIN);
  EXPECT_EQ(dev.access(1), Access::kHit);
  EXPECT_EQ(dev.counters.refusals.load(), 1u);
}

// A removed device holds no translation and refuses faults; inserted again it works.
TEST_F(MirrorDeviceTest, RemoveDropsEveryTranslation) {
  MirrorDevice dev(mm_, cpu_, 0, 8, {});
  ASSERT_EQ(dev.insert(), 0);
  ASSERT_TRUE(dev.fault(1));
  dev.remove();
  EXPECT_FALSE(dev.maps_any(0, 8));
  EXPECT_FALSE(dev.fault(1));
  ASSERT_EQ(dev.insert(), 0);
  EXPECT_TRUE(dev.fault(1));
  EXPECT_EQ(dev.access(1), Access::kHit);
}

}  // namespace
