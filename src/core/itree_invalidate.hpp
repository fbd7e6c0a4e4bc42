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

// For a notifier whose memory is about to go while this thread walks its tree (destroyed from a callback
// of its own address space: misuse, which its caller has diagnosed; remove() would wait for this very
// walk). Puts a tombstone in its place in the tree (removed and freed at the epoch's end), marks it
// removed, moves this thread's walks past it and drops its queued finish records, so nothing of this
// thread touches it again. A walk of another thread that is at this notifier right now is not covered
// (as for any notifier destroyed while its callback runs). Allocates the tombstone (nothrow).
// Return: true when done; false when this thread is not walking its tree, it is not in the tree (remove
// may do), or the allocation failed.
bool itree_abandon(umn_interval_notifier* sub) noexcept;

}  // namespace umn::detail
