// hardware.cc - the simulated hardware's timer thread and the fence protocol.
//
// Doorbell: queueing an operation ahead of the one the timer thread sleeps for does not wake it at once;
// it records a pending kick, which the next Fence::wait delivers (one notify_one) before sleeping. Waking
// a sleeping thread costs the waker ~15 us on the 2-vCPU VM (a cross-vCPU interrupt); paid in the middle
// of a first pass it delayed every later device's submission, paid at the first wait it overlaps the
// devices' own latency. Consequence: an operation nobody waits for may complete late (never early).
//
// Algorithm: scheduled slots sit in one singly linked list ordered by deadline (appending is O(1), the
// common case; an earlier deadline walks the list, which holds at most a few operations per device). The
// timer thread sleeps on a condition variable until the head's deadline, or until a submitter queues an
// earlier deadline and wakes it; then it completes every slot whose deadline passed: retire() (the
// device-side effect) and the release store of the even sequence number; and only after the whole batch
// it wakes the waiters (interrupt coalescing: a waiter woken in the middle of a batch would find its next
// fence not yet signaled and sleep again, paying a second wake-up).
//
// Guarantees
//   1. An operation never completes before its deadline; how late it completes is recorded (lateness_).
//   2. retire() happens-before any observation of the fence as signaled (release store, acquire load).
//   3. A waiter never sleeps through its signal: it increments waiters_ then re-reads seq_; the timer
//      thread stores seq_ then reads waiters_ (all seq_cst), so one of them sees the other; FUTEX_WAIT's
//      compare of seq_ with the awaited point closes the remaining window.
//   4. Once ~FenceSlot has taken mutex_, the timer thread no longer touches the slot: it unlinks,
//      signals and wakes slots only under mutex_.
//   5. arm() is a fetch_add (acq_rel), which continues the release sequence of the completing store, so
//      a thread that reads a later point still sees the earlier operation's retire() effects.
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

// Sleeps while *word == expected (std::atomic::wait in libstdc++ 12 spins and yields first: tens of us
// of CPU per wait, which 64 devices on 2 cores cannot afford). Spurious returns are re-checked by callers.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) noexcept {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>& word) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

bool Fence::signaled() const noexcept {
  // Pairs with the seq_cst (release) store in Hardware::complete_locked.
  return slot_ == nullptr || slot_->seq_.load(std::memory_order_acquire) != point_;
}

void Fence::enable_signaling() const noexcept {
  if (!signaled()) slot_->hardware_.enable(*slot_, point_);
}

void Fence::wait() const noexcept {
  if (signaled()) return;
  enable_signaling();
  slot_->hardware_.kick();
  slot_->waiters_.fetch_add(1, std::memory_order_seq_cst);
  // seq_cst: the Dekker pair with complete_locked (guarantee 3).
  while (slot_->seq_.load(std::memory_order_seq_cst) == point_) futex_wait(slot_->seq_, point_);
  slot_->waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void Fence::wait_all(std::span<const Fence> fences) noexcept {
  for (const Fence& fence : fences) fence.enable_signaling();
  for (const Fence& fence : fences) fence.wait();
}

void FenceSlot::detach() noexcept {
  std::lock_guard guard(hardware_.mutex_);
  if (queued_) hardware_.unlink_locked(*this);
}

Fence FenceSlot::arm() noexcept {
  // acq_rel RMW: continues the release sequence of the last completion (guarantee 5).
  const uint32_t previous = seq_.fetch_add(1, std::memory_order_acq_rel);
  UMN_DCHECK(previous % 2 == 0);
  return Fence(this, previous + 1);
}

void FenceSlot::schedule(const LatencyModel& latency) noexcept {
  std::lock_guard guard(hardware_.mutex_);
  hardware_.schedule_locked(*this, latency, Clock::now());
  measured_ = true;
}

Fence FenceSlot::current() const noexcept {
  const uint32_t seq = seq_.load(std::memory_order_acquire);
  if (seq == 0) return Fence();
  return Fence(const_cast<FenceSlot*>(this), seq % 2 == 1 ? seq : seq - 1);
}

Hardware::Hardware(uint64_t seed) : random_(seed), thread_([this] { run(); }) {}

Hardware::~Hardware() {
  {
    std::lock_guard guard(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Hardware::enable(FenceSlot& slot, uint32_t point) noexcept {
  std::lock_guard guard(mutex_);
  const LatencyModel* latency = slot.lazy_latency();
  if (latency != nullptr && slot.seq_.load(std::memory_order_relaxed) == point && slot.enabled_point_ != point)
    schedule_locked(slot, *latency, Clock::now());
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
  if (head_ == nullptr || slot.deadline_ < head_->deadline_) {
    slot.next_ = head_;
    head_ = &slot;
    if (tail_ == nullptr) tail_ = &slot;
    kick_pending_.store(true, std::memory_order_release);  // the timer thread sleeps past this deadline
    return;
  }
  FenceSlot* prev = slot.deadline_ >= tail_->deadline_ ? tail_ : head_;
  while (prev->next_ != nullptr && prev->next_->deadline_ <= slot.deadline_) prev = prev->next_;
  slot.next_ = prev->next_;
  prev->next_ = &slot;
  if (tail_ == prev) tail_ = &slot;
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
}

bool Hardware::complete_locked(FenceSlot& slot) noexcept {
  const Clock::time_point now = Clock::now();
  lateness_.record(now - slot.deadline_);
  if (slot.measured_) achieved_.record(now - slot.submitted_at_);
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
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (head_ == nullptr) {
      wake_.wait(lock);
      continue;
    }
    if (head_->deadline_ > Clock::now()) {
      wake_.wait_until(lock, head_->deadline_);
      continue;
    }
    complete_due_locked();
  }
}

void Hardware::complete_due_locked() noexcept {
  std::array<FenceSlot*, 64> wake;
  size_t count = 0;
  while (head_ != nullptr && head_->deadline_ <= Clock::now()) {
    FenceSlot& slot = *head_;
    unlink_locked(slot);
    if (!complete_locked(slot)) continue;
    if (count == wake.size()) futex_wake_all(slot.seq_);
    else wake[count++] = &slot;
  }
  for (size_t i = 0; i < count; i++) futex_wake_all(wake[i]->seq_);
}

}  // namespace umn::sim
