// address_space.hpp - umn::AddressSpace (RAII owner of a struct umn_mm) and umn::Invalidation (RAII
// range start/end, as the memory-management side issues them).
//
// Locking: none of its own; see umn.h for the subscription lock and what callbacks may call.
// Lifetime: an owning AddressSpace destroys its umn_mm in its destructor (umn_mm_destroy: release, then
//   the memory goes with the last notifier removed). AddressSpace::process() does not own.
//   An Invalidation must end (destructor) on the thread of your choice, before its AddressSpace dies.
// Context: constructing and destroying may sleep; never from a callback.
#pragma once

#include <cstdint>
#include <utility>

#include "umn/range.hpp"
#include "umn/result.hpp"
#include "umn/umn.h"

namespace umn {

class AddressSpace {
 public:
  // A new simulated address space. Error: ENOMEM.
  static Result<AddressSpace> create() {
    umn_mm* mm = umn_mm_create();
    if (mm == nullptr) return std::error_code(ENOMEM, std::generic_category());
    return AddressSpace(mm, true);
  }
  // This process's own address space, fed by the process hooks. Not owned.
  static AddressSpace process() noexcept { return AddressSpace(umn_mm_process(), false); }
  // Wraps an address space owned elsewhere.
  static AddressSpace borrow(umn_mm* mm) noexcept { return AddressSpace(mm, false); }

  AddressSpace(AddressSpace&& other) noexcept
      : mm_(std::exchange(other.mm_, nullptr)), owned_(std::exchange(other.owned_, false)) {}
  AddressSpace& operator=(AddressSpace&& other) noexcept {
    if (this != &other) {
      reset();
      mm_ = std::exchange(other.mm_, nullptr);
      owned_ = std::exchange(other.owned_, false);
    }
    return *this;
  }
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;
  ~AddressSpace() { reset(); }

  // Invalidates [start, end) (blockable) and ends it at once: for simulations and tests.
  void invalidate(uint64_t start, uint64_t end, Event event = Event::kUnmap) noexcept {
    umn_notifier_range range;
    umn_notifier_range_init(&range, static_cast<umn_notifier_event>(event), 0, mm_, start, end);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
  }
  // Teardown: every notifier gets RELEASE once (see umn_notifier_release).
  void release() noexcept { umn_notifier_release(mm_); }

  [[nodiscard]] umn_mm* get() const noexcept { return mm_; }

 private:
  AddressSpace(umn_mm* mm, bool owned) noexcept : mm_(mm), owned_(owned) {}
  void reset() noexcept {
    if (owned_) umn_mm_destroy(mm_);
    mm_ = nullptr;
    owned_ = false;
  }

  umn_mm* mm_;
  bool owned_;
};

// One invalidation in flight: started by the constructor (or try_start), ended by the destructor.
class Invalidation {
 public:
  // Blockable start over [start, end).
  Invalidation(AddressSpace& mm, uint64_t start, uint64_t end, Event event = Event::kUnmap,
               void* owner = nullptr) noexcept {
    init(mm, start, end, event, owner);
    umn_notifier_invalidate_range_start(&range_);
    started_ = true;
  }
  // Non-blockable start. Error: EAGAIN (a callback would sleep; nothing to end), EINVAL (bad range).
  static Result<Invalidation> try_start(AddressSpace& mm, uint64_t start, uint64_t end, Event event = Event::kUnmap,
                                        void* owner = nullptr) noexcept {
    Invalidation inv;
    inv.init(mm, start, end, event, owner);
    if (int err = umn_notifier_invalidate_range_start_nonblock(&inv.range_); err != 0) return errno_code(err);
    inv.started_ = true;
    return inv;
  }

  Invalidation(Invalidation&& other) noexcept : range_(other.range_), started_(std::exchange(other.started_, false)) {}
  Invalidation& operator=(Invalidation&&) = delete;
  Invalidation(const Invalidation&) = delete;
  Invalidation& operator=(const Invalidation&) = delete;
  ~Invalidation() { end(); }

  // Ends the invalidation now (idempotent).
  void end() noexcept {
    if (std::exchange(started_, false)) umn_notifier_invalidate_range_end(&range_);
  }
  [[nodiscard]] Range range() const noexcept { return Range(range_); }

 private:
  Invalidation() noexcept = default;
  void init(AddressSpace& mm, uint64_t start, uint64_t end, Event event, void* owner) noexcept {
    umn_notifier_range_init_owner(&range_, static_cast<umn_notifier_event>(event), 0, mm.get(), start, end, owner);
  }

  umn_notifier_range range_{};
  bool started_ = false;
};

}  // namespace umn
