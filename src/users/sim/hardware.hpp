// hardware.hpp - umn::sim::Hardware, the simulated hardware's clock: one timer thread completing the
// operations of every device's FenceSlot (fence_slot.hpp) at their deadlines, drawn from a LatencyModel
// (latency_model.hpp). Operations are submitted one by one (FenceSlot::schedule) or in a Submission
// (submission.hpp).
//
// Locking
//   Hardware::mutex_ guards the deadline queue, the insertion hints, the random generator and every
//   slot's queue link, deadline and enabled point. A slot's retire() hook runs with it held (so a hook
//   may take the Device lock, ranked below it, but no notifier lock); so does a Submission, for its
//   lifetime. The timer thread is the only writer of the lateness and hw statistics.
// Lifetime
//   Hardware outlives every FenceSlot that names it. Its destructor stops the timer thread; operations
//   still queued never complete.
// Context
//   Submissions ring the timer's doorbell lazily: an operation nobody waits for may complete after its
//   deadline (see hardware.cc). Everything is non-blocking apart from Hardware::mutex_.
//   The timer thread runs with a 1 ns timer slack (prctl(PR_SET_TIMERSLACK)); Hardware::lateness_us()
//   reports how late it really completes operations.
// Memory ordering
//   The fence protocol (fence.hpp; guarantees numbered in hardware.cc). The statistics are relaxed.
//
// Overheads (the 2-vCPU development VM, loaded, `umn sim` and temporary instrumentation;
// docs/PERFORMANCE.md): a 50 us operation completes 8-25 us late even with the 1 ns slack (the VM's
// timer; ~7 us on a quiet bare machine). A timer batch of 32 completions takes ~2 us before its waiter
// is woken. Waking the timer thread, ~15 us on this VM, is left to the next wait (the doorbell,
// hardware.cc).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <random>
#include <span>
#include <thread>

#include "base/lock.hpp"
#include "users/sim/fence.hpp"
#include "users/sim/fence_slot.hpp"
#include "users/sim/latency_model.hpp"
#include "users/sim/wait_histogram.hpp"

namespace umn::sim {

// The simulated hardware: one timer thread that completes every scheduled operation at its deadline.
class Hardware {
 public:
  // seed: for the latency draws (uniform, log-normal).
  explicit Hardware(uint64_t seed = 1);
  Hardware(const Hardware&) = delete;
  Hardware& operator=(const Hardware&) = delete;
  // Stops the timer thread; operations still queued never complete. Context: not from retire().
  ~Hardware();

  // The q-quantile of how late (us) the timer thread completed operations. Context: any.
  [[nodiscard]] double lateness_us(double q) const noexcept { return lateness_.quantile_us(q); }
  // The q-quantile (us) of submission-to-completion of explicitly scheduled operations (TLB
  // invalidations; not lazily signalled ones): what the hardware gave each operation. Context: any.
  [[nodiscard]] double achieved_us(double q) const noexcept { return achieved_.quantile_us(q); }
  // How many times a Fence::wait or wait_all went to sleep (futex waits) since construction: with
  // wait_all, once per call that found work pending. Context: any; relaxed.
  [[nodiscard]] uint64_t waiter_sleeps() const noexcept { return waiter_sleeps_.load(std::memory_order_relaxed); }
  // How many operations the timer thread completed since construction (a destroyed slot's queued
  // operation is unlinked, never completed). Context: any; relaxed.
  [[nodiscard]] uint64_t completions() const noexcept { return lateness_.count(); }

 private:
  friend class FenceSlot;
  friend class Fence;
  friend class Submission;

  // Schedules a lazy operation whose signalling was just enabled (no-op if not lazy, or done already).
  void enable_locked(FenceSlot& slot, uint32_t point, Clock::time_point now) noexcept UMN_REQUIRES(mutex_);
  void schedule_locked(FenceSlot& slot, const LatencyModel& latency, Clock::time_point now) UMN_REQUIRES(mutex_);
  void enable(FenceSlot& slot, uint32_t point) noexcept;
  // The pending fence of `fences` whose operation completes last (an unscheduled one counts as last);
  // nullptr when all are signaled. Context: takes mutex_.
  const Fence* last_to_complete(std::span<const Fence> fences) noexcept;
  // Delivers a pending kick: wakes the timer thread so it sleeps for the new earliest deadline.
  void kick() noexcept;
  void unlink_locked(FenceSlot& slot) noexcept UMN_REQUIRES(mutex_);
  // Where to start looking for slot's place: the last slot of its latency class, if still before it.
  FenceSlot* insertion_hint_locked(const FenceSlot& slot, Nanos latency) noexcept UMN_REQUIRES(mutex_);
  // Completes one slot at `now` (its batch's time); returns whether someone waits on it (to be woken).
  bool complete_locked(FenceSlot& slot, Clock::time_point now) noexcept UMN_REQUIRES(mutex_);
  void complete_due_locked() noexcept UMN_REQUIRES(mutex_);
  Nanos draw_locked(const LatencyModel& latency) UMN_REQUIRES(mutex_);
  void run();

  umn::detail::Mutex mutex_;
  umn::detail::CondVar wake_;
  FenceSlot* head_ UMN_GUARDED_BY(mutex_) = nullptr;  // the queue, ordered by deadline
  FenceSlot* tail_ UMN_GUARDED_BY(mutex_) = nullptr;
  // Insertion hints, one per latency class (LatencyModel::latency): the last slot scheduled in that class,
  // or nullptr once it left the queue. Guarded by mutex_. See schedule_locked in hardware.cc.
  struct Hint {
    Nanos latency{0};
    FenceSlot* last = nullptr;
  };
  std::array<Hint, 4> hints_ UMN_GUARDED_BY(mutex_){};
  bool stop_ UMN_GUARDED_BY(mutex_) = false;
  std::mt19937_64 random_ UMN_GUARDED_BY(mutex_);
  std::atomic<bool> kick_pending_{false};  // atomic; set under mutex_, cleared by kick() (see hardware.cc)
  WaitHistogram lateness_;  // written by the timer thread only (record_exclusive)
  WaitHistogram achieved_;  // likewise
  std::atomic<uint64_t> waiter_sleeps_{0};  // atomic; relaxed statistic (Fence::sleep)
  std::thread thread_;  // last: starts after everything above is initialised
};

}  // namespace umn::sim
