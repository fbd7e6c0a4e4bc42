// fence_slot.hpp - umn::sim::FenceSlot: the reusable completion object a simulated device embeds where
// the operation's state lives; it carries one operation at a time, and hands out a Fence (fence.hpp)
// per operation.
//
// Locking
//   Hardware::mutex_ (hardware.hpp) guards the slot's queue link, deadline, submission time and enabled
//   point; the slot's retire() hook runs with it held (so a hook may take the Device lock, ranked below
//   it, but no notifier lock). arm() is called under the owner's lock (one arm at a time).
// Lifetime
//   The Hardware outlives every FenceSlot that names it. A FenceSlot may be destroyed at any time: a
//   queued slot is unlinked, and the destructor waits until the timer thread no longer touches it (so a
//   slot on the stack of a synchronous path is safe). A derived class whose retire() uses its own members
//   calls detach() first in its destructor.
// Context
//   schedule() takes the Hardware lock; the destructor may sleep (on that lock). arm() is lock-free.
// Memory ordering
//   seq_ as in fence.hpp; arm() is an acq_rel fetch_add that continues the release sequence of the last
//   completion (guarantee 5 of hardware.cc).
#pragma once

#include <atomic>
#include <cstdint>

#include "users/sim/fence.hpp"
#include "users/sim/latency_model.hpp"

namespace umn::sim {

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
  std::atomic<uint32_t> seq_{0};      // odd: in flight. Stored (seq_cst) by Hardware::complete_locked.
  std::atomic<uint32_t> waiters_{0};  // threads inside Fence::sleep on this slot (seq_cst, see fence.hpp)
  // Guarded by Hardware::mutex_:
  FenceSlot* next_ = nullptr;
  bool queued_ = false;
  uint32_t enabled_point_ = 0;  // the point whose latency already started
  Clock::time_point deadline_{};
  Clock::time_point submitted_at_{};
  bool measured_ = false;  // scheduled explicitly (schedule()), so counted in Hardware::achieved_us
  Clock::time_point completed_at_{};  // the completing batch's time; written before the store of seq_
};

}  // namespace umn::sim
