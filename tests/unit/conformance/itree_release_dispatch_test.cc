// itree_release_dispatch_test.cc - interval-notifier conformance, release (2.10), pitfall 6.1(6), and dispatch with classic notifiers as the interval side sees it (3.1/3.3).
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// 2.10  release, interval part (umn_notifier_release)

// Every interval notifier gets exactly one blockable RELEASE call over [0, UINT64_MAX), both passes, in
// ascending start order. umn's header: the walk also covers the last byte UINT64_MAX (the kernel's
// last is ULONG_MAX - 1, so an interval that is only that byte would be skipped there).
TEST_F(ItreeConformance, Release_EveryNotifierGetsOneBlockableReleaseOverTheWholeSpace) {
  Watch a(&journal_, 1, true), b(&journal_, 2), top(&journal_, 3, true);
  ASSERT_EQ(b.insert(mm_, 5 * kPage, kPage), 0);
  ASSERT_EQ(top.insert(mm_, kTop, 1), 0);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_release(mm_);
  umn_notifier_release(mm_);  // runs once
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "I2", "S3", "F1", "F3"}));
  for (const Record& r : journal_.all()) {
    if (r.kind == Kind::kFinish) continue;
    EXPECT_EQ(r.event, UMN_NOTIFY_RELEASE);
    EXPECT_TRUE(r.blockable);
    EXPECT_EQ(r.start, 0u);
    EXPECT_EQ(r.end, kTop);
    EXPECT_EQ(r.cur_seq, 3u);
  }
}

// A callback failing during release is WARNed and the walk goes on (no early exit).
TEST_F(ItreeConformance, Release_FailingCallbackWarnsAndTheWalkGoesOn) {
  Watch a(&journal_, 1), b(&journal_, 2);
  a.fail = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1, 2}));
  EXPECT_EQ(diags_.count(), 1u);
  expected_diags_ = 1;
}

// Release does not remove the notifiers: they stay inserted, read_begin works (the epoch closed) and
// remove is still required and does not wait.
TEST_F(ItreeConformance, Release_LeavesNotifiersInsertedAndTheReadSideWorking) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  const unsigned long before = a.read_begin();
  umn_notifier_release(mm_);
  EXPECT_TRUE(a.read_retry(before));
  unsigned long seq = 0;
  EXPECT_TRUE(ReturnsPromptly([&] { seq = a.read_begin(); }));
  EXPECT_EQ(seq, 3u);
  EXPECT_TRUE(ReturnsPromptly([&] { a.remove(); }));
}

// An insert still deferred when release starts (a range open on another thread froze the tree) is
// waited for, so that it too gets its RELEASE (umn's header; in the kernel no range can be open then).
TEST_F(ItreeConformance, Release_WaitsForADeferredInsertAndReleasesIt) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  RangeThread open(mm_, 0, kPage);
  open.wait_started();
  ASSERT_EQ(a.insert(mm_, kPage, kPage), 0);  // deferred
  AsyncCall release([&] { umn_notifier_release(mm_); });
  EXPECT_TRUE(release.stays_blocked(kGrace));
  open.end();
  ASSERT_TRUE(release.finishes(kLimit));
  int released = 0;
  for (const Record& r : journal_.all()) released += r.id == 1 && r.event == UMN_NOTIFY_RELEASE;
  EXPECT_EQ(released, 1);
}

// ======================================================================================================
// 6.1(6)  a classic notifier failing a non-blocking start after the interval part passed: the interval
//         part is undone (umn does what the spec asks of the port; the kernel leaks it)

int FailNonBlock(umn_notifier*, const umn_notifier_range* range) {
  return umn_notifier_range_blockable(range) ? 0 : -EAGAIN;
}
const umn_notifier_ops kFailingClassic = {nullptr, nullptr, nullptr, nullptr, &FailNonBlock,
                                          nullptr, nullptr, nullptr, nullptr};

TEST_F(ItreeConformance, Pitfall6_ClassicEagainUndoesTheIntervalPart) {
  umn_notifier classic{};
  classic.ops = &kFailingClassic;
  const int err = umn_notifier_register(&classic, mm_);
  ASSERT_EQ(err, 0);
  Watch a(&journal_, 1, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  {
    Range range(mm_, 0, kPage, Range::kNonBlock);
    EXPECT_EQ(range.result(), -EAGAIN);
  }
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "F1"}));
  EXPECT_TRUE(ReturnsPromptly([&] { EXPECT_EQ(a.read_begin(), 3u); }));
  EXPECT_EQ(ExpectIdle(), 6u);
  umn_notifier_unregister(&classic, mm_);
}

// ======================================================================================================
// 3.1 / 3.3  dispatch as seen from the interval side (need classic notifiers; skipped without them)

struct ClassicCounter;
struct ClassicNode {  // standard layout: from the C struct back to its counter
  umn_notifier n;
  ClassicCounter* self;
};
struct ClassicCounter {
  ClassicCounter() { node.self = this; }
  ClassicNode node{};
  umn_notifier& n = node.n;
  std::atomic<int> starts{0}, ends{0};
  std::function<void()> on_end;
  static ClassicCounter* of(umn_notifier* sub) { return reinterpret_cast<ClassicNode*>(sub)->self; }
};
const umn_notifier_ops kCountingClassic = {
    nullptr, nullptr, nullptr, nullptr,
    [](umn_notifier* sub, const umn_notifier_range*) { return ClassicCounter::of(sub)->starts++, 0; },
    [](umn_notifier* sub, const umn_notifier_range*) {
      ClassicCounter* self = ClassicCounter::of(sub);
      self->ends++;
      if (self->on_end) self->on_end();
    },
    nullptr, nullptr, nullptr};

// A non-blocking range failing in the interval part returns at once: no classic start, no classic end.
TEST_F(ItreeConformance, Dispatch_ItreeEagainSkipsTheClassicNotifiers) {
  ClassicCounter classic;
  classic.n.ops = &kCountingClassic;
  const int err = umn_notifier_register(&classic.n, mm_);
  ASSERT_EQ(err, 0);
  Watch a(&journal_, 1);
  a.fail_nonblock = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  {
    Range range(mm_, 0, kPage, Range::kNonBlock);
    EXPECT_EQ(range.result(), -EAGAIN);
  }
  EXPECT_EQ(classic.starts.load(), 0);
  EXPECT_EQ(classic.ends.load(), 0);
  { Range range(mm_, 0, kPage); }
  EXPECT_EQ(classic.starts.load(), 1);
  EXPECT_EQ(classic.ends.load(), 1);
  umn_notifier_unregister(&classic.n, mm_);
}

// range_end ends the interval epoch (and wakes its readers) before the classic ends run.
TEST_F(ItreeConformance, Dispatch_EpochEndsBeforeTheClassicEnds) {
  ClassicCounter classic;
  classic.n.ops = &kCountingClassic;
  const int err = umn_notifier_register(&classic.n, mm_);
  ASSERT_EQ(err, 0);
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  bool reader_returned = false;
  classic.on_end = [&] { reader_returned = ReturnsPromptly([&] { a.read_begin(); }); };
  { Range range(mm_, 0, kPage); }
  EXPECT_EQ(classic.ends.load(), 1);
  EXPECT_TRUE(reader_returned) << "the epoch was still open during the classic end";
  umn_notifier_unregister(&classic.n, mm_);
}

// I-16 / I-17 from the interval side: with classic subscribers too, each interval notifier gets exactly
// one RELEASE, before any classic ->release runs, and stays inserted afterwards.
TEST_F(ItreeConformance, Release_IntervalPassRunsBeforeTheClassicReleases) {
  static Journal* sink;
  sink = &journal_;
  static const umn_notifier_ops kReleaseOps = {
      [](umn_notifier*, umn_mm*) { sink->mark(100); }, nullptr, nullptr, nullptr, nullptr,
      nullptr, nullptr, nullptr, nullptr};
  umn_notifier classic{};
  classic.ops = &kReleaseOps;
  const int err = umn_notifier_register(&classic, mm_);
  ASSERT_EQ(err, 0);
  Watch a(&journal_, 1), b(&journal_, 2, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kTop - kPage + 1, kPage), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"I1", "S2", "F2", "M100"}));
  journal_.clear();
  EXPECT_TRUE(ReturnsPromptly([&] { a.remove(); }));  // still inserted: remove is needed, and works
  EXPECT_TRUE(ReturnsPromptly([&] { b.remove(); }));
  umn_notifier_unregister(&classic, mm_);
  EXPECT_TRUE(journal_.trace().empty()) << "no second ->release";
}

}  // namespace
}  // namespace umn::test::itree_conformance
