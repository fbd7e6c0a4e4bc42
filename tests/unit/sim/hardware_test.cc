// hardware_test.cc - fences and the hardware timer: signalling, lazy enabling, waiting, slot lifetime.
#include "users/sim/hardware.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "rig.hpp"
#include "users/sim/device.hpp"

namespace umn::sim {
namespace {

using namespace std::chrono_literals;
using testing::latencies;
using testing::Rig;

// A default fence stands for "nothing to wait for".
TEST(Fence, DefaultIsSignaled) {
  Fence fence;
  EXPECT_TRUE(fence.signaled());
  fence.wait();
}

// A submitted TLB invalidation is pending until the hardware completes it, and drops the TLB entries.
TEST(Fence, TlbInvalidationSignalsAfterItsLatencyAndFlushes) {
  Rig rig(1, 1, latencies(2ms, 1ms));
  TlbInvalidation op(rig.device(0));
  const auto begin = Clock::now();
  Fence fence = rig.device(0).submit_tlb_invalidate(rig.spans[0], op);
  EXPECT_FALSE(fence.signaled());
  fence.wait();
  EXPECT_TRUE(fence.signaled());
  EXPECT_GE(op.completed_at() - begin, 2ms);  // never early (a lower bound only: no timing upper bound)
}

// A preempt fence is lazy: nothing happens until someone enables signalling.
TEST(Fence, PreemptFenceIsLazyUntilEnabled) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  std::array<Fence, kMaxEngines> fences;
  ASSERT_EQ(device.vm_fences(fences), 1u);
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(fences[0].signaled());
  EXPECT_TRUE(device.running(0));
  fences[0].enable_signaling();
  fences[0].wait();
  EXPECT_FALSE(device.running(0));
}

// An idle engine's fence is signaled: "nothing pending".
TEST(Fence, IdleEngineFenceIsSignaled) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  std::array<Fence, kMaxEngines> fences;
  rig.device(0).vm_fences(fences);
  EXPECT_TRUE(fences[0].signaled());
}

// Re-arming a slot does not un-signal the fence of its previous operation.
TEST(Fence, OldPointStaysSignaledAfterRearm) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  Fence first = device.preempt(0);
  first.wait();
  device.resume();
  EXPECT_TRUE(first.signaled());
  EXPECT_FALSE(device.preempt(0).signaled());
}

// wait_all returns only when every fence signaled, whatever their order of completion.
TEST(Fence, WaitAllWaitsForEveryFence) {
  Rig rig(3, 1, latencies(1ms, 1ms));
  std::vector<std::unique_ptr<TlbInvalidation>> ops;
  std::vector<Fence> fences;
  for (unsigned d = 0; d < 3; d++) {
    ops.push_back(std::make_unique<TlbInvalidation>(rig.device(d)));
    fences.push_back(rig.device(d).submit_tlb_invalidate(rig.spans[0], *ops.back()));
  }
  Fence::wait_all(fences);
  for (const Fence& fence : fences) EXPECT_TRUE(fence.signaled());
}

// A slot destroyed while its operation is queued is unlinked; the timer thread never touches it again.
TEST(Fence, SlotDestroyedWhileQueuedIsUnlinked) {
  Rig rig(1, 1, latencies(10ms, 1ms));
  for (int i = 0; i < 50; i++) {
    TlbInvalidation op(rig.device(0));
    rig.device(0).submit_tlb_invalidate(rig.spans[0], op);
  }
  TlbInvalidation last(rig.device(0));
  rig.device(0).submit_tlb_invalidate(rig.spans[0], last).wait();  // the queue still works
}

// Many threads waiting on one fence all wake up.
TEST(Fence, EveryWaiterWakes) {
  Rig rig(1, 1, latencies(5ms, 1ms));
  TlbInvalidation op(rig.device(0));
  Fence fence = rig.device(0).submit_tlb_invalidate(rig.spans[0], op);
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; i++) waiters.emplace_back([fence] { fence.wait(); });
  for (auto& waiter : waiters) waiter.join();
  EXPECT_TRUE(fence.signaled());
}

}  // namespace
}  // namespace umn::sim
