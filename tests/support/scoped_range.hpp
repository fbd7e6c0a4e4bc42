// scoped_range.hpp - ScopedRange: one invalidation of a test's address space, started by the constructor
// and ended by end() or the destructor, unless a non-blocking start failed (then there is nothing to
// end: calling range_end would unbalance the active count, I-10).
//
// Locking: none of its own; the umn calls take what they take. Lifetime: a stack object; the address
//   space must outlive it. Context: not from a callback of the same address space (range_start may wait).
#pragma once

#include <cstdint>

#include "umn/umn.h"

namespace umn::test {

class ScopedRange {
 public:
  enum Mode { kBlock, kNonBlock };
  ScopedRange(umn_mm* mm, uint64_t start, uint64_t end, Mode mode = kBlock, unsigned flags = 0,
              umn_notifier_event event = UMN_NOTIFY_UNMAP) {
    umn_notifier_range_init(&range_, event, flags, mm, start, end);
    if (mode == kBlock) {
      umn_notifier_invalidate_range_start(&range_);
      open_ = true;
    } else {
      result_ = umn_notifier_invalidate_range_start_nonblock(&range_);
      open_ = result_ == 0;
    }
  }
  ScopedRange(const ScopedRange&) = delete;
  ScopedRange& operator=(const ScopedRange&) = delete;
  ~ScopedRange() { end(); }
  void end() {
    if (open_) umn_notifier_invalidate_range_end(&range_);
    open_ = false;
  }
  // The non-blocking start's return value (0 for a blockable start).
  [[nodiscard]] int result() const { return result_; }

 private:
  umn_notifier_range range_{};
  bool open_ = false;
  int result_ = 0;
};

}  // namespace umn::test
