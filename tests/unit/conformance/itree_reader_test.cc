// itree_reader_test.cc - interval-notifier conformance, the reader API: invariants I-6 and I-7, the worked example of 2.6, reader misuse.
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// I-6  read_begin returns at once unless set_seq ran on the interval in the open epoch (or it was
//      inserted during it); then it returns after the epoch's final end, with the interval's seq

// Not invalidated: read_begin returns the notifier's seq at once, even while an epoch is open elsewhere,
// and also for a notifier whose callback ran but skipped set_seq.
TEST_F(ItreeConformance, I06_ReadBeginReturnsAtOnceWhenNotInvalidatedInTheOpenEpoch) {
  Watch a(&journal_, 1), b(&journal_, 2), c(&journal_, 3);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  ASSERT_EQ(c.insert(mm_, 4 * kPage, kPage), 0);
  b.call_set_seq = false;
  Range open(mm_, 0, 3 * kPage);  // hits a (set_seq) and b (no set_seq)
  unsigned long vb = 0, vc = 0;
  EXPECT_TRUE(ReturnsPromptly([&] { vb = b.read_begin(); }));
  EXPECT_TRUE(ReturnsPromptly([&] { vc = c.read_begin(); }));
  EXPECT_EQ(vb, 1u);
  EXPECT_EQ(vc, 1u);
  open.end();
}

// A read_begin on an interval invalidated in the open epoch (by a range another thread runs) waits for
// that range's end, then returns the cur_seq the callback stored.
TEST_F(ItreeConformance, I06_ReadBeginWaitsAcrossAnActiveEpochFromAnotherThread) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  RangeThread invalidator(mm_, 0, kPage);
  invalidator.wait_started();
  std::atomic<unsigned long> seq{0};
  AsyncCall reader([&] { seq = a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  invalidator.end();
  ASSERT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(seq.load(), journal_.last_seq(1));
  EXPECT_EQ(seq.load(), 3u);
  EXPECT_FALSE(a.read_retry(seq));
}

// The wait lasts until the epoch's *final* end: a range that joined it (even one that hits nothing)
// keeps the reader waiting after the range that invalidated the interval has ended.
TEST_F(ItreeConformance, I06_ReadBeginWaitsForTheLastRangeOfTheEpoch) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto x = std::make_unique<Range>(mm_, 0, kPage);
  RangeThread y(mm_, 8 * kPage, 9 * kPage);  // no hit; active 2
  y.wait_started();
  std::atomic<unsigned long> seq{0};
  AsyncCall reader([&] { seq = a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  x.reset();  // X ends; Y still open: the epoch goes on
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  y.end();
  ASSERT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(seq.load(), 3u);
}

// A read_begin waiting while the invalidating callback is still running returns only after the callback
// and the range end, never in between.
TEST_F(ItreeConformance, I06_ReadBeginDoesNotReturnWhileTheCallbackRuns) {
  Watch a(&journal_, 1);
  Gate gate;
  a.gate = &gate;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  RangeThread invalidator(mm_, 0, kPage);  // blocks inside a's callback, after set_seq
  gate.wait_arrivals(1);
  AsyncCall reader([&] { a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  a.gate = nullptr;
  gate.open();
  invalidator.wait_started();
  EXPECT_TRUE(reader.stays_blocked(kGrace)) << "returned before the range ended";
  invalidator.end();
  EXPECT_TRUE(reader.finishes(kLimit));
}

// ======================================================================================================
// I-7  read_retry(seq) is false iff no callback called set_seq since the matching read_begin

TEST_F(ItreeConformance, I07_ReadRetryIsTrueExactlyAfterSetSeq) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  unsigned long seq = a.read_begin();
  EXPECT_FALSE(a.read_retry(seq));
  Hit(mm_, 2 * kPage, 3 * kPage);  // only b
  EXPECT_FALSE(a.read_retry(seq));
  a.call_set_seq = false;          // a is called but records nothing (6.1(12): silent)
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 1);
  EXPECT_FALSE(a.read_retry(seq));
  a.call_set_seq = true;
  {
    Range open(mm_, 0, kPage);
    EXPECT_TRUE(a.read_retry(seq)) << "set_seq ran: retry, even before the range ends";
    EXPECT_TRUE(umn_interval_check_retry(a.sub(), seq));
  }
  EXPECT_TRUE(a.read_retry(seq));
  seq = a.read_begin();
  EXPECT_FALSE(a.read_retry(seq));
  EXPECT_FALSE(umn_interval_check_retry(a.sub(), seq));
}

// A two-pass notifier's set_seq in invalidate_start counts the same way, whether it hands out a finish
// record or not.
TEST_F(ItreeConformance, I07_SetSeqInInvalidateStartMakesReadRetryTrue) {
  Watch a(&journal_, 1, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  unsigned long seq = a.read_begin();
  Hit(mm_, 0, kPage);
  EXPECT_TRUE(a.read_retry(seq));
  seq = a.read_begin();
  a.hand_finish = false;
  Hit(mm_, 0, kPage);
  EXPECT_TRUE(a.read_retry(seq));
}

// ======================================================================================================
// 2.6  reader API

// The worked example of 2.6, step by step.
TEST_F(ItreeConformance, ReaderApi_WorkedExample) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  const unsigned long old_seq = a.read_begin();
  EXPECT_EQ(old_seq, 1u);
  auto x = std::make_unique<Range>(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 3u);
  EXPECT_TRUE(a.read_retry(old_seq));
  std::atomic<unsigned long> seq{0};
  AsyncCall reader([&] { seq = a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  {
    Range y(mm_, 8 * kPage, 9 * kPage);  // nested, no hit: seq stays 3
    x.reset();
    EXPECT_TRUE(reader.stays_blocked(kGrace));
  }
  ASSERT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(seq.load(), 3u);
  EXPECT_FALSE(a.read_retry(seq));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 5u);
  EXPECT_TRUE(a.read_retry(seq));
}

// set_seq stores exactly the value given; read_retry and check_retry compare the stored value with seq.
TEST_F(ItreeConformance, ReaderApi_SetSeqStoresWhatReadRetryCompares) {
  Watch a(&journal_, 1);
  a.call_set_seq = false;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  {
    Range open(mm_, 0, kPage);
    const unsigned long cur = journal_.last_seq(1);
    EXPECT_FALSE(a.read_retry(1));
    {
      std::lock_guard guard(a.user_lock);
      umn_interval_set_seq(a.sub(), cur);  // as a callback would
    }
    EXPECT_TRUE(a.read_retry(1));
    EXPECT_FALSE(a.read_retry(cur));
    EXPECT_TRUE(umn_interval_check_retry(a.sub(), 1));
    EXPECT_FALSE(umn_interval_check_retry(a.sub(), cur));
  }
  EXPECT_EQ(a.read_begin(), 3u);
}

// check_retry needs no lock and is reliable when true: a reader on another thread sees the set_seq of a
// callback that is still running (blocked after set_seq), before the range ends.
TEST_F(ItreeConformance, ReaderApi_CheckRetrySeesARunningInvalidation) {
  Watch a(&journal_, 1);
  Gate gate;
  a.gate = &gate;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  const unsigned long seq = a.read_begin();
  RangeThread invalidator(mm_, 0, kPage);
  gate.wait_arrivals(1);
  std::atomic<bool> retry{false};
  std::thread checker([&] { retry = umn_interval_check_retry(a.sub(), seq); });
  checker.join();
  EXPECT_TRUE(retry.load());
  a.gate = nullptr;
  gate.open();
  invalidator.end();
  EXPECT_TRUE(a.read_retry(seq));
}

// The fault loop of 5.1 against a racing invalidator that changes the "page" between its range_start
// and range_end: a snapshot taken after read_begin and accepted by read_retry (under the user lock) is
// never older than the page (I-6 with I-7).
TEST_F(ItreeConformance, ReaderApi_FaultLoopNeverAcceptsAStaleSnapshot) {
  Watch a(&journal_, 1);
  a.quiet = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  std::atomic<uint64_t> page{0};
  std::atomic<bool> stop{false};
  std::thread invalidator([&] {
    while (!stop.load()) {
      Range range(mm_, 0, kPage);
      page.fetch_add(1);  // the mm changes the page while the range is open
    }
  });
  int stale = 0;
  for (int i = 0; i < 2000; ++i) {
    for (;;) {
      const unsigned long seq = a.read_begin();
      const uint64_t snapshot = page.load();
      std::lock_guard guard(a.user_lock);
      if (umn_interval_read_retry(a.sub(), seq)) continue;
      stale += snapshot != page.load();  // accepted: must still be current
      break;
    }
  }
  stop = true;
  invalidator.join();
  EXPECT_EQ(stale, 0);
}

// ======================================================================================================
// Reader API misuse (docs/semantics.md §1: bad input is a diagnostic and an error value, never a crash)

// read_begin on a removed notifier whose address space is gone (the notifier held its last reference):
// diagnosed, returns 0, touches nothing freed.
TEST_F(ItreeConformance, ReaderApi_ReadBeginAfterRemoveIsDiagnosed) {
  umn_mm* other = umn_mm_create();
  ASSERT_NE(other, nullptr);
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(other, 0, kPage), 0);
  umn_mm_destroy(other);  // diagnosed: a live notifier keeps the memory
  const size_t after_destroy = diags_.count();
  a.remove();             // drops the last reference: `other` is freed
  EXPECT_EQ(a.read_begin(), 0u);
  EXPECT_EQ(diags_.count("umn_interval_read_begin"), 1u);
  expected_diags_ = after_destroy + 1;
}

// NULL notifiers given to read_retry, check_retry and set_seq: diagnosed; the retry calls answer "retry"
// (a caller never accepts a mapping on a bad notifier).
TEST_F(ItreeConformance, ReaderApi_NullNotifierIsDiagnosed) {
  EXPECT_TRUE(umn_interval_read_retry(nullptr, 1));
  EXPECT_TRUE(umn_interval_check_retry(nullptr, 1));
  umn_interval_set_seq(nullptr, 3);
  EXPECT_EQ(diags_.count("umn_interval_read_retry"), 1u);
  EXPECT_EQ(diags_.count("umn_interval_check_retry"), 1u);
  EXPECT_EQ(diags_.count("umn_interval_set_seq"), 1u);
  expected_diags_ = 3;
}

}  // namespace
}  // namespace umn::test::itree_conformance
