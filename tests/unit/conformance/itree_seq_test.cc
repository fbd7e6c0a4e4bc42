// itree_seq_test.cc - interval-notifier conformance, the address space's sequence number and the frozen tree: invariants I-1..I-4 and I-22.
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// I-1  active == 0 implies seq even and an empty deferred list

// After nested ranges, a deferred insert and a deferred remove have all ended, the address space is idle:
// the insert is linked, the remove is done, and a fresh notifier is linked at once with seq - 1.
TEST_F(ItreeConformance, I01_NoActiveRangeMeansEvenSeqAndNothingDeferred) {
  Watch a(&journal_, 1), b(&journal_, 2);
  auto c = std::make_unique<Watch>(&journal_, 3);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(c->insert(mm_, 4 * kPage, kPage), 0);
  {
    Range outer(mm_, 0, kPage);                 // opens an odd epoch
    Range inner(mm_, 8 * kPage, 9 * kPage);     // hits nothing: nests in the epoch
    ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);  // deferred
    AsyncCall removing([&] { c->remove(); });   // deferred, waits
    EXPECT_TRUE(removing.stays_blocked(kGrace));
    inner.end();
    EXPECT_TRUE(removing.stays_blocked(kGrace));
    outer.end();
    EXPECT_TRUE(removing.finishes(kLimit));
  }
  c.reset();
  ExpectIdle();
  journal_.clear();
  Hit(mm_, 0, 8 * kPage);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1, 2}));  // b linked, c gone
}

// A non-blocking range failing with -EAGAIN leaves the address space idle too (I-1 with I-10).
TEST_F(ItreeConformance, I01_IdleAfterEagain) {
  Watch a(&journal_, 1);
  a.fail_nonblock = true;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  Range range(mm_, 0, kPage, Range::kNonBlock);
  EXPECT_EQ(range.result(), -EAGAIN);
  ExpectIdle();
}

// ======================================================================================================
// I-2  odd seq implies active > 0; seq never decreases; each odd epoch raises it by exactly 2

// Consecutive hitting ranges see 3, 5, 7: each epoch +2; ranges that hit nothing change nothing.
TEST_F(ItreeConformance, I02_EachEpochRaisesSeqByExactlyTwo) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  std::vector<unsigned long> seen;
  for (int i = 0; i < 3; ++i) {
    Hit(mm_, 0, kPage);
    seen.push_back(journal_.last_seq(1));
    Hit(mm_, 10 * kPage, 11 * kPage);  // no overlap: no epoch
  }
  EXPECT_EQ(seen, (std::vector<unsigned long>{3, 5, 7}));
}

// One epoch made of many nested and overlapping ranges still raises the seq by exactly 2.
TEST_F(ItreeConformance, I02_NestedRangesShareOneEpoch) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  {
    Range r1(mm_, 0, kPage);
    Range r2(mm_, 2 * kPage, 3 * kPage);
    r1.end();
    Range r3(mm_, 0, 3 * kPage);  // joins while r2 still holds the epoch open
  }
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 5u);
}

// An insert while ranges are active but hit nothing (partially excluded) turns the seq odd; the epoch it
// opens still costs exactly 2, and it ends with the last range.
TEST_F(ItreeConformance, I02_EpochOpenedByInsertAlsoRaisesByTwo) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);  // seq 2, a.seq 1
  {
    Range idle_range(mm_, 8 * kPage, 9 * kPage);  // active 1, seq 2
    ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
    EXPECT_TRUE(b.seq_is(3)) << "inserted while partially excluded: seq |= 1, and b gets it";
  }
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 5u);
}

// ======================================================================================================
// I-3  every cur_seq is odd, equals the address space's seq, and is shared within an epoch

// Callbacks of one epoch, from nested ranges and from another thread, all get the same odd cur_seq.
TEST_F(ItreeConformance, I03_AllCallbacksOfAnEpochGetTheSameOddCurSeq) {
  Watch a(&journal_, 1), b(&journal_, 2, true), c(&journal_, 3);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 0, 2 * kPage), 0);
  ASSERT_EQ(c.insert(mm_, 4 * kPage, kPage), 0);
  Hit(mm_, 0, 5 * kPage);  // epoch 1: seq 3
  {
    Range r1(mm_, 0, kPage);
    RangeThread other(mm_, kPage, 5 * kPage);
    other.wait_started();
    Range r3(mm_, 4 * kPage, 5 * kPage);
    other.end();
  }
  std::vector<unsigned long> seqs;
  for (const Record& r : journal_.all())
    if (r.kind != Kind::kFinish) seqs.push_back(r.cur_seq);
  ASSERT_EQ(seqs.size(), 3u + 2u + 2u + 1u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(seqs[i], 3u);
  for (size_t i = 3; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], 5u) << i;
}

// A range that joins an epoch opened by an insert (partially excluded -> odd) gets that odd seq.
TEST_F(ItreeConformance, I03_RangeJoiningAnInsertOpenedEpochGetsItsSeq) {
  Watch a(&journal_, 1), seed(&journal_, 2);
  ASSERT_EQ(seed.insert(mm_, 64 * kPage, kPage), 0);
  {
    Range idle_range(mm_, 8 * kPage, 9 * kPage);
    ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
    Hit(mm_, 0, kPage);  // a is in the tree already (inserted, not deferred)
    EXPECT_EQ(journal_.first_pass_count(1), 1);
    EXPECT_EQ(journal_.last_seq(1) % 2, 1u);
    EXPECT_TRUE(a.seq_is(journal_.last_seq(1)));
  }
}

// ======================================================================================================
// I-4  while the seq is odd, the set of notifiers in the tree does not change

// During an epoch an insert is not seen by ranges that join it, and a notifier being removed is still
// called by them; both changes happen at the epoch's end.
TEST_F(ItreeConformance, I04_TreeIsFrozenWhileSeqIsOdd) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, 4 * kPage), 0);
  Range open(mm_, 0, kPage);
  ASSERT_EQ(b.insert(mm_, 0, 4 * kPage), 0);
  AsyncCall removing([&] { a.remove(); });
  EXPECT_TRUE(removing.stays_blocked(kGrace));
  journal_.clear();
  {
    Range joining(mm_, 0, 4 * kPage);
  }
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1})) << "a removed / b inserted while frozen";
  open.end();
  ASSERT_TRUE(removing.finishes(kLimit));
  journal_.clear();
  Hit(mm_, 0, 4 * kPage);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{2}));
}

// ======================================================================================================
// I-22  the first insert creates the subscriptions with seq 2

// A fresh address space: the first notifier gets seq 2 - 1 = 1, read_begin returns 1 at once, the first
// hit has cur_seq 3.
TEST_F(ItreeConformance, I22_FirstInsertStartsSeqAtTwo) {
  Watch a(&journal_, 1);
  Hit(mm_, 0, kPage);  // ranges before any subscription change nothing
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(a.seq_is(1));
  EXPECT_EQ(a.read_begin(), 1u);
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 3u);
}

// A second insert while idle gets the current (even) seq - 1 as well.
TEST_F(ItreeConformance, I22_IdleInsertGetsSeqMinusOne) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  Hit(mm_, 0, kPage);  // seq 4
  Hit(mm_, 0, kPage);  // seq 6
  ASSERT_EQ(b.insert(mm_, kPage, kPage), 0);
  EXPECT_TRUE(b.seq_is(5));
}

// ======================================================================================================
// I-22 (continued)

// The subscriptions, and their seq, outlive the last interval notifier (has_itree is never cleared): a
// notifier inserted after all were removed continues from the current seq, not from 2.
TEST_F(ItreeConformance, I22_SeqContinuesAfterTheLastNotifierIsRemoved) {
  {
    Watch a(&journal_, 1);
    ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
    Hit(mm_, 0, kPage);  // seq 4
  }
  Watch b(&journal_, 2);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(b.seq_is(3));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(2), 5u);
}

// A classic registration first also creates the subscriptions with seq 2.
TEST_F(ItreeConformance, I22_RegisterFirstAlsoStartsSeqAtTwo) {
  static const umn_notifier_ops kQuiet = {};
  umn_notifier classic{};
  classic.ops = &kQuiet;
  const int err = umn_notifier_register(&classic, mm_);
  ASSERT_EQ(err, 0);
  Hit(mm_, 0, kPage);
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(a.seq_is(1));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.last_seq(1), 3u);
  a.remove();
  umn_notifier_unregister(&classic, mm_);
}

}  // namespace
}  // namespace umn::test::itree_conformance
