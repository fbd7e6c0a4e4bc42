// invalidate.cc - the memory-management side: range start/end and address-space release.
//
// Dispatch (the kernel's order): the interval tree first, then the classic notifiers. Each range records
// in umn_private what its start did, so that its end undoes exactly that, and so that a non-blockable
// failure of the classic half can undo the interval-tree half (the kernel leaks it; see
// docs/semantics.md 6.1(6)).
#include <cerrno>
#include <mutex>

#include "base/check.hpp"
#include "core/fork.hpp"
#include "core/itree_invalidate.hpp"
#include "core/subscriptions.hpp"

using namespace umn::detail;

namespace {

// Waits, under subs.lock, until no insert is deferred: a notifier still on the deferred list when the
// release walk runs would never get its RELEASE (I-16). Inserts are refused once `released` is set, so
// this ends with the epoch that froze the tree (or earlier, if the pending inserts are cancelled).
void wait_for_deferred_inserts(Subscriptions& subs, UniqueLock& guard) noexcept UMN_REQUIRES(subs.lock) {
  auto none_pending = [&subs] {
    subs.lock.assert_held();  // called here and by the wait, both with the lock held
    for (umn_interval_notifier* sub = subs.deferred; sub != nullptr; sub = sub->deferred_next)
      if (sub->state == kStatePendingInsert) return false;
    return true;
  };
  if (none_pending()) return;
  subs.waiters++;
  subs.epoch_ended.wait(guard, none_pending);
  subs.waiters--;
}

// The address space this thread is tearing down (inside umn_notifier_release's walks), else null.
thread_local const umn_mm* t_tearing_down = nullptr;

// A release that finds teardown begun waits, under subs.lock, until it has finished: when any release
// returns, every RELEASE and ->release has run and the classic list is empty. From a callback of that
// teardown (same thread) it would wait for itself: diagnosed, returns at once.
void wait_for_teardown(Subscriptions& subs, const umn_mm* mm, UniqueLock& guard) noexcept UMN_REQUIRES(subs.lock) {
  if (subs.release_done) return;
  if (!UMN_CHECK(t_tearing_down != mm, "umn_notifier_release", "called from a callback of its own teardown"))
    return;
  subs.waiters++;
  subs.epoch_ended.wait(guard, [&subs] {
    subs.lock.assert_held();  // the wait runs its predicate with the lock held
    return subs.release_done;
  });
  subs.waiters--;
}

// Start of a range on an address space. Return: 0 or -EAGAIN (already undone), -EINVAL (bad range).
int range_start(umn_notifier_range* range, const char* call) noexcept {
  if (!UMN_CHECK(range != nullptr && range->mm != nullptr, call, "NULL range or address space"))
    return -EINVAL;
  range->umn_private = 0;
  // A WARN, not misuse (check.hpp): the kernel accepts an empty range, whose walk finds nothing; nothing
  // was started.
  if (UMN_WARN_ON(range->start >= range->end, call, "range with start >= end")) return -EINVAL;
  umn_mm* mm = range->mm;
  Subscriptions* subs = subscriptions_of(mm);
  if (subs == nullptr) {
    // Announce, then look again (see mm.cc): a concurrent creation either is seen here or waits for us.
    mm->bare_ranges.fetch_add(1, std::memory_order_seq_cst);
    if (mm->is_process) t_own_process_ranges.bare++;  // core/fork.hpp
    subs = mm->subscriptions.load(std::memory_order_seq_cst);
    if (subs == nullptr) {
      range->umn_private = kRangeBare;
      return 0;
    }
    mm->bare_ranges.fetch_sub(1, std::memory_order_seq_cst);
    if (mm->is_process) t_own_process_ranges.bare--;
  }
  // Recorded before the callbacks run, so that a range_end after a start that a callback left with a
  // siglongjmp still ends the interval-tree half (the process hooks do that: thread_state.hpp).
  range->umn_private = kRangeItreeStarted;
  if (int err = itree_invalidate(*subs, range, range->end - 1); err != 0) {
    range->umn_private = 0;
    return err;
  }
  if (classic_empty(*subs)) return 0;
  if (int err = classic_invalidate_start(*subs, range); err != 0) {
    itree_invalidate_end(*subs);
    range->umn_private = 0;
    return err;
  }
  range->umn_private |= kRangeClassicStarted;
  return 0;
}

}  // namespace

extern "C" {

void umn_notifier_range_init(umn_notifier_range* range, umn_notifier_event event, unsigned flags, umn_mm* mm,
                             uint64_t start, uint64_t end) {
  umn_notifier_range_init_owner(range, event, flags, mm, start, end, nullptr);
}

void umn_notifier_range_init_owner(umn_notifier_range* range, umn_notifier_event event, unsigned flags,
                                   umn_mm* mm, uint64_t start, uint64_t end, void* owner) {
  range->mm = mm;
  range->start = start;
  range->end = end;
  range->event = event;
  range->flags = flags;
  range->owner = owner;
  range->umn_private = 0;
}

bool umn_notifier_range_blockable(const umn_notifier_range* range) {
  return (range->flags & UMN_NOTIFIER_RANGE_BLOCKABLE) != 0;
}

void umn_notifier_invalidate_range_start(umn_notifier_range* range) {
  if (range != nullptr) range->flags |= UMN_NOTIFIER_RANGE_BLOCKABLE;
  range_start(range, "umn_notifier_invalidate_range_start");  // cannot fail when blockable
}

int umn_notifier_invalidate_range_start_nonblock(umn_notifier_range* range) {
  if (range != nullptr) range->flags &= ~UMN_NOTIFIER_RANGE_BLOCKABLE;
  return range_start(range, "umn_notifier_invalidate_range_start_nonblock");
}

void umn_notifier_invalidate_range_end(umn_notifier_range* range) {
  if (!UMN_CHECK(range != nullptr && range->mm != nullptr, "umn_notifier_invalidate_range_end",
                 "NULL range or address space"))
    return;
  const unsigned started = range->umn_private;
  range->umn_private = 0;  // a second end is a no-op rather than an unbalanced count
  if ((started & kRangeBare) != 0) {
    range->mm->bare_ranges.fetch_sub(1, std::memory_order_seq_cst);
    if (range->mm->is_process) t_own_process_ranges.bare--;
    return;
  }
  Subscriptions* subs = subscriptions_of(range->mm);
  // An end without a counted start (start failed with -EINVAL/-EAGAIN, or a second end) before the
  // address space has subscriptions: nothing to undo, and no subscriptions to look at.
  if (subs == nullptr) return;
  // Snapshot the classic list while this range still counts in `active` (registration waits for 0), so
  // a notifier registered once the interval-tree end lowers it gets no end without its start.
  ClassicEndWalk classic_end(subs, (started & kRangeClassicStarted) != 0);
  if ((started & kRangeItreeStarted) != 0) itree_invalidate_end(*subs);
  classic_end.run(range);
}

void umn_notifier_release(umn_mm* mm) {
  if (!UMN_CHECK(mm != nullptr, "umn_notifier_release", "NULL address space")) return;
  Subscriptions* subs = subscriptions_get_or_create(mm);
  if (subs == nullptr) return;  // nothing was ever subscribed, and nothing can be now
  {
    SignalsHeld hold(mm);
    UniqueLock guard(subs->lock);
    if (subs->released) {
      wait_for_teardown(*subs, mm, guard);
      return;
    }
    subs->released = true;
    wait_for_deferred_inserts(*subs, guard);
  }
  const umn_mm* const outer = t_tearing_down;
  t_tearing_down = mm;
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_RELEASE, UMN_NOTIFIER_RANGE_BLOCKABLE, mm, 0, UINT64_MAX);
  // The walk covers the very last byte too: RELEASE is over the whole space.
  itree_invalidate(*subs, &range, UINT64_MAX);
  itree_invalidate_end(*subs);
  classic_release(*subs, mm);
  t_tearing_down = outer;
  SignalsHeld hold(mm);
  MutexLock guard(subs->lock);
  subs->release_done = true;
  if (subs->waiters > 0) subs->epoch_ended.notify_all();
}

}  // extern "C"
