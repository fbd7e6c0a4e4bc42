// hardware_test.cc - fences and the hardware timer: signalling, lazy enabling, waiting (one and many),
// slot lifetime, completion order across latency classes, and one clock read per timer batch.
#include "users/sim/hardware.hpp"
#include "users/sim/submission.hpp"

#include <gtest/gtest.h>

#include <atomic>
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

// wait_all sleeps once, on the fence that completes last, however many fences complete before it.
TEST(Fence, WaitAllSleepsOnceForFencesCompletingAtDifferentTimes) {
  Rig rig(3, 1, latencies(2ms, 1ms));
  std::vector<std::unique_ptr<TlbInvalidation>> ops;
  std::vector<Fence> fences;
  for (unsigned d = 0; d < 3; d++) {
    ops.push_back(std::make_unique<TlbInvalidation>(rig.device(d)));
    fences.push_back(rig.device(d).submit_tlb_invalidate(rig.spans[0], *ops.back()));
    std::this_thread::sleep_for(1ms);  // deadlines 1 ms apart: three timer batches
  }
  const uint64_t before = rig.hardware.waiter_sleeps();
  Fence::wait_all(fences);
  for (const Fence& fence : fences) EXPECT_TRUE(fence.signaled());
  EXPECT_LE(rig.hardware.waiter_sleeps() - before, 1u);  // a fence-by-fence wait sleeps up to 3 times
  Fence::wait_all(fences);                               // all signaled: returns without sleeping
  EXPECT_LE(rig.hardware.waiter_sleeps() - before, 1u);
}

// wait_all enables lazy fences itself: a running engine's preempt fence completes, and the engine stops.
TEST(Fence, WaitAllEnablesLazyFences) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  std::array<Fence, kMaxEngines> fences;
  const unsigned count = device.vm_fences(fences);
  Fence::wait_all(std::span(fences.data(), count));
  EXPECT_TRUE(fences[0].signaled());
  EXPECT_FALSE(device.running(0));
}

// Operations of different latency classes, submitted interleaved, complete in deadline order and
// never before their deadline (the per-class insertion hints keep the queue sorted).
TEST(Hardware, InterleavedLatencyClassesCompleteInDeadlineOrder) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  const Nanos classes[] = {3ms, 1ms, 3ms, 1ms, 2ms, 1ms, 3ms};
  std::vector<std::unique_ptr<Device>> devices;
  std::vector<std::unique_ptr<TlbInvalidation>> ops;
  std::vector<Fence> fences;
  std::vector<Clock::time_point> deadlines;
  for (unsigned i = 0; i < std::size(classes); i++) {
    devices.push_back(std::make_unique<Device>(rig.hardware, rig.memory, latencies(classes[i], 1ms), 10 + i));
    ops.push_back(std::make_unique<TlbInvalidation>(*devices.back()));
    deadlines.push_back(Clock::now() + classes[i]);  // a lower bound of the real deadline
    fences.push_back(devices.back()->submit_tlb_invalidate(rig.spans[0], *ops.back()));
  }
  Fence::wait_all(fences);
  for (unsigned i = 0; i < std::size(classes); i++) {
    EXPECT_GE(ops[i]->completed_at(), deadlines[i]) << i;
    for (unsigned j = 0; j < i; j++) {  // j was submitted first: with a deadline no later, it completes no later
      if (classes[j] <= classes[i]) { EXPECT_LE(ops[j]->completed_at(), ops[i]->completed_at()) << j << " " << i; }
    }
  }
}

// One Submission carries a device's whole first-pass work: the lazy preempt fence it enables and the
// TLB invalidation it submits both complete, with their effects (engine stopped, TLB flushed); enabling
// an already signaled fence through it does nothing.
TEST(Hardware, SubmissionEnablesAndSubmitsUnderOneLock) {
  Rig rig(1, 1, latencies(1ms, 1ms));
  Device& device = rig.device(0);
  device.resume();
  device.map(rig.spans[0], std::vector<uint64_t>(4, 1));
  ASSERT_EQ(device.read(0, 0), Access::kOk);  // fills the TLB
  std::array<Fence, kMaxEngines + 1> fences;
  ASSERT_EQ(device.vm_fences(std::span(fences).first<kMaxEngines>()), 1u);
  TlbInvalidation op(device);
  {
    Submission submission(rig.hardware);
    submission.enable(fences[0]);
    submission.enable(Fence());  // signaled: a no-op
    fences[1] = device.submit_tlb_invalidate(rig.spans[0], op, submission);
  }
  Fence::wait_all(std::span(fences.data(), 2));
  EXPECT_FALSE(device.running(0));
  device.zap(rig.spans[0]);
  device.resume();
  EXPECT_EQ(device.read(0, 0), Access::kPageFault);  // not from the flushed TLB
}

// A slot whose retire() blocks until the test opens it: it holds the timer thread in its batch.
class GateSlot final : public FenceSlot {
 public:
  using FenceSlot::FenceSlot;
  ~GateSlot() override { detach(); }
  std::atomic<bool> entered{false};
  std::atomic<bool> open{false};

 private:
  void retire() noexcept override {
    entered.store(true);
    while (!open.load()) std::this_thread::sleep_for(100us);
  }
};

// Operations that fell due while the timer thread was busy complete in one batch, at one time (one
// clock read per batch), and their waiter wakes once.
TEST(Hardware, OperationsDueTogetherCompleteInOneBatch) {
  constexpr unsigned kOps = 16;
  Rig rig(kOps, 1, latencies(10ms, 1ms));
  GateSlot gate(rig.hardware);
  const Fence gate_fence = gate.arm();
  gate.schedule({LatencyModel::Kind::kFixed, Nanos(1ms)});
  std::vector<std::unique_ptr<TlbInvalidation>> ops;
  std::vector<Fence> fences;
  for (unsigned d = 0; d < kOps; d++) {
    ops.push_back(std::make_unique<TlbInvalidation>(rig.device(d)));
    fences.push_back(rig.device(d).submit_tlb_invalidate(rig.spans[0], *ops.back()));
  }
  std::thread gate_waiter([&] { gate_fence.wait(); });  // rings the doorbell
  while (!gate.entered.load()) std::this_thread::sleep_for(100us);
  std::this_thread::sleep_for(12ms);  // every TLB invalidation is now due
  const uint64_t before = rig.hardware.waiter_sleeps();
  gate.open.store(true);
  Fence::wait_all(fences);
  gate_waiter.join();
  for (const auto& op : ops) EXPECT_EQ(op->completed_at(), ops[0]->completed_at());
  EXPECT_GE(ops[0]->completed_at(), gate.completed_at());  // later, or the same batch if the timer was late
  EXPECT_LE(rig.hardware.waiter_sleeps() - before, 2u);  // this thread once; the gate's waiter at most once
}

// A slot destroyed while its operation is queued is unlinked: the timer thread never completes (nor
// touches) it, even after its deadline has passed; only the operation still alive completes.
TEST(Fence, SlotDestroyedWhileQueuedIsUnlinked) {
  Rig rig(1, 1, latencies(10ms, 1ms));
  const uint64_t before = rig.hardware.completions();
  for (int i = 0; i < 50; i++) {
    TlbInvalidation op(rig.device(0));
    rig.device(0).submit_tlb_invalidate(rig.spans[0], op);
  }
  TlbInvalidation last(rig.device(0));
  rig.device(0).submit_tlb_invalidate(rig.spans[0], last).wait();  // the queue still works
  std::this_thread::sleep_for(40ms);  // past every destroyed operation's deadline (10 ms, log-normal tail)
  EXPECT_EQ(rig.hardware.completions() - before, 1u);
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
