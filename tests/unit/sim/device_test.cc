// device_test.cc - the simulated device's page table, TLB, engines and stale-access detector.
#include "users/sim/device.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "rig.hpp"

namespace umn::sim {
namespace {

using namespace std::chrono_literals;
using testing::latencies;
using testing::Rig;

// Mapped with the current generation and running: reads are fine, and fill the TLB.
TEST(Device, ReadThroughCurrentTranslationIsOk) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  EXPECT_EQ(device.read(0, 0), Access::kPreempted);  // never resumed
  device.resume();
  EXPECT_EQ(device.read(0, 0), Access::kPageFault);
  std::vector<uint64_t> generations(4, 1);
  device.map(rig.spans[0], generations);
  EXPECT_EQ(device.read(0, 0), Access::kOk);
  EXPECT_EQ(device.reads(), 1u);
  EXPECT_EQ(device.stale_accesses(), 0u);
}

// Zapping the PTEs is not enough: the TLB still translates until a TLB invalidation completes.
TEST(Device, TlbKeepsTranslationUntilInvalidated) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  device.map(rig.spans[0], std::vector<uint64_t>(4, 1));
  ASSERT_EQ(device.read(0, 1), Access::kOk);  // fills the TLB
  device.zap(rig.spans[0]);
  EXPECT_EQ(device.read(0, 1), Access::kOk);
  EXPECT_EQ(device.read(0, 2), Access::kPageFault);  // never cached
  TlbInvalidation op(device);
  device.submit_tlb_invalidate(rig.spans[0], op).wait();
  EXPECT_EQ(device.read(0, 1), Access::kPageFault);
}

// A first pass's one device call zaps only when asked, and hands out the VM's fences either way.
TEST(Device, ZapAndFencesZapsOnRequestAndReturnsTheVmFences) {
  Rig rig(1, 2, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  device.map(rig.spans[0], std::vector<uint64_t>(4, 1));
  device.map(rig.spans[1], std::vector<uint64_t>(4, 1));
  std::array<Fence, kMaxEngines> fences;
  ASSERT_EQ(device.zap_and_fences(rig.spans[1], false, fences), 1u);
  EXPECT_TRUE(device.mapped(rig.spans[1].first));
  EXPECT_FALSE(fences[0].signaled());  // the running engine's lazy preempt fence
  ASSERT_EQ(device.zap_and_fences(rig.spans[0], true, fences), 1u);
  EXPECT_FALSE(device.mapped(rig.spans[0].first));
  EXPECT_FALSE(device.mapped(rig.spans[0].first + 3));
  EXPECT_TRUE(device.mapped(rig.spans[1].first));
}

// The detector: a read through a translation of a page the CPU has since remapped is stale.
TEST(Device, ReadAfterRemapThroughOldTranslationIsStale) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  device.map(rig.spans[0], std::vector<uint64_t>(4, 1));
  rig.memory.remap(rig.spans[0]);
  EXPECT_EQ(device.read(0, 3), Access::kStale);
  EXPECT_EQ(device.stale_accesses(), 1u);
}

// A preempted engine reads nothing.
TEST(Device, PreemptedEngineStopsReading) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  device.map(rig.spans[0], std::vector<uint64_t>(4, 1));
  device.preempt(0).wait();
  EXPECT_EQ(device.read(0, 0), Access::kPreempted);
  device.resume();
  EXPECT_EQ(device.read(0, 0), Access::kOk);
}

}  // namespace
}  // namespace umn::sim
