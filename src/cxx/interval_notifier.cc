// interval_notifier.cc - the C++ notifier classes: static ops tables whose trampolines turn the C
// callbacks into virtual calls. A umn_interval_notifier* is the first member of IntervalNotifier::Link,
// and a umn_interval_notifier_finish* the first member of FinishRecord, so no container_of is needed.
// The destructor and remove() read the core's notifier state: they live in src/core/cxx_lifetime.cc.
#include "umn/interval_notifier.hpp"

#include <cstddef>
#include <type_traits>

namespace umn {

struct NotifierTrampolines {
  static IntervalNotifier& self(umn_interval_notifier* sub) noexcept {
    return *reinterpret_cast<IntervalNotifier::Link*>(sub)->self;
  }
  static bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) noexcept {
    return self(sub).invalidate(Range(*range), cur_seq);
  }
  static bool invalidate_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                               umn_interval_notifier_finish** finish) noexcept {
    FinishRecord* record = nullptr;
    bool ok = static_cast<TwoPassNotifier&>(self(sub)).invalidate_start(Range(*range), cur_seq, record);
    *finish = record != nullptr ? &record->c_ : nullptr;
    return ok;
  }
  static void invalidate_finish(umn_interval_notifier_finish* finish) noexcept {
    auto* record = reinterpret_cast<FinishRecord*>(finish);
    static_cast<TwoPassNotifier&>(self(finish->notifier)).invalidate_finish(*record);
  }
  static_assert(std::is_standard_layout_v<FinishRecord> && offsetof(FinishRecord, c_) == 0);
  static_assert(std::is_standard_layout_v<IntervalNotifier::Link> && offsetof(IntervalNotifier::Link, c) == 0);

  static constexpr umn_interval_notifier_ops kSinglePass = {&invalidate, nullptr, nullptr};
  static constexpr umn_interval_notifier_ops kTwoPass = {nullptr, &invalidate_start, &invalidate_finish};
};

IntervalNotifier::IntervalNotifier() noexcept : link_{{}, this} {}

std::error_code IntervalNotifier::insert(umn_mm* mm, uint64_t start, uint64_t length) noexcept {
  if (inserted_) return std::make_error_code(std::errc::invalid_argument);
  int err = umn_interval_notifier_insert(&link_.c, mm, start, length, ops_table());
  inserted_ = err == 0;
  return errno_code(err);
}

const umn_interval_notifier_ops* IntervalNotifier::ops_table() const noexcept {
  return &NotifierTrampolines::kSinglePass;
}

bool TwoPassNotifier::invalidate(const Range& range, unsigned long cur_seq) noexcept {
  FinishRecord* record = nullptr;
  bool ok = invalidate_start(range, cur_seq, record);
  if (ok && record != nullptr) invalidate_finish(*record);
  return ok;
}

const umn_interval_notifier_ops* TwoPassNotifier::ops_table() const noexcept { return &NotifierTrampolines::kTwoPass; }

}  // namespace umn
