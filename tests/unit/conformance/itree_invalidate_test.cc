// itree_invalidate_test.cc - interval-notifier conformance, the invalidation walk: failure and two-pass invariants I-10..I-13 and I-21, the blockable flag, which callback runs (2.5).
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// I-10  on -EAGAIN, active is back to its value before the call; no range_end is needed

// After -EAGAIN the epoch the failed range opened is closed (when it was the only range): the notifier
// that was invalidated before the failure reads without waiting, and the next epoch is +2.
TEST_F(ItreeConformance, I10_EagainRestoresActiveAndClosesTheEpoch) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  b.fail_nonblock = true;
  Range failed(mm_, 0, 2 * kPage, Range::kNonBlock);
  ASSERT_EQ(failed.result(), -EAGAIN);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1, 2}));
  EXPECT_TRUE(ReturnsPromptly([&] { EXPECT_EQ(a.read_begin(), 3u); }));
  EXPECT_EQ(ExpectIdle(), 6u);
}

// Nested in an open range, a failed one restores active to 1, not 0: the epoch goes on until the open
// range ends (the reader of an interval it invalidated keeps waiting).
TEST_F(ItreeConformance, I10_EagainRestoresActiveToItsPriorValueWhenNested) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  b.fail_nonblock = true;
  auto open = std::make_unique<Range>(mm_, 0, kPage);
  {
    Range failed(mm_, kPage, 2 * kPage, Range::kNonBlock);
    ASSERT_EQ(failed.result(), -EAGAIN);
  }
  AsyncCall reader([&] { a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  open.reset();
  EXPECT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(ExpectIdle(), 6u);
}

// A non-blocking range that succeeds stays active until its end (unlike a failed one).
TEST_F(ItreeConformance, I10_NonBlockingSuccessNeedsItsEnd) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  Range range(mm_, 0, kPage, Range::kNonBlock);
  ASSERT_EQ(range.result(), 0);
  AsyncCall reader([&] { a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  range.end();
  EXPECT_TRUE(reader.finishes(kLimit));
}

// ======================================================================================================
// I-11  two-pass success: one finish per record, in first-pass order, after every first pass, before
//       range_start returns

TEST_F(ItreeConformance, I11_OneFinishPerRecordInFirstPassOrderBeforeStartReturns) {
  Watch a(&journal_, 1, true), b(&journal_, 2), c(&journal_, 3, true), d(&journal_, 4, true),
      e(&journal_, 5, true);
  d.hand_finish = false;  // did the whole job in pass 1: no second pass
  ASSERT_EQ(c.insert(mm_, 2 * kPage, kPage), 0);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(e.insert(mm_, 4 * kPage, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  ASSERT_EQ(d.insert(mm_, 3 * kPage, kPage), 0);
  {
    Range range(mm_, 0, 5 * kPage);
    journal_.mark(0);  // range_start returned
  }
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "I2", "S3", "S4", "S5", "F1", "F3", "F5", "M0"}));
  for (const Record& r : journal_.all()) {
    if (r.kind != Kind::kFinish) continue;
    EXPECT_TRUE(r.finish_is_own_record) << r.id;
    Watch* w = r.id == 1 ? &a : r.id == 3 ? &c : &e;
    EXPECT_EQ(r.finish_notifier, w->sub()) << "finish->notifier is the notifier that handed it out";
  }
}

// 6.1(4): invalidate_finish is called for a non-blockable range too.
TEST_F(ItreeConformance, I11_FinishRunsForNonBlockableRanges) {
  Watch a(&journal_, 1, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  Range range(mm_, 0, kPage, Range::kNonBlock);
  ASSERT_EQ(range.result(), 0);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "F1"}));
}

// A finish record may be reused for the next invalidation once its finish ran: each invalidation gets
// its own finish call.
TEST_F(ItreeConformance, I11_EachInvalidationGetsItsOwnFinish) {
  Watch a(&journal_, 1, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  for (int i = 0; i < 3; ++i) Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "F1", "S1", "F1", "S1", "F1"}));
}

// One notifier invalidated in parallel from two threads: both first passes run at the same time with
// the same cur_seq, each hands out its own record, and each record gets exactly one finish.
TEST_F(ItreeConformance, I11_ParallelInvocationsEachGetTheirOwnFinish) {
  struct Pool {
    umn_interval_notifier sub{};
    umn_interval_notifier_finish records[2]{};
    std::atomic<int> next{0};
    std::atomic<int> finished[2]{};
    std::atomic<unsigned long> seqs[2]{};
    Gate both_in;
  };
  static Pool* pool;
  Pool p;
  pool = &p;
  const umn_interval_notifier_ops ops = {
      nullptr,
      [](umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq,
         umn_interval_notifier_finish** finish) {
        const int i = pool->next++;
        pool->seqs[i] = cur_seq;
        umn_interval_set_seq(sub, cur_seq);
        *finish = &pool->records[i];
        pool->both_in.arrive_and_wait();
        return true;
      },
      [](umn_interval_notifier_finish* finish) { pool->finished[finish - pool->records]++; }};
  ASSERT_EQ(umn_interval_notifier_insert(&p.sub, mm_, 0, kPage, &ops), 0);
  std::thread t1([&] { Hit(mm_, 0, kPage); });
  std::thread t2([&] { Hit(mm_, 0, kPage); });
  p.both_in.wait_arrivals(2);  // both first passes are running now
  p.both_in.open();
  t1.join();
  t2.join();
  EXPECT_EQ(p.seqs[0].load(), p.seqs[1].load());
  EXPECT_EQ(p.finished[0].load(), 1);
  EXPECT_EQ(p.finished[1].load(), 1);
  EXPECT_EQ(p.records[0].notifier, &p.sub);
  EXPECT_EQ(p.records[1].notifier, &p.sub);
  umn_interval_notifier_remove(&p.sub);
}

// I-9 with two passes: remove waits for a second pass of the notifier running on another thread.
TEST_F(ItreeConformance, I09_RemoveWaitsForARunningFinish) {
  Watch a(&journal_, 1, true);
  Gate gate;
  a.on_finish = [&gate] { gate.arrive_and_wait(); };
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  std::thread invalidator([&] { Hit(mm_, 0, kPage); });
  gate.wait_arrivals(1);
  AsyncCall removing([&] { a.remove(); });
  EXPECT_TRUE(removing.stays_blocked(kGrace));
  gate.open();
  invalidator.join();
  ASSERT_TRUE(removing.finishes(kLimit));
  EXPECT_EQ(a.running.load(), 0);
}

// ======================================================================================================
// I-12  two-pass failure: the failing start gets no finish; on -EAGAIN at k, finishes below k run,
//       positions above k get no call, -EAGAIN is returned and active restored

TEST_F(ItreeConformance, I12_EagainAtKRunsFinishesBelowKAndNothingAboveK) {
  std::vector<std::unique_ptr<Watch>> w;
  for (int i = 0; i < 5; ++i) {
    w.push_back(std::make_unique<Watch>(&journal_, i, i != 1));  // 1 is single-pass
    ASSERT_EQ(w.back()->insert(mm_, static_cast<uint64_t>(i) * kPage, kPage), 0);
  }
  w[3]->fail_nonblock = true;
  w[3]->finish_on_fail = true;  // sets *finish and returns false: dropped (6.1(5))
  Range range(mm_, 0, 5 * kPage, Range::kNonBlock);
  EXPECT_EQ(range.result(), -EAGAIN);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S0", "I1", "S2", "S3", "F0", "F2"}));
  EXPECT_EQ(w[4]->calls.load(), 0);
  ExpectIdle();
}

// Failing at the first position: no finish at all, nothing after it called.
TEST_F(ItreeConformance, I12_EagainAtTheFirstNotifierCallsNothingElse) {
  Watch a(&journal_, 1, true), b(&journal_, 2, true);
  a.fail_nonblock = true;
  a.finish_on_fail = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  Range range(mm_, 0, 2 * kPage, Range::kNonBlock);
  EXPECT_EQ(range.result(), -EAGAIN);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1"}));
  ExpectIdle();
}

// The finishes of an -EAGAIN walk run while its epoch is still open (before the internal end): a
// reader of an interval invalidated in pass 1 is still held back during the finish.
TEST_F(ItreeConformance, I12_FinishesOfAFailedWalkRunBeforeTheEpochCloses) {
  Watch a(&journal_, 1, true), b(&journal_, 2);
  b.fail_nonblock = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  std::unique_ptr<AsyncCall> reader;
  bool blocked_during_finish = false;
  a.on_finish = [&] {
    reader = std::make_unique<AsyncCall>([&] { a.read_begin(); });
    blocked_during_finish = reader->stays_blocked(kGrace);
  };
  Range range(mm_, 0, 2 * kPage, Range::kNonBlock);
  EXPECT_EQ(range.result(), -EAGAIN);
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(blocked_during_finish) << "the epoch closed before the finish pass";
  EXPECT_TRUE(reader->finishes(kLimit)) << "-EAGAIN left the epoch open";
}

// A blockable range whose callback returns false: a diagnostic (the kernel WARNs), the walk continues,
// the failing notifier's record is dropped, every other notifier gets both passes.
TEST_F(ItreeConformance, I12_BlockableFailureWarnsAndContinues) {
  Watch a(&journal_, 1, true), b(&journal_, 2, true), c(&journal_, 3, true);
  b.fail = true;
  b.finish_on_fail = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  ASSERT_EQ(c.insert(mm_, 2 * kPage, kPage), 0);
  Hit(mm_, 0, 3 * kPage);
  EXPECT_EQ(journal_.trace(), (std::vector<std::string>{"S1", "S2", "S3", "F1", "F3"}));
  EXPECT_EQ(diags_.count(), 1u);
  expected_diags_ = 1;
  ExpectIdle();
}

// ======================================================================================================
// I-13  every invalidate_start sees *finish == NULL on entry

// Also when earlier notifiers of the same walk handed records out, when the notifier's record was used
// by earlier invalidations, and for non-blockable ranges.
TEST_F(ItreeConformance, I13_InvalidateStartSeesNullFinishOnEntry) {
  Watch a(&journal_, 1, true), b(&journal_, 2, true), c(&journal_, 3, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(c.insert(mm_, 0, kPage), 0);
  for (int i = 0; i < 3; ++i) Hit(mm_, 0, kPage);
  Range range(mm_, 0, kPage, Range::kNonBlock);
  for (const Record& r : journal_.all())
    if (r.kind == Kind::kStart) { EXPECT_TRUE(r.finish_null_on_entry) << r.id; }
  EXPECT_EQ(journal_.finishes().size(), 12u);
}

// ======================================================================================================
// I-21  ops with invalidate_start but no invalidate_finish
//
// docs/semantics.md §1 differs from the kernel on purpose: the kernel WARNs once and inserts anyway; umn rejects the
// insert with -EINVAL (and reports it, as the kernel's WARN, through the diagnostic hook). umn has no
// insert_locked, so the kernel's "insert_locked does not warn" has no counterpart.
TEST_F(ItreeConformance, I21_InvalidateStartWithoutFinishIsDiagnosedOnceAndRejected) {
  auto start = [](umn_interval_notifier*, const umn_notifier_range*, unsigned long,
                  umn_interval_notifier_finish**) { return true; };
  const umn_interval_notifier_ops kNoFinish = {nullptr, start, nullptr};
  umn_interval_notifier sub{};
  EXPECT_EQ(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &kNoFinish), -EINVAL);
  EXPECT_EQ(diags_.count("umn_interval_notifier_insert"), 1u);
  expected_diags_ = 1;
  ExpectIdle();  // nothing was linked, nothing changed
  Watch a(&journal_, 1, true);
  EXPECT_EQ(a.insert(mm_, 0, kPage), 0);  // the same memory layout with full ops inserts fine
}

// ======================================================================================================
// Ranges: blockable flag

// The start calls set the blockable bit themselves, whatever the caller put in flags.
TEST_F(ItreeConformance, Range_StartCallsOwnTheBlockableBit) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  { Range r(mm_, 0, kPage, Range::kBlock, 0); }
  { Range r(mm_, 0, kPage, Range::kNonBlock, UMN_NOTIFIER_RANGE_BLOCKABLE); }
  auto records = journal_.all();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(records[0].blockable);
  EXPECT_FALSE(records[1].blockable);
}

// A range with start >= end is diagnosed and ignored: no callback, -EINVAL from the non-blocking start,
// its end a no-op (docs/semantics.md §1: bad input is an error, never a crash or a silent success).
TEST_F(ItreeConformance, Range_EmptyOrInvertedRangeIsRejected) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, 4 * kPage), 0);
  { Range r(mm_, kPage, kPage); }
  { Range r(mm_, 2 * kPage, kPage); }
  {
    Range r(mm_, kPage, kPage, Range::kNonBlock);
    EXPECT_EQ(r.result(), -EINVAL);
  }
  EXPECT_EQ(journal_.first_pass_count(1), 0);
  EXPECT_EQ(diags_.count(), 3u);
  expected_diags_ = 3;
  ExpectIdle();
}

// Callbacks see the range as given: event, owner (5.2's filter), bounds.
TEST_F(ItreeConformance, Range_CallbackSeesEventOwnerAndBounds) {
  int cookie = 0;
  struct Seen {
    umn_notifier_event event;
    void* owner;
    uint64_t start, end;
  } seen{};
  static Seen* out;
  out = &seen;
  const umn_interval_notifier_ops ops = {
      [](umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
        *out = {range->event, range->owner, range->start, range->end};
        umn_interval_set_seq(sub, cur_seq);
        return true;
      },
      nullptr, nullptr};
  umn_interval_notifier sub{};
  ASSERT_EQ(umn_interval_notifier_insert(&sub, mm_, 0, 16 * kPage, &ops), 0);
  umn_notifier_range range;
  umn_notifier_range_init_owner(&range, UMN_NOTIFY_MIGRATE, 0, mm_, 3 * kPage, 5 * kPage, &cookie);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(seen.event, UMN_NOTIFY_MIGRATE);
  EXPECT_EQ(seen.owner, &cookie);
  EXPECT_EQ(seen.start, 3 * kPage);
  EXPECT_EQ(seen.end, 5 * kPage);
  umn_interval_notifier_remove(&sub);
}

// ======================================================================================================
// 2.5  which callback runs

// Ops with invalidate and invalidate_start: the two-pass pair is used (2.5: "if invalidate_start is set").
TEST_F(ItreeConformance, Walk_InvalidateStartWinsOverInvalidate) {
  static std::atomic<int> single{0}, start{0}, finish{0};
  single = start = finish = 0;
  static umn_interval_notifier_finish record;
  const umn_interval_notifier_ops ops = {
      [](umn_interval_notifier*, const umn_notifier_range*, unsigned long) { return single++, true; },
      [](umn_interval_notifier*, const umn_notifier_range*, unsigned long, umn_interval_notifier_finish** f) {
        start++;
        *f = &record;
        return true;
      },
      [](umn_interval_notifier_finish*) { finish++; }};
  umn_interval_notifier sub{};
  ASSERT_EQ(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &ops), 0);
  Hit(mm_, 0, kPage);
  EXPECT_EQ(single.load(), 0);
  EXPECT_EQ(start.load(), 1);
  EXPECT_EQ(finish.load(), 1);
  EXPECT_EQ(record.notifier, &sub);
  umn_interval_notifier_remove(&sub);
}

// Single-pass ops that also name an invalidate_finish never get a second pass.
TEST_F(ItreeConformance, Walk_SinglePassOpsNeverGetAFinish) {
  static std::atomic<int> single{0}, finish{0};
  single = finish = 0;
  const umn_interval_notifier_ops ops = {
      [](umn_interval_notifier*, const umn_notifier_range*, unsigned long) { return single++, true; }, nullptr,
      [](umn_interval_notifier_finish*) { finish++; }};
  umn_interval_notifier sub{};
  ASSERT_EQ(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &ops), 0);
  Hit(mm_, 0, kPage);
  EXPECT_EQ(single.load(), 1);
  EXPECT_EQ(finish.load(), 0);
  umn_interval_notifier_remove(&sub);
}

// 2.4: the epoch's end wakes every waiter: several readers and a remover of the same notifier.
TEST_F(ItreeConformance, EpochEnd_WakesEveryWaiter) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  auto open = std::make_unique<Range>(mm_, 0, 2 * kPage);
  std::vector<std::unique_ptr<AsyncCall>> waiters;
  for (int i = 0; i < 3; ++i) waiters.push_back(std::make_unique<AsyncCall>([&] { EXPECT_EQ(a.read_begin(), 3u); }));
  waiters.push_back(std::make_unique<AsyncCall>([&] { b.read_begin(); }));
  waiters.push_back(std::make_unique<AsyncCall>([&] { b.remove(); }));
  for (auto& w : waiters) EXPECT_TRUE(w->stays_blocked(std::chrono::milliseconds(5)));
  open.reset();
  for (auto& w : waiters) EXPECT_TRUE(w->finishes(kLimit));
}

}  // namespace
}  // namespace umn::test::itree_conformance
