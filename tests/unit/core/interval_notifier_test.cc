// interval_notifier_test.cc - insert, remove and the collision-retry read side through the C API:
// read_begin blocks only the invalidated notifier (I-6), read_retry / check_retry (I-7), inserts and
// removes deferred while the tree is frozen (I-4, I-8, I-9), and bad input (-EOVERFLOW, -EINVAL,
// double remove, remove of a notifier never inserted).
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "support/core_test.hpp"

namespace {

using namespace umn::test;  // NOLINT(google-build-using-namespace): the shared test doubles

class IntervalNotifier : public AddressSpaceTest {};

// A notifier inserted while idle reads an odd seq at once, and read_retry stays false with no invalidation.
TEST_F(IntervalNotifier, ReadBeginReturnsAnOddSeqAtOnceWhenIdle) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  const unsigned long seq = a.read_begin();
  EXPECT_EQ(seq % 2, 1u);
  EXPECT_FALSE(a.read_retry(seq));
  EXPECT_FALSE(umn_interval_check_retry(&a.sub, seq));
  a.remove();
}

// An invalidation that calls set_seq makes read_retry and check_retry true; the next read_begin returns
// the epoch's cur_seq, which then reads as valid (I-7).
TEST_F(IntervalNotifier, ReadRetryIsTrueExactlyAfterAnInvalidationOfThisNotifier) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  const unsigned long seq = a.read_begin();
  umn::test::invalidate(mm_, 2 * kPage, 3 * kPage);  // hits b only
  EXPECT_FALSE(a.read_retry(seq));
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_TRUE(a.read_retry(seq));
  EXPECT_TRUE(umn_interval_check_retry(&a.sub, seq));
  const unsigned long again = a.read_begin();
  EXPECT_EQ(again, log_.calls().back().cur_seq);
  EXPECT_FALSE(a.read_retry(again));
  a.remove();
  b.remove();
}

// A callback that skips set_seq (e.g. filters its own MIGRATE) leaves read_retry false: retry is driven by
// set_seq alone.
TEST_F(IntervalNotifier, CallbackWithoutSetSeqDoesNotForceARetry) {
  RecordingNotifier a(1, &log_);
  a.call_set_seq = false;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  const unsigned long seq = a.read_begin();
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.first_passes(1), 1);
  EXPECT_FALSE(a.read_retry(seq));
  a.remove();
}

// While a range that invalidated A is open, read_begin(A) blocks, and a reader of notifier B, which the
// range missed, returns at once; A's reader returns the epoch's cur_seq when the range ends (I-6).
TEST_F(IntervalNotifier, ReadBeginWaitsOnlyForTheInvalidatedNotifier) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 0, kPage);
  std::atomic<unsigned long> a_seq{0};
  AsyncCall reader_a([&] { a_seq = a.read_begin(); });
  AsyncCall reader_b([&] { (void)b.read_begin(); });
  EXPECT_TRUE(reader_b.finishes());
  EXPECT_TRUE(reader_a.stays_blocked());
  range.reset();
  ASSERT_TRUE(reader_a.finishes());
  EXPECT_EQ(a_seq.load(), log_.calls().at(0).cur_seq);
  EXPECT_FALSE(a.read_retry(a_seq));
  a.remove();
  b.remove();
}

// A reader blocked by one range keeps waiting while a nested range holds the epoch open, and returns only
// when both have ended.
TEST_F(IntervalNotifier, ReadBeginWaitsUntilEveryRangeOfTheEpochEnds) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto first = std::make_unique<ScopedRange>(mm_, 0, kPage);
  auto nested = std::make_unique<ScopedRange>(mm_, 8 * kPage, 9 * kPage);  // hits nothing
  AsyncCall reader([&] { (void)a.read_begin(); });
  first.reset();
  EXPECT_TRUE(reader.stays_blocked());
  nested.reset();
  EXPECT_TRUE(reader.finishes());
  a.remove();
}

// A range that hits no notifier does not make any reader wait.
TEST_F(IntervalNotifier, RangeWithoutHitsBlocksNoReader) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ScopedRange miss(mm_, 4 * kPage, 5 * kPage);
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.finishes());
  miss.end();
  a.remove();
}

// Inserted while a range with no hit is active (partially excluded), a notifier's reader waits for that
// range to end: the range may cover it without having seen it (I-8).
TEST_F(IntervalNotifier, InsertDuringARangeWithoutHitsMakesReadBeginWait) {
  RecordingNotifier far(2, &log_);
  ASSERT_EQ(far.insert(mm_, 64 * kPage, kPage), 0);  // the address space has subscriptions (see mm_test)
  auto range = std::make_unique<ScopedRange>(mm_, 0, 16 * kPage);
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, kPage, kPage), 0);
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked());
  range.reset();
  EXPECT_TRUE(reader.finishes());
  EXPECT_EQ(log_.size(), 0u);
  a.remove();
  far.remove();
}

// Inserted while the tree is frozen, a notifier is deferred: ranges of the same epoch do not call it, its
// reader waits for the epoch to end, and afterwards it is in the tree (I-4, I-8).
TEST_F(IntervalNotifier, InsertDuringAnEpochIsDeferredUntilItEnds) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 0, 4 * kPage);  // hits a: seq odd
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  AsyncCall reader([&] { (void)b.read_begin(); });
  auto joiner = std::make_unique<ScopedRange>(mm_, 2 * kPage, 3 * kPage);  // overlaps b, same epoch
  EXPECT_EQ(log_.first_passes(2), 0);
  range.reset();
  EXPECT_TRUE(reader.stays_blocked());
  joiner.reset();
  EXPECT_TRUE(reader.finishes());
  umn::test::invalidate(mm_, 2 * kPage, 3 * kPage);
  EXPECT_EQ(log_.first_passes(2), 1);
  a.remove();
  b.remove();
}

// Removing a notifier whose insert is still deferred returns without waiting, and it never gets a
// callback (I-9).
TEST_F(IntervalNotifier, RemoveOfADeferredInsertDoesNotWait) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 0, 4 * kPage);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  AsyncCall remover([&] { b.remove(); });
  EXPECT_TRUE(remover.finishes());  // while the range is still open
  range.reset();
  umn::test::invalidate(mm_, 0, 4 * kPage);
  EXPECT_EQ(log_.first_passes(2), 0);
  EXPECT_EQ(diags_.count(), 0u);
  a.remove();
}

// Remove during an epoch waits for the epoch to end; ranges joining the epoch meanwhile still call the
// notifier; once remove returns no callback comes (I-9).
TEST_F(IntervalNotifier, RemoveDuringAnEpochWaitsForItsEnd) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  auto range = std::make_unique<ScopedRange>(mm_, 2 * kPage, 3 * kPage);  // hits b
  AsyncCall remover([&] { b.remove(); });
  EXPECT_TRUE(remover.stays_blocked());
  auto joiner = std::make_unique<ScopedRange>(mm_, 0, 4 * kPage);
  EXPECT_EQ(log_.first_passes(2), 2);  // the frozen tree still holds b
  range.reset();
  EXPECT_TRUE(remover.stays_blocked());
  joiner.reset();
  ASSERT_TRUE(remover.finishes());
  umn::test::invalidate(mm_, 0, 4 * kPage);
  EXPECT_EQ(log_.first_passes(2), 2);
  EXPECT_EQ(log_.first_passes(1), 2);
  a.remove();
}

// Remove while idle returns at once; the notifier gets no more callbacks and can be inserted again.
TEST_F(IntervalNotifier, RemovedNotifierCanBeInsertedAgain) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  a.remove();
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.size(), 0u);
  ASSERT_EQ(a.insert(mm_, 8 * kPage, kPage), 0);
  umn::test::invalidate(mm_, 0, kPage);
  umn::test::invalidate(mm_, 8 * kPage, 9 * kPage);
  EXPECT_EQ(log_.first_passes(1), 1);
  a.remove();
  EXPECT_EQ(diags_.count(), 0u);
}

// Lengths of 0 and ranges running past the top of the space are -EOVERFLOW; the largest legal ones insert.
TEST_F(IntervalNotifier, InsertRejectsEmptyAndOverflowingRangesWithEoverflow) {
  RecordingNotifier a(1, &log_);
  EXPECT_EQ(a.insert(mm_, 0, 0), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, kPage, 0), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, 2, kMax), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, kMax, 2), -EOVERFLOW);
  ASSERT_EQ(a.insert(mm_, 1, kMax), 0);  // [1, kMax]
  a.remove();
  ASSERT_EQ(a.insert(mm_, kMax, 1), 0);  // the last byte alone
  a.remove();
  ASSERT_EQ(a.insert(mm_, 0, kMax), 0);  // [0, kMax - 1]
  a.remove();
}

// Bad ops, NULL arguments and inserting an inserted notifier are -EINVAL, each diagnosed.
TEST_F(IntervalNotifier, InsertRejectsBadOpsAndArgumentsWithEinval) {
  RecordingNotifier a(1, &log_);
  const umn_interval_notifier_ops none = {nullptr, nullptr, nullptr};
  RecordingNotifier two(2, &log_, Mode::kTwoPass);
  const umn_interval_notifier_ops start_no_finish = {nullptr, two.ops()->invalidate_start, nullptr};
  EXPECT_EQ(umn_interval_notifier_insert(&a.sub, mm_, 0, kPage, &none), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&a.sub, mm_, 0, kPage, &start_no_finish), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(nullptr, mm_, 0, kPage, a.ops()), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&a.sub, nullptr, 0, kPage, a.ops()), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&a.sub, mm_, 0, kPage, nullptr), -EINVAL);
  EXPECT_EQ(diags_.count("umn_interval_notifier_insert"), 5u);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_EQ(a.insert(mm_, 0, kPage), -EINVAL);
  EXPECT_EQ(diags_.count("umn_interval_notifier_insert"), 6u);
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.first_passes(1), 1);  // still inserted once
  a.remove();
}

// Removing twice is diagnosed, changes nothing, and the address space stays usable.
TEST_F(IntervalNotifier, DoubleRemoveIsDiagnosedAndHarmless) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  a.remove();
  a.remove();
  EXPECT_EQ(diags_.count("umn_interval_notifier_remove", "twice"), 1u);
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.first_passes(2), 1);
  EXPECT_EQ(log_.first_passes(1), 0);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  a.remove();
  b.remove();
}

// Removing a notifier that was never inserted (zeroed, or only ever failed to insert) is diagnosed and
// harmless.
TEST_F(IntervalNotifier, RemoveOfANeverInsertedNotifierIsDiagnosed) {
  RecordingNotifier never(1, &log_), failed(2, &log_), live(3, &log_);
  ASSERT_EQ(live.insert(mm_, 0, kPage), 0);
  never.remove();
  EXPECT_EQ(failed.insert(mm_, 0, 0), -EOVERFLOW);
  failed.remove();
  EXPECT_EQ(diags_.count("umn_interval_notifier_remove"), 2u);
  umn::test::invalidate(mm_, 0, kPage);
  EXPECT_EQ(log_.first_passes(3), 1);
  live.remove();
}

}  // namespace
