// hardware.cc - the simulated hardware's timer thread, and the fence protocol it shares with fence.cc,
// fence_slot.cc and submission.cc (the numbered guarantees below are cited from there).
//
// Doorbell: queueing an operation ahead of the one the timer thread sleeps for does not wake it at once;
// it records a pending kick, which the next Fence::wait delivers (one notify_one) before sleeping. Waking
// a sleeping thread costs the waker ~15 us on the 2-vCPU VM (a cross-vCPU interrupt); paid in the middle
// of a first pass it delayed every later device's submission, paid at the first wait it overlaps the
// devices' own latency. Consequence: an operation nobody waits for may complete late (never early).
//
// Algorithm: scheduled slots sit in one singly linked list ordered by deadline. Appending is O(1). An
// earlier deadline starts from the last slot of its latency class (hints_): deadlines of one class grow
// with submission time, so in a D-device first pass, which interleaves preemptions (20 us) and TLB
// invalidations (50 us), each preemption lands right after the previous one in O(1) instead of a walk
// past every earlier preemption, O(D) per device. Without a usable hint the walk starts at the head. The
// timer thread sleeps on a condition variable until the head's deadline, or until a submitter queues an
// earlier deadline and wakes it; then it completes every slot whose deadline passed: retire() (the
// device-side effect) and the seq_cst store of the even sequence number; and only after the whole batch
// it wakes the waiters (interrupt coalescing: a waiter woken in the middle of a batch would find its next
// fence not yet signaled and sleep again, paying a second wake-up).
// The batch is what delays the waiter's wake-up in proportion to D, so it is kept lean: one clock read
// for the whole batch (every operation in it completes at that time, as on one interrupt), statistics
// recorded with plain stores (the timer thread is their only writer), and the next slot prefetched
// (a submitter on the other CPU wrote it last). A 32-device TLB batch took 15.5 us before, with a clock
// read and six atomic read-modify-writes per operation.
//
// Guarantees
//   1. An operation never completes before its deadline; how late it completes is recorded (lateness_).
//   2. retire() happens-before any observation of the fence as signaled (a seq_cst store, so a release,
//      and an acquire load).
//   3. A waiter never sleeps through its signal: it increments waiters_ then re-reads seq_; the timer
//      thread stores seq_ then reads waiters_ (all seq_cst), so one of them sees the other; FUTEX_WAIT's
//      compare of seq_ with the awaited point closes the remaining window.
//   4. Once ~FenceSlot has taken mutex_, the timer thread no longer touches the slot: it unlinks,
//      signals and wakes slots only under mutex_.
//   5. arm() is a fetch_add (acq_rel), which continues the release sequence of the completing store, so
//      a thread that reads a later point still sees the earlier operation's retire() effects.
//   6. Slots complete in queue (deadline) order, and a batch's waiters are woken only after the whole
//      batch signaled: so a waiter woken by the queued fence with the latest deadline finds every
//      earlier-queued fence signaled too (Fence::wait_all sleeps once).
#include "users/sim/hardware.hpp"

#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cmath>

#include "base/check.hpp"

namespace umn::sim {
namespace {

void futex_wake_all(std::atomic<uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

Hardware::Hardware(uint64_t seed) : random_(seed), thread_([this] { run(); }) {}

Hardware::~Hardware() {
  {
    umn::detail::MutexLock guard(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Hardware::enable(FenceSlot& slot, uint32_t point) noexcept {
  umn::detail::MutexLock guard(mutex_);
  enable_locked(slot, point, Clock::now());
}

void Hardware::enable_locked(FenceSlot& slot, uint32_t point, Clock::time_point now) noexcept {
  const LatencyModel* latency = slot.lazy_latency();
  if (latency != nullptr && slot.seq_.load(std::memory_order_relaxed) == point && slot.enabled_point_ != point)
    schedule_locked(slot, *latency, now);
}

const Fence* Hardware::last_to_complete(std::span<const Fence> fences) noexcept {
  umn::detail::MutexLock guard(mutex_);
  const Fence* last = nullptr;
  for (const Fence& fence : fences) {
    if (fence.signaled()) continue;
    UMN_DCHECK(&fence.slot_->hardware_ == this);
    const FenceSlot& slot = *fence.slot_;
    if (last == nullptr || !slot.queued_ || (last->slot_->queued_ && slot.deadline_ > last->slot_->deadline_))
      last = &fence;
  }
  return last;
}

void Hardware::kick() noexcept {
  // Pairs with the release store in schedule_locked: the timer thread, woken, reads the queue under mutex_.
  if (kick_pending_.load(std::memory_order_acquire) && kick_pending_.exchange(false, std::memory_order_acq_rel))
    wake_.notify_one();
}

void Hardware::schedule_locked(FenceSlot& slot, const LatencyModel& latency, Clock::time_point now) {
  UMN_DCHECK(!slot.queued_);
  slot.enabled_point_ = slot.seq_.load(std::memory_order_relaxed);
  slot.submitted_at_ = now;
  slot.measured_ = false;
  slot.deadline_ = now + draw_locked(latency);
  slot.queued_ = true;
  FenceSlot* prev = insertion_hint_locked(slot, latency.latency);
  if (prev == nullptr) {
    slot.next_ = head_;
    head_ = &slot;
    if (tail_ == nullptr) tail_ = &slot;
    kick_pending_.store(true, std::memory_order_release);  // the timer thread sleeps past this deadline
    return;
  }
  while (prev->next_ != nullptr && prev->next_->deadline_ <= slot.deadline_) prev = prev->next_;
  slot.next_ = prev->next_;
  prev->next_ = &slot;
  if (tail_ == prev) tail_ = &slot;
}

FenceSlot* Hardware::insertion_hint_locked(const FenceSlot& slot, Nanos latency) noexcept {
  Hint* hint = &hints_[0];
  for (Hint& candidate : hints_)
    if (candidate.latency == latency || candidate.last == nullptr) {
      hint = &candidate;
      if (candidate.latency == latency) break;
    }
  FenceSlot* start = hint->latency == latency ? hint->last : nullptr;
  hint->latency = latency;
  hint->last = const_cast<FenceSlot*>(&slot);
  if (head_ == nullptr || slot.deadline_ < head_->deadline_) return nullptr;  // the new head
  if (slot.deadline_ >= tail_->deadline_) return tail_;
  return start != nullptr && start->deadline_ <= slot.deadline_ ? start : head_;
}

void Hardware::unlink_locked(FenceSlot& slot) noexcept {
  FenceSlot** link = &head_;
  FenceSlot* prev = nullptr;
  while (*link != &slot) {
    prev = *link;
    link = &prev->next_;
  }
  *link = slot.next_;
  if (tail_ == &slot) tail_ = prev;
  slot.next_ = nullptr;
  slot.queued_ = false;
  for (Hint& hint : hints_)
    if (hint.last == &slot) hint.last = nullptr;
}

bool Hardware::complete_locked(FenceSlot& slot, Clock::time_point now) noexcept {
  lateness_.record_exclusive(now - slot.deadline_);
  if (slot.measured_) achieved_.record_exclusive(now - slot.submitted_at_);
  slot.retire();
  slot.completed_at_ = now;
  const uint32_t point = slot.seq_.load(std::memory_order_relaxed);
  // Pairs with the acquire loads in Fence::signaled / Fence::wait (guarantees 2 and 3).
  slot.seq_.store(point + 1, std::memory_order_seq_cst);
  return slot.waiters_.load(std::memory_order_seq_cst) != 0;
}

Nanos Hardware::draw_locked(const LatencyModel& latency) {
  const double base = static_cast<double>(latency.latency.count());
  switch (latency.kind) {
    case LatencyModel::Kind::kFixed:
      return latency.latency;
    case LatencyModel::Kind::kUniform:
      return Nanos(static_cast<int64_t>(std::uniform_real_distribution<double>(0.5, 1.5)(random_) * base));
    case LatencyModel::Kind::kLogNormal:
      return Nanos(static_cast<int64_t>(
          std::lognormal_distribution<double>(std::log(base), latency.sigma)(random_)));
  }
  return latency.latency;
}

void Hardware::run() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // 1 ns: wake at the deadline, not up to 50 us later
  // Deliberately not SCHED_FIFO: a real-time timer thread preempts the invalidating thread in the middle
  // of its first pass every time a deadline falls due, which tripled the D = 32 first pass (measured).
  umn::detail::UniqueLock lock(mutex_);
  while (!stop_) {
    if (head_ == nullptr) {
      wake_.wait(lock);
      continue;
    }
    // A copy: wait_until reads its deadline again after re-locking, when the slot may be gone (a queued
    // slot may be destroyed while the lock is released; ASan caught the read of the freed slot).
    const Clock::time_point deadline = head_->deadline_;
    if (deadline > Clock::now()) {
      wake_.wait_until(lock, deadline);
      continue;
    }
    complete_due_locked();
  }
}

void Hardware::complete_due_locked() noexcept {
  std::array<FenceSlot*, 64> wake;
  size_t count = 0;
  const Clock::time_point now = Clock::now();  // one clock read per batch (see the file comment)
  while (head_ != nullptr && head_->deadline_ <= now) {
    FenceSlot& slot = *head_;
    if (slot.next_ != nullptr) __builtin_prefetch(slot.next_, 1);  // last written by a submitter's CPU
    unlink_locked(slot);
    if (!complete_locked(slot, now)) continue;
    if (count == wake.size()) futex_wake_all(slot.seq_);
    else wake[count++] = &slot;
  }
  for (size_t i = 0; i < count; i++) futex_wake_all(wake[i]->seq_);
}

}  // namespace umn::sim
