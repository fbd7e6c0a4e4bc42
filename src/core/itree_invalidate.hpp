// itree_invalidate.hpp - the interval-tree half of an invalidation (private to libumn).
//
// Context: may sleep when the range is blockable (callbacks may). Takes Subscriptions::lock twice per
// invalidation (epoch start and end), never per notifier, and allocates nothing: finish records are the
// caller's and are queued through their own link.
#pragma once

#include <cstdint>

#include "core/subscriptions.hpp"

namespace umn::detail {

// Opens (or joins) an epoch for [range->start, last], calls every overlapping notifier's first pass,
// then every queued second pass in first-pass order. On success the range stays counted in `active`
// until itree_invalidate_end(). On a non-blockable failure the range is already ended and -EAGAIN is
// returned. Return: 0 or -EAGAIN.
int itree_invalidate(Subscriptions& subs, const umn_notifier_range* range, uint64_t last) noexcept;

// Ends one range: the last range of an odd epoch makes seq even, applies the deferred inserts and
// removes, and wakes read_begin / remove waiters.
void itree_invalidate_end(Subscriptions& subs) noexcept;

// True if the calling thread is inside an interval-tree walk of subs (running a first or second pass
// of one of its notifiers): a wait for the end of subs's epoch would then never end. Used by remove and
// read_begin to report that misuse instead of hanging.
bool itree_walking(const Subscriptions& subs) noexcept;

}  // namespace umn::detail
