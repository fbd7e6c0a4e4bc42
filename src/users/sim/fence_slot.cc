// fence_slot.cc - arming, scheduling and detaching a FenceSlot (guarantees cited: hardware.cc).
#include "users/sim/fence_slot.hpp"

#include "base/check.hpp"
#include "users/sim/hardware.hpp"
#include "users/sim/submission.hpp"

namespace umn::sim {

void FenceSlot::detach() noexcept {
  umn::detail::MutexLock guard(hardware_.mutex_);
  if (queued_) hardware_.unlink_locked(*this);
}

Fence FenceSlot::arm() noexcept {
  // acq_rel RMW: continues the release sequence of the last completion (guarantee 5).
  const uint32_t previous = seq_.fetch_add(1, std::memory_order_acq_rel);
  UMN_DCHECK(previous % 2 == 0);
  return Fence(this, previous + 1);
}

void FenceSlot::schedule(const LatencyModel& latency) noexcept {
  Submission submission(hardware_);
  schedule(latency, submission);
}

void FenceSlot::schedule(const LatencyModel& latency, Submission& submission) noexcept {
  UMN_DCHECK(&submission.hardware_ == &hardware_);
  hardware_.mutex_.assert_held();  // by the submission (the same Hardware, checked above)
  hardware_.schedule_locked(*this, latency, submission.now_);
  measured_ = true;
}

Fence FenceSlot::current() const noexcept {
  const uint32_t seq = seq_.load(std::memory_order_acquire);
  if (seq == 0) return Fence();
  return Fence(const_cast<FenceSlot*>(this), seq % 2 == 1 ? seq : seq - 1);
}

}  // namespace umn::sim
