// submission.cc - one doorbell write: the Hardware lock and one clock reading for several operations.
#include "users/sim/submission.hpp"

#include "base/check.hpp"
#include "users/sim/fence_slot.hpp"

namespace umn::sim {

Submission::Submission(Hardware& hardware) noexcept : hardware_(hardware), now_((hardware.mutex_.lock(), Clock::now())) {}

Submission::~Submission() { hardware_.mutex_.unlock(); }

void Submission::enable(const Fence& fence) noexcept {
  if (fence.signaled()) return;
  UMN_DCHECK(&fence.slot_->hardware_ == &hardware_);
  hardware_.mutex_.assert_held();  // for the submission's lifetime
  hardware_.enable_locked(*fence.slot_, fence.point_, now_);
}

}  // namespace umn::sim
