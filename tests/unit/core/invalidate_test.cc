// invalidate_test.cc - the memory-management side through the C API: bad ranges, range_start/_end
// pairing, and release (I-16, I-17: exactly one RELEASE per notifier, both passes, over the whole space;
// inserts fail afterwards; notifiers stay removable).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "support/core_test.hpp"

namespace {

using namespace umn::test;  // NOLINT(google-build-using-namespace): the shared test doubles

class Invalidate : public AddressSpaceTest {};

// A non-blocking start with start >= end is -EINVAL and diagnosed; the address space is not left
// invalidating (a reader of an overlapping notifier does not wait).
TEST_F(Invalidate, NonblockStartRejectsAnEmptyOrReversedRange) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, kPage, kPage);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EINVAL);
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, kPage, 0);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EINVAL);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(nullptr), -EINVAL);
  EXPECT_EQ(diags_.count(), 3u);
  EXPECT_EQ(log_.size(), 0u);
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.finishes());
  a.remove();
}

// A blocking start with start >= end is diagnosed and ignored; its range_end is a no-op, and later
// invalidations behave normally.
TEST_F(Invalidate, BlockingStartIgnoresAnEmptyRangeAndItsEnd) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, kPage, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(diags_.count("umn_notifier_invalidate_range_start"), 1u);
  EXPECT_EQ(log_.size(), 0u);
  umn::test::invalidate(mm_, 0, kPage);
  umn::test::invalidate(mm_, 0, kPage);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].cur_seq, calls[0].cur_seq + 2);
  a.remove();
}

// The start wrappers set or clear UMN_NOTIFIER_RANGE_BLOCKABLE themselves, whatever the caller passed.
TEST_F(Invalidate, StartWrappersDecideBlockability) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, UMN_NOTIFIER_RANGE_BLOCKABLE, mm_, 0, kPage);
  ASSERT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), 0);
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_FALSE(calls[0].blockable);
  EXPECT_TRUE(calls[1].blockable);
  a.remove();
}

// An address space with no subscriptions at all takes invalidations and ends them without effect.
TEST_F(Invalidate, RangesOnAnAddressSpaceWithoutNotifiersAreHarmless) {
  ScopedRange blocking(mm_, 0, kPage);
  ScopedRange nonblock(mm_, 0, kPage, ScopedRange::kNonBlock);
  EXPECT_EQ(nonblock.result(), 0);
  EXPECT_EQ(diags_.count(), 0u);
}

// Release calls every notifier exactly once (either pass kind, the second pass too), blockable, with
// RELEASE over the whole space — also the one covering only the very last byte (I-16).
TEST_F(Invalidate, ReleaseCallsEveryNotifierOnceOverTheWholeSpace) {
  RecordingNotifier a(1, &log_), b(2, &log_, Mode::kTwoPass), top(3, &log_, Mode::kTwoPass);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 1ull << 40, kPage), 0);
  ASSERT_EQ(top.insert(mm_, kMax, 1), 0);
  umn_notifier_release(mm_);
  umn_notifier_release(mm_);  // runs once
  auto calls = log_.calls();
  for (int id : {1, 2, 3}) EXPECT_EQ(log_.first_passes(id), 1) << "notifier " << id;
  EXPECT_EQ(log_.ids(CallKind::kFinish), (std::vector<int>{2, 3}));
  for (const auto& call : calls) {
    if (call.kind == CallKind::kFinish) continue;
    EXPECT_EQ(call.event, UMN_NOTIFY_RELEASE);
    EXPECT_TRUE(call.blockable);
    EXPECT_EQ(call.start, 0u);
    EXPECT_EQ(call.end, kMax);
  }
  EXPECT_EQ(diags_.count(), 0u);
  for (RecordingNotifier* n : {&a, &b, &top}) n->remove();
}

// After release, inserts fail with -EINVAL; notifiers inserted before stay in the tree (ranges still call
// them), stay removable, and destroying the address space releases nothing again (I-17).
TEST_F(Invalidate, AfterReleaseInsertsFailAndNotifiersStayRemovable) {
  RecordingNotifier a(1, &log_), late(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(late.insert(mm_, 0, kPage), -EINVAL);
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.first_passes(1), 2);
  a.remove();
  umn_mm_destroy(mm_);
  mm_ = nullptr;
  EXPECT_EQ(log_.first_passes(1), 2);
  EXPECT_EQ(log_.first_passes(2), 0);
}

// Release on an address space that never had a notifier makes later inserts fail too.
TEST_F(Invalidate, ReleaseOfAFreshAddressSpaceRefusesLaterInserts) {
  umn_notifier_release(mm_);
  RecordingNotifier a(1, &log_);
  EXPECT_EQ(a.insert(mm_, 0, kPage), -EINVAL);
}

// A release callback that returns false is diagnosed and the release still reaches every notifier.
TEST_F(Invalidate, ReleaseContinuesPastAFailingCallback) {
  RecordingNotifier bad(1, &log_), b(2, &log_, Mode::kTwoPass);
  bad.fail_always = true;
  ASSERT_EQ(bad.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(log_.first_passes(1), 1);
  EXPECT_EQ(log_.first_passes(2), 1);
  EXPECT_EQ(log_.count(CallKind::kFinish, 2), 1);
  EXPECT_GE(diags_.count(), 1u);
  bad.remove();
  b.remove();
}

// A release that runs while another range holds the epoch open ends cleanly: readers wait for the other
// range only, and the other range's end completes the epoch.
TEST_F(Invalidate, ReleaseDuringAnOpenRangeKeepsTheEpochBalanced) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 0, kPage);
  umn_notifier_release(mm_);
  EXPECT_EQ(log_.first_passes(1), 2);
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked());
  range.reset();
  EXPECT_TRUE(reader.finishes());
  a.remove();
}

// A notifier whose insert is still deferred when release runs (an epoch is open) gets its RELEASE too:
// release waits for the epoch to end, so the insert has reached the tree before the walk (I-16).
TEST_F(Invalidate, ReleaseReachesANotifierWhoseInsertWasDeferred) {
  RecordingNotifier a(1, &log_), pending(2, &log_, Mode::kTwoPass);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 0, kPage);  // hits a: the tree is frozen
  ASSERT_EQ(pending.insert(mm_, 4 * kPage, kPage), 0);          // deferred
  AsyncCall release([&] { umn_notifier_release(mm_); });
  EXPECT_TRUE(release.stays_blocked());
  range.reset();
  ASSERT_TRUE(release.finishes());
  EXPECT_EQ(log_.first_passes(1), 2);
  EXPECT_EQ(log_.first_passes(2), 1);
  EXPECT_EQ(log_.count(CallKind::kFinish, 2), 1);
  EXPECT_EQ(log_.calls().back().kind, CallKind::kFinish);
  a.remove();
  pending.remove();
}

}  // namespace
