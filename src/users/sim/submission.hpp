// submission.hpp - umn::sim::Submission: one doorbell write to the simulated Hardware (hardware.hpp),
// carrying several operations.
//
// Locking
//   Holds the Hardware lock for its lifetime (a scoped capability for clang's analysis).
// Lifetime
//   A stack object; it must not outlive its Hardware.
// Context
//   Inside it take no notifier lock and do not wait (the Device lock ranks below the Hardware lock and
//   may be taken). Non-blocking apart from that lock.
// Memory ordering
//   As the Hardware lock.
//
// Overheads (the 2-vCPU development VM; docs/PERFORMANCE.md): a Submission costs one lock, one clock
// read (~60 ns) and an O(1) queue insert per operation; a 32-device first pass takes 8-11 us in all
// (~300 ns per device, driver and core).
#pragma once

#include "base/lock.hpp"
#include "users/sim/fence.hpp"
#include "users/sim/hardware.hpp"
#include "users/sim/latency_model.hpp"

namespace umn::sim {

// One doorbell write: the operations submitted through it are scheduled under one acquisition of the
// Hardware lock and from one clock reading, their common submission time. A first pass submits one
// device's work through one Submission (enable its preempt fences, submit its TLB invalidation): a clock
// read costs ~60 ns on the development VM, a lock round trip ~40 ns, and a 32-device first pass paid
// both twice per device before the last device's TLB invalidation was submitted.
// Context: holds the Hardware lock for its lifetime, so inside it take no notifier lock and do not wait
// (the Device lock ranks below the Hardware lock and may be taken). Non-blocking apart from that lock.
class UMN_SCOPED_CAPABILITY Submission {
 public:
  explicit Submission(Hardware& hardware) noexcept UMN_ACQUIRE(hardware.mutex_);
  ~Submission() UMN_RELEASE();
  Submission(const Submission&) = delete;
  Submission& operator=(const Submission&) = delete;
  // As Fence::enable_signaling(). Precondition: the fence's slot belongs to this submission's Hardware.
  void enable(const Fence& fence) noexcept;

 private:
  friend class FenceSlot;
  Hardware& hardware_;
  const Clock::time_point now_;  // read once the lock is held
};

}  // namespace umn::sim
