// hardware.hpp - the simulated hardware's clock: umn::sim::Hardware (one timer thread completing device
// operations at their deadlines), umn::sim::LatencyModel (how long an operation takes), and fences:
// umn::sim::FenceSlot (the reusable completion object a device embeds) and umn::sim::Fence (a handle on
// one operation of a slot, like a dma_fence: signaled(), enable_signaling(), wait(), wait_all()), and
// umn::sim::Submission (one doorbell write carrying several operations).
//
// Locking
//   Hardware::mutex_ guards the deadline queue, the insertion hints, the random generator and every
//   slot's queue link, deadline and enabled point. A slot's retire() hook runs with it held (so a hook
//   may take the Device lock, ranked below it, but no notifier lock); so does a Submission, for its
//   lifetime. The timer thread is the only writer of the lateness and hw statistics.
// Lifetime
//   Hardware outlives every FenceSlot that names it. A FenceSlot may be destroyed at any time: a queued
//   slot is unlinked, and the destructor waits until the timer thread no longer touches it (so a slot on
//   the stack of a synchronous path is safe). A Fence is a (slot, point) value; it stays valid while its
//   slot lives, and a later arm() of the slot does not un-signal it.
// Context
//   wait() and wait_all() sleep (futex) until the timer thread signals: no CPU is spent spinning, which
//   is what lets 64 devices share 2 cores. Submissions ring the timer's doorbell lazily: an operation
//   nobody waits for may complete after its deadline (see hardware.cc). Everything else is
//   non-blocking apart from Hardware::mutex_.
//   The timer thread runs with a 1 ns timer slack (prctl(PR_SET_TIMERSLACK)); Hardware::lateness_us()
//   reports how late it really completes operations.
// Memory ordering
//   A slot's sequence number is odd while its operation is in flight and even once it completed. The
//   timer thread runs retire() and then stores the even value with release order; signaled() and wait()
//   acquire it, so everything retire() did (e.g. the TLB flush) is visible to a thread that saw the fence
//   signaled. The waiter count and the sequence number are seq_cst (a Dekker pair: a waiter announces
//   itself then re-reads the sequence; the signaler stores the sequence then reads the waiter count).
//
// Overheads (the 2-vCPU development VM, loaded, `umn sim` and temporary instrumentation;
// docs/PERFORMANCE.md): a 50 us operation completes 8-25 us late even with the 1 ns slack (the VM's
// timer; ~7 us on a quiet bare machine). A Submission costs one lock, one clock read (~60 ns) and an
// O(1) queue insert per operation; a 32-device first pass takes 8-11 us in all (~300 ns per device,
// driver and core). A timer batch of 32 completions takes ~2 us before its waiter is woken. Waking the
// timer thread, ~15 us on this VM, is left to the next wait (the doorbell, hardware.cc). A wait that
// sleeps costs one futex wait and one wake-up, no spinning; wait_all sleeps at most once.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <span>
#include <thread>

#include "users/sim/lock.hpp"

namespace umn::sim {

using Clock = std::chrono::steady_clock;
using Nanos = std::chrono::nanoseconds;

// How long a device operation takes.
struct LatencyModel {
  enum class Kind { kFixed, kUniform, kLogNormal };
  Kind kind = Kind::kFixed;
  Nanos latency{50'000};  // fixed: the latency; uniform: the mean (range 0.5x..1.5x); log-normal: the median
  double sigma = 0.25;    // log-normal only: the standard deviation of ln(latency)
};

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

// A completion object embedded in its owner; carries one operation at a time.
class FenceSlot {
 public:
  explicit FenceSlot(Hardware& hardware) noexcept : hardware_(hardware) {}
  FenceSlot(const FenceSlot&) = delete;
  FenceSlot& operator=(const FenceSlot&) = delete;
  // Unlinks the slot if queued and waits until the timer thread is done with it. Context: may sleep.
  virtual ~FenceSlot() { detach(); }

  // Starts a new operation and returns its (unsignaled) fence. It completes once scheduled (schedule()
  // here, or Fence::enable_signaling() for a lazy one) and its latency passed.
  // Precondition: the previous operation completed. Context: the owner's lock held (one arm at a time).
  Fence arm() noexcept;
  // Starts the current operation's latency now (what submit_* calls). Context: takes the Hardware lock.
  void schedule(const LatencyModel& latency) noexcept;
  // The same, through a submission that already holds the Hardware lock. Context: inside `submission`.
  void schedule(const LatencyModel& latency, Submission& submission) noexcept;
  // When the current operation completed (valid once its fence is signaled).
  [[nodiscard]] Clock::time_point completed_at() const noexcept { return completed_at_; }
  // The fence of the current (or last) operation.
  [[nodiscard]] Fence current() const noexcept;

 protected:
  // What the destructor does; a derived class whose retire() uses its own members calls it first in its
  // destructor, so the timer thread cannot run retire() on a half-destroyed object.
  void detach() noexcept;
  // Runs on the timer thread, Hardware lock held, just before the fence signals: the device-side effect.
  virtual void retire() noexcept {}
  // Called (Hardware lock held) when signalling of a lazy operation is enabled; returns its latency
  // model. Default: no lazy operations (the slot is always scheduled explicitly).
  virtual const LatencyModel* lazy_latency() const noexcept { return nullptr; }

 private:
  friend class Fence;
  friend class Hardware;
  friend class Submission;

  Hardware& hardware_;
  std::atomic<uint32_t> seq_{0};      // odd: in flight. Release-stored by Hardware::complete_locked.
  std::atomic<uint32_t> waiters_{0};  // threads inside Fence::wait on this slot (seq_cst, see header)
  // Guarded by Hardware::mutex_:
  FenceSlot* next_ = nullptr;
  bool queued_ = false;
  uint32_t enabled_point_ = 0;  // the point whose latency already started
  Clock::time_point deadline_{};
  Clock::time_point submitted_at_{};
  bool measured_ = false;  // scheduled explicitly (schedule()), so counted in Hardware::achieved_us
  Clock::time_point completed_at_{};  // the completing batch's time; written before the release store of seq_
};


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
