// range.hpp - umn::Event and umn::Range: what an invalidation covers and why, for C++ callbacks.
//
// Locking: none. Lifetime: a Range is a view of a struct umn_notifier_range that lives for the duration
// of one callback; do not keep it after the callback returns. Context: any.
#pragma once

#include <cstdint>

#include "umn/umn.h"

namespace umn {

enum class Event : int {
  kUnmap = UMN_NOTIFY_UNMAP,
  kClear = UMN_NOTIFY_CLEAR,
  kProtectionVma = UMN_NOTIFY_PROTECTION_VMA,
  kProtectionPage = UMN_NOTIFY_PROTECTION_PAGE,
  kSoftDirty = UMN_NOTIFY_SOFT_DIRTY,
  kRelease = UMN_NOTIFY_RELEASE,
  kMigrate = UMN_NOTIFY_MIGRATE,
  kExclusive = UMN_NOTIFY_EXCLUSIVE,
};

// A read-only view of one invalidation: [start, end) with end exclusive.
class Range {
 public:
  explicit Range(const umn_notifier_range& range) noexcept : range_(&range) {}

  [[nodiscard]] uint64_t start() const noexcept { return range_->start; }
  [[nodiscard]] uint64_t end() const noexcept { return range_->end; }
  [[nodiscard]] uint64_t length() const noexcept { return range_->end - range_->start; }
  [[nodiscard]] Event event() const noexcept { return static_cast<Event>(range_->event); }
  // May the callback sleep? When false, return false instead of blocking.
  [[nodiscard]] bool blockable() const noexcept { return umn_notifier_range_blockable(range_); }
  [[nodiscard]] void* owner() const noexcept { return range_->owner; }
  // True if [start, start + length) intersects the range.
  [[nodiscard]] bool overlaps(uint64_t start, uint64_t length) const noexcept {
    return length != 0 && start < range_->end && (range_->start <= start || range_->start - start < length);
  }
  [[nodiscard]] const umn_notifier_range& c_range() const noexcept { return *range_; }

 private:
  const umn_notifier_range* range_;
};

}  // namespace umn
