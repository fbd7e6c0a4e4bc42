// fence.cc - waiting for a fence: signaled(), enable_signaling(), wait() and wait_all(). The protocol and
// the guarantees cited here are in hardware.cc.
#include "users/sim/fence.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "users/sim/fence_slot.hpp"
#include "users/sim/hardware.hpp"

namespace umn::sim {
namespace {

// Sleeps while *word == expected (std::atomic::wait in libstdc++ 12 spins and yields first: tens of us
// of CPU per wait, which 64 devices on 2 cores cannot afford). Spurious returns are re-checked by callers.
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) noexcept {
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
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
  sleep();
}

void Fence::sleep() const noexcept {
  slot_->waiters_.fetch_add(1, std::memory_order_seq_cst);
  // seq_cst: the Dekker pair with complete_locked (guarantee 3).
  while (slot_->seq_.load(std::memory_order_seq_cst) == point_) {
    slot_->hardware_.waiter_sleeps_.fetch_add(1, std::memory_order_relaxed);
    futex_wait(slot_->seq_, point_);
  }
  slot_->waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void Fence::wait_all(std::span<const Fence> fences) noexcept {
  Hardware* hardware = nullptr;
  for (const Fence& fence : fences) {
    if (fence.signaled()) continue;
    fence.enable_signaling();
    hardware = &fence.slot_->hardware_;
  }
  if (hardware == nullptr) return;
  hardware->kick();
  // Guarantee 6: once the last one signaled, so did the others; the loop re-checks all the same.
  while (const Fence* last = hardware->last_to_complete(fences)) last->sleep();
}

}  // namespace umn::sim
