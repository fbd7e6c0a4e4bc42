// fence.hpp - umn::sim::Fence: a handle on one operation of a FenceSlot (fence_slot.hpp), like a
// dma_fence: signaled(), enable_signaling(), wait(), and the wait-many wait_all().
//
// Locking
//   signaled() takes no lock; enable_signaling() and wait_all() take the Hardware lock briefly (not held
//   while sleeping).
// Lifetime
//   A Fence is a (slot, point) value; it stays valid while its slot lives, and a later arm() of the slot
//   does not un-signal it. A default-constructed Fence is already signaled.
// Context
//   wait() and wait_all() sleep (futex) until the hardware's timer thread signals: no CPU is spent
//   spinning, which is what lets 64 devices share 2 cores. Everything else is non-blocking apart from
//   the Hardware lock.
// Memory ordering
//   A slot's sequence number is odd while its operation is in flight and even once it completed. The
//   timer thread runs the slot's retire() and then stores the even value (seq_cst, so also a release);
//   signaled() and wait() acquire it, so everything retire() did (e.g. the TLB flush) is visible to a
//   thread that saw the fence signaled. The waiter count and the sequence number are seq_cst (a Dekker
//   pair: a waiter announces itself then re-reads the sequence; the signaler stores the sequence then
//   reads the waiter count). The protocol and its numbered guarantees: hardware.cc.
//
// Overheads (the 2-vCPU development VM; docs/PERFORMANCE.md): a wait that sleeps costs one futex wait
// and one wake-up, no spinning; wait_all sleeps at most once.
#pragma once

#include <cstdint>
#include <span>

namespace umn::sim {

class Hardware;
class FenceSlot;
class Submission;

// One operation of a FenceSlot. A default-constructed Fence is already signaled.
class Fence {
 public:
  Fence() noexcept = default;
  // True once the operation completed. Context: any; lock-free.
  [[nodiscard]] bool signaled() const noexcept;
  // Asks the hardware to complete the operation (a lazily signalled operation, such as preemption, starts
  // only now). Idempotent. Context: any; takes the Hardware lock.
  void enable_signaling() const noexcept;
  // Enables signalling, then sleeps until the operation completed. Context: may sleep.
  void wait() const noexcept;
  // Wait-many: enables signalling on every fence, so the operations overlap, then sleeps once, on the
  // pending fence that completes last (the timer thread completes in deadline order and wakes a batch's
  // waiters only after signalling the whole batch), and returns when every fence signaled. Returns at
  // once, without a lock or a syscall, when all are already signaled.
  // Precondition: the fences belong to one Hardware. Context: may sleep; takes the Hardware lock to
  // find the last one (not held while sleeping).
  static void wait_all(std::span<const Fence> fences) noexcept;

 private:
  friend class FenceSlot;
  friend class Hardware;
  friend class Submission;
  Fence(FenceSlot* slot, uint32_t point) noexcept : slot_(slot), point_(point) {}
  // Sleeps until signaled, without enabling (the caller did). Counts its sleeps in the Hardware.
  void sleep() const noexcept;
  FenceSlot* slot_ = nullptr;
  uint32_t point_ = 0;
};

}  // namespace umn::sim
