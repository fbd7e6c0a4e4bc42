// itree_invalidate_test.cc - the interval-tree half of an invalidation through the C API: which notifiers
// a range calls (exclusive end, top of the space, order), the cur_seq they get (I-1..I-3), the two-pass
// walk (I-11..I-13), the -EAGAIN path (I-10, I-12) and a blockable callback that fails.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <vector>

#include "support/core_test.hpp"

namespace {

using namespace umn::test;  // NOLINT(google-build-using-namespace): the shared test doubles

class ItreeInvalidate : public AddressSpaceTest {
 protected:
  // True if a blockable invalidation of [start, end) calls notifier id.
  bool hits(uint64_t start, uint64_t end, int id) {
    log_.clear();
    umn::test::invalidate(mm_, start, end);
    return log_.first_passes(id) == 1;
  }
};

// A range [s, e) calls a notifier on [100, 200) exactly when s <= 199 and e - 1 >= 100 (end exclusive).
TEST_F(ItreeInvalidate, RangeCallsANotifierExactlyWhenTheyOverlap) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 100, 100), 0);
  EXPECT_FALSE(hits(0, 100, 1));    // last byte is start-1
  EXPECT_TRUE(hits(0, 101, 1));     // last byte is start
  EXPECT_TRUE(hits(99, 101, 1));
  EXPECT_TRUE(hits(199, 200, 1));   // first byte is last
  EXPECT_TRUE(hits(150, 151, 1));
  EXPECT_FALSE(hits(200, 201, 1));  // first byte is last+1
  EXPECT_FALSE(hits(200, kMax, 1));
  EXPECT_TRUE(hits(0, kMax, 1));
  a.remove();
  EXPECT_EQ(diags_.count(), 0u);
}

// Callbacks receive the range as the caller gave it: start, exclusive end, event, blockable.
TEST_F(ItreeInvalidate, CallbackSeesTheRangeAsGiven) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, 16 * kPage), 0);
  ScopedRange r(mm_, 3 * kPage, 5 * kPage, ScopedRange::kBlock, 0, UMN_NOTIFY_PROTECTION_VMA);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].start, 3 * kPage);
  EXPECT_EQ(calls[0].end, 5 * kPage);
  EXPECT_EQ(calls[0].event, UMN_NOTIFY_PROTECTION_VMA);
  EXPECT_TRUE(calls[0].blockable);
  r.end();
  a.remove();
}

// A notifier ending at the last byte of the space is reachable up to end == UINT64_MAX, and an insert one
// byte longer overflows.
TEST_F(ItreeInvalidate, NotifierAtTheTopOfTheSpaceIsInvalidatedWithoutWrapping) {
  RecordingNotifier top(1, &log_);
  RecordingNotifier bottom(2, &log_);
  ASSERT_EQ(top.insert(mm_, kMax - kPage + 1, kPage), 0);  // [kMax - 4095, kMax]
  ASSERT_EQ(bottom.insert(mm_, 0, kPage), 0);
  RecordingNotifier too_long(3, &log_);
  EXPECT_EQ(too_long.insert(mm_, kMax - kPage + 1, kPage + 1), -EOVERFLOW);
  EXPECT_TRUE(hits(kMax - 1, kMax, 1));
  EXPECT_FALSE(hits(kMax - 1, kMax, 2));
  EXPECT_FALSE(hits(kMax - 2 * kPage, kMax - kPage + 1, 1));  // last byte is start-1
  EXPECT_TRUE(hits(kMax - 2 * kPage, kMax - kPage + 2, 1));   // last byte is start
  EXPECT_TRUE(hits(0, 1, 2));
  EXPECT_FALSE(hits(0, 1, 1));
  top.remove();
  bottom.remove();
}

// The walk visits notifiers in ascending start order, and equal starts in insertion order.
TEST_F(ItreeInvalidate, WalkVisitsAscendingStartsAndTiesInInsertionOrder) {
  RecordingNotifier c(3, &log_), a(1, &log_), b1(21, &log_), b2(22, &log_), b3(23, &log_);
  ASSERT_EQ(c.insert(mm_, 3 * kPage, kPage), 0);
  ASSERT_EQ(a.insert(mm_, 1 * kPage, 4 * kPage), 0);
  ASSERT_EQ(b1.insert(mm_, 2 * kPage, kPage), 0);
  ASSERT_EQ(b2.insert(mm_, 2 * kPage, 8 * kPage), 0);
  ASSERT_EQ(b3.insert(mm_, 2 * kPage, 1), 0);
  umn::test::invalidate(mm_, 0, 16 * kPage);
  EXPECT_EQ(log_.ids(CallKind::kInvalidate), (std::vector<int>{1, 21, 22, 23, 3}));
  for (RecordingNotifier* n : {&a, &b1, &b2, &b3, &c}) n->remove();
}

// Every callback gets an odd cur_seq, all callbacks of one epoch (also of nested ranges) get the same,
// and the next epoch's is larger by exactly 2 (I-2, I-3).
TEST_F(ItreeInvalidate, CurSeqIsOddSharedWithinAnEpochAndAdvancesByTwo) {
  RecordingNotifier a(1, &log_), b(2, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 4 * kPage, kPage), 0);
  auto outer = std::make_unique<ScopedRange>(mm_, 0, kPage);
  {
    ScopedRange nested(mm_, 4 * kPage, 5 * kPage);
    ScopedRange again(mm_, 0, 8 * kPage);
  }
  outer.reset();
  umn::test::invalidate(mm_, 0, kPage);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 5u);
  const unsigned long epoch = calls[0].cur_seq;
  EXPECT_EQ(epoch % 2, 1u);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(calls[i].cur_seq, epoch) << "call " << i;
  EXPECT_EQ(calls[4].cur_seq, epoch + 2);
  a.remove();
  b.remove();
}

// A range that overlaps no notifier does not open an epoch: the next hit still advances cur_seq by 2.
TEST_F(ItreeInvalidate, RangeWithoutHitsLeavesTheSequenceAlone) {
  RecordingNotifier a(1, &log_);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn::test::invalidate(mm_, 0, kPage);
  for (int i = 0; i < 3; ++i) umn::test::invalidate(mm_, 8 * kPage, 9 * kPage);
  umn::test::invalidate(mm_, 0, kPage);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].cur_seq, calls[0].cur_seq + 2);
  a.remove();
}

// Two-pass: every first pass runs before any second pass, second passes run in first-pass order, once
// each, and all of it before range_start returns (I-11); a NULL finish means no second pass.
TEST_F(ItreeInvalidate, SecondPassesRunAfterAllFirstPassesInFirstPassOrder) {
  RecordingNotifier a(1, &log_, Mode::kTwoPass), b(2, &log_, Mode::kTwoPass), c(3, &log_),
      d(4, &log_, Mode::kTwoPass), e(5, &log_, Mode::kTwoPass);
  d.defer_finish = false;  // does all the work in its first pass
  ASSERT_EQ(e.insert(mm_, 5 * kPage, kPage), 0);
  ASSERT_EQ(d.insert(mm_, 4 * kPage, kPage), 0);
  ASSERT_EQ(c.insert(mm_, 3 * kPage, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  ASSERT_EQ(a.insert(mm_, 1 * kPage, kPage), 0);
  ScopedRange r(mm_, 0, 8 * kPage);
  auto calls = log_.calls();  // before range_end: the second passes already ran
  std::vector<std::pair<CallKind, int>> seen;
  for (const auto& call : calls) seen.emplace_back(call.kind, call.id);
  const std::vector<std::pair<CallKind, int>> expected = {
      {CallKind::kStart, 1}, {CallKind::kStart, 2}, {CallKind::kInvalidate, 3}, {CallKind::kStart, 4},
      {CallKind::kStart, 5}, {CallKind::kFinish, 1}, {CallKind::kFinish, 2},   {CallKind::kFinish, 5}};
  EXPECT_EQ(seen, expected);
  r.end();
  EXPECT_EQ(log_.size(), expected.size());  // range_end calls nothing more
  for (RecordingNotifier* n : {&a, &b, &c, &d, &e}) n->remove();
}

// invalidate_start always sees *finish == NULL, and its record reaches the second pass with ->notifier
// set to the notifier that handed it out (I-13).
TEST_F(ItreeInvalidate, FinishIsNullOnEntryAndNamesItsNotifierInTheSecondPass) {
  RecordingNotifier a(1, &log_, Mode::kTwoPass), b(2, &log_, Mode::kTwoPass);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  b.defer_finish = false;
  for (int i = 0; i < 3; ++i) umn::test::invalidate(mm_, 0, 2 * kPage);
  EXPECT_TRUE(a.finish_was_null_on_entry);
  EXPECT_TRUE(b.finish_was_null_on_entry);
  EXPECT_EQ(a.notifier_in_finish, &a.sub);
  EXPECT_EQ(log_.count(CallKind::kFinish, 1), 3);
  EXPECT_EQ(log_.count(CallKind::kFinish, 2), 0);
  a.remove();
  b.remove();
}

// A blockable first pass that returns false is diagnosed, gets no second pass even if it set *finish,
// and the walk goes on to the next notifiers.
TEST_F(ItreeInvalidate, BlockableFailureIsDiagnosedAndTheWalkContinues) {
  RecordingNotifier a(1, &log_, Mode::kTwoPass), bad(2, &log_, Mode::kTwoPass), c(3, &log_, Mode::kTwoPass),
      bad_single(4, &log_);
  bad.fail_always = true;
  bad.finish_on_failure = true;
  bad_single.fail_always = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(bad.insert(mm_, kPage, kPage), 0);
  ASSERT_EQ(bad_single.insert(mm_, kPage + 1, kPage), 0);
  ASSERT_EQ(c.insert(mm_, 2 * kPage, kPage), 0);
  umn::test::invalidate(mm_, 0, 4 * kPage);
  EXPECT_EQ(log_.ids(CallKind::kStart), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(log_.count(CallKind::kInvalidate, 4), 1);
  EXPECT_EQ(log_.ids(CallKind::kFinish), (std::vector<int>{1, 3}));
  EXPECT_EQ(diags_.count("umn_notifier_invalidate_range_start"), 2u);
  for (RecordingNotifier* n : {&a, &bad, &bad_single, &c}) n->remove();
}

// -EAGAIN from a non-blockable walk: records queued before the failure get their second pass, the failing
// notifier's record does not, later notifiers get no call at all (I-12), and the address space is left
// not invalidating without any range_end (I-10).
TEST_F(ItreeInvalidate, NonblockFailureRunsQueuedSecondPassesAndStopsTheWalk) {
  RecordingNotifier a(1, &log_, Mode::kTwoPass), b(2, &log_), fail(3, &log_, Mode::kTwoPass),
      d(4, &log_, Mode::kTwoPass), e(5, &log_);
  fail.fail_when_nonblock = true;
  fail.finish_on_failure = true;
  RecordingNotifier* order[] = {&a, &b, &fail, &d, &e};
  for (uint64_t i = 0; i < 5; ++i) ASSERT_EQ(order[i]->insert(mm_, i * kPage, kPage), 0);
  ScopedRange r(mm_, 0, 8 * kPage, ScopedRange::kNonBlock);
  EXPECT_EQ(r.result(), -EAGAIN);
  EXPECT_EQ(log_.first_passes(1) + log_.first_passes(2) + log_.first_passes(3), 3);
  EXPECT_EQ(log_.first_passes(4) + log_.first_passes(5), 0);
  EXPECT_EQ(log_.ids(CallKind::kFinish), (std::vector<int>{1}));
  EXPECT_FALSE(log_.calls()[0].blockable);
  EXPECT_EQ(diags_.count(), 0u);  // -EAGAIN on a non-blockable range is not a bug
  // Not invalidating any more: the invalidated notifier's reader and a fresh insert's reader return.
  RecordingNotifier late(6, &log_);
  ASSERT_EQ(late.insert(mm_, 0, kPage), 0);
  AsyncCall readers([&] {
    (void)a.read_begin();
    (void)late.read_begin();
  });
  EXPECT_TRUE(readers.finishes());
  for (RecordingNotifier* n : order) n->remove();
  late.remove();
}

// After -EAGAIN the next epoch still advances cur_seq by exactly 2 (the failed one ended cleanly).
TEST_F(ItreeInvalidate, NonblockFailureEndsItsEpoch) {
  RecordingNotifier a(1, &log_), fail(2, &log_);
  fail.fail_when_nonblock = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(fail.insert(mm_, kPage, kPage), 0);
  ScopedRange r(mm_, 0, 2 * kPage, ScopedRange::kNonBlock);
  ASSERT_EQ(r.result(), -EAGAIN);
  log_.clear();
  umn::test::invalidate(mm_, 0, kPage);
  umn::test::invalidate(mm_, 0, kPage);
  auto calls = log_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].cur_seq, calls[0].cur_seq + 2);
  a.remove();
  fail.remove();
}

// A non-blockable range whose callbacks all succeed returns 0 and stays open until its range_end.
TEST_F(ItreeInvalidate, NonblockSuccessStaysOpenUntilRangeEnd) {
  RecordingNotifier a(1, &log_, Mode::kTwoPass);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ScopedRange r(mm_, 0, kPage, ScopedRange::kNonBlock);
  ASSERT_EQ(r.result(), 0);
  EXPECT_EQ(log_.ids(CallKind::kFinish), (std::vector<int>{1}));
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked());
  r.end();
  EXPECT_TRUE(reader.finishes());
  a.remove();
}

}  // namespace
