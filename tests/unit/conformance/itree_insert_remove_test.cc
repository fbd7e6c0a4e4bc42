// itree_insert_remove_test.cc - interval-notifier conformance, insert and remove: invariants I-8 and I-9, sections 2.8 and 2.9, pitfall 6.1(3).
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// I-8  inserted while active > 0: the first read_begin waits for every range active at insert time;
//      inserted while idle: it never waits

TEST_F(ItreeConformance, I08_InsertedWhileIdleNeverWaits) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm_, 2 * kPage, kPage), 0);
  Range open(mm_, 2 * kPage, 3 * kPage);  // an epoch that does not hit a
  EXPECT_TRUE(ReturnsPromptly([&] { a.read_begin(); }));
}

// Partially excluded (ranges active, none hit anything): the insert links at once, but read_begin waits
// until both ranges that were active at insert time have ended.
TEST_F(ItreeConformance, I08_InsertedWhilePartiallyExcludedWaitsForAllRangesActiveAtInsert) {
  Watch a(&journal_, 1), seed(&journal_, 2);
  ASSERT_EQ(seed.insert(mm_, 64 * kPage, kPage), 0);  // subscriptions exist; seq 2
  auto r1 = std::make_unique<Range>(mm_, 0, 8 * kPage);
  RangeThread r2(mm_, 0, 8 * kPage);
  r2.wait_started();
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(a.seq_is(3));
  std::atomic<unsigned long> seq{0};
  AsyncCall reader([&] { seq = a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  r1.reset();
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  r2.end();
  ASSERT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(seq.load(), 3u);
  EXPECT_EQ(journal_.first_pass_count(1), 0) << "ranges that walked before the insert do not call it";
  EXPECT_EQ(ExpectIdle(), 6u);
}

// Fully excluded: the insert is deferred; read_begin waits for the epoch to end, and returns its seq.
TEST_F(ItreeConformance, I08_InsertedWhileFullyExcludedWaitsForTheEpoch) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  Range open(mm_, 0, kPage);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(a.seq_is(3));
  std::atomic<unsigned long> seq{0};
  AsyncCall reader([&] { seq = a.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked(kGrace));
  open.end();
  ASSERT_TRUE(reader.finishes(kLimit));
  EXPECT_EQ(seq.load(), 3u);
  EXPECT_FALSE(a.read_retry(seq));
}

// ======================================================================================================
// I-9  after remove returns no callback runs or starts; removing a deferred insert does not wait

// remove waits for a callback of the notifier running on another thread, and for the epoch's end.
TEST_F(ItreeConformance, I09_RemoveWaitsForTheRunningCallbackAndTheEpoch) {
  Watch a(&journal_, 1);
  Gate gate;
  a.gate = &gate;
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  RangeThread invalidator(mm_, 0, kPage);
  gate.wait_arrivals(1);
  AsyncCall removing([&] { a.remove(); });
  EXPECT_TRUE(removing.stays_blocked(kGrace));
  gate.open();
  invalidator.wait_started();
  EXPECT_TRUE(removing.stays_blocked(kGrace)) << "returned inside the epoch";
  invalidator.end();
  ASSERT_TRUE(removing.finishes(kLimit));
  EXPECT_EQ(a.running.load(), 0);
  const int calls = a.calls.load();
  Hit(mm_, 0, kPage);
  EXPECT_EQ(a.calls.load(), calls);
}

// Remove while idle returns at once, and no later range calls the notifier.
TEST_F(ItreeConformance, I09_RemoveWhileIdleReturnsAtOnce) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  EXPECT_TRUE(ReturnsPromptly([&] { a.remove(); }));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 0);
  ExpectIdle();
}

// A remove of an insert still deferred cancels it without waiting; no callback ever runs, not even after
// the epoch that deferred it ends.
TEST_F(ItreeConformance, I09_RemoveOfADeferredInsertCancelsItWithoutWaiting) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  {
    Range open(mm_, 0, kPage);
    ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
    EXPECT_TRUE(ReturnsPromptly([&] { a.remove(); }));
    Hit(mm_, 0, kPage);  // joins the epoch
  }
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 0);
  EXPECT_EQ(a.calls.load(), 0);
  ExpectIdle();
}

// 6.1(8): remove's wait must prove the deferred removal happened. Notifiers freed right after remove
// returns while another thread keeps invalidating them (ASan reports any later touch).
TEST_F(ItreeConformance, I09_NotifierMayBeFreedAsSoonAsRemoveReturns) {
  std::atomic<bool> stop{false};
  std::thread invalidator([&] {
    while (!stop.load()) Hit(mm_, 0, 4 * kPage);
  });
  for (int i = 0; i < 200; ++i) {
    auto w = std::make_unique<Watch>(&journal_, i);
    w->quiet = true;
    ASSERT_EQ(w->insert(mm_, (i % 4) * kPage, kPage), 0);
    std::this_thread::yield();
    w->remove();
    EXPECT_EQ(w->running.load(), 0);
    w.reset();  // freed: a callback or a deferred unlink after this would be a use-after-free
  }
  stop = true;
  invalidator.join();
  ExpectIdle();
}

// ======================================================================================================
// 2.8  insert

// Length 0, and a start + length - 1 that overflows, are -EOVERFLOW (a value, no diagnostic). An
// interval ending exactly at UINT64_MAX is legal. (docs/semantics.md §1's "start + length overflowing" is read as
// the kernel's check on the last byte, start + length - 1; the header says the same.)
TEST_F(ItreeConformance, Insert_ZeroLengthOrOverflowIsEoverflow) {
  Watch a(&journal_, 1);
  EXPECT_EQ(a.insert(mm_, kPage, 0), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, 0, 0), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, kTop, 2), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, 2, kTop), -EOVERFLOW);
  EXPECT_EQ(a.insert(mm_, kTop - kPage + 2, kPage), -EOVERFLOW);
  EXPECT_EQ(diags_.count(), 0u);
  EXPECT_EQ(a.insert(mm_, 1, kTop), 0);  // [1, UINT64_MAX]
  a.remove();
  EXPECT_EQ(a.insert(mm_, 0, kTop), 0);  // [0, UINT64_MAX - 1]
  Hit(mm_, kTop - 1, kTop);
  EXPECT_EQ(journal_.first_pass_count(1), 1);
}

// 6.1(9): after a failed insert no pin was taken; a remove is diagnosed and changes nothing.
TEST_F(ItreeConformance, Insert_RemoveAfterFailedInsertIsDiagnosedAndHarmless) {
  Watch a(&journal_, 1);
  EXPECT_EQ(a.insert(mm_, kPage, 0), -EOVERFLOW);
  umn_interval_notifier_remove(a.sub());
  EXPECT_EQ(diags_.count("umn_interval_notifier_remove"), 1u);
  expected_diags_ = 1;
  ExpectIdle();
}

// Inserted while fully excluded: deferred. No callback from ranges that start during the epoch (they
// would not find it), linked at the epoch's end.
TEST_F(ItreeConformance, Insert_DeferredWhileTheTreeIsFrozen) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(b.insert(mm_, 0, kPage), 0);
  {
    Range open(mm_, 0, kPage);
    ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
    Hit(mm_, 0, kPage);
    RangeThread other(mm_, 0, kPage);
    other.wait_started();
    other.end();
    EXPECT_EQ(journal_.first_pass_count(1), 0);
  }
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 1);
  EXPECT_EQ(journal_.last_seq(1), 5u);
}

// Inserted while partially excluded: linked at once (a range that starts afterwards calls it), with the
// now odd seq.
TEST_F(ItreeConformance, Insert_LinkedAtOnceWhilePartiallyExcluded) {
  Watch a(&journal_, 1), seed(&journal_, 2);
  ASSERT_EQ(seed.insert(mm_, 64 * kPage, kPage), 0);
  {
    Range open(mm_, 0, 8 * kPage);
    ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
    Hit(mm_, 0, kPage);
    EXPECT_EQ(journal_.first_pass_count(1), 1);
    EXPECT_EQ(journal_.last_seq(1), 3u);
  }
}

// 6.1(7): the first insert on an address space while a range is in flight there (begun before it had
// subscriptions) waits for that range's end, so the range's end does not unbalance the count.
TEST_F(ItreeConformance, Insert_FirstInsertWaitsForRangesBegunWithoutSubscriptions) {
  Watch a(&journal_, 1);
  auto bare = std::make_unique<Range>(mm_, 0, kPage);
  AsyncCall inserting([&] { EXPECT_EQ(a.insert(mm_, 0, kPage), 0); });
  EXPECT_TRUE(inserting.stays_blocked(kGrace));
  bare.reset();
  ASSERT_TRUE(inserting.finishes(kLimit));
  EXPECT_TRUE(a.seq_is(1));
  EXPECT_EQ(ExpectIdle(), 4u);
}

// Insert into a released address space: -EINVAL with a diagnostic (the kernel's WARN on mm_users <= 0).
TEST_F(ItreeConformance, Insert_IntoAReleasedAddressSpaceIsEinval) {
  Watch a(&journal_, 1), b(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(b.insert(mm_, kPage, kPage), -EINVAL);
  EXPECT_EQ(diags_.count("umn_interval_notifier_insert"), 1u);
  expected_diags_ = 1;
}

// ======================================================================================================
// 2.9  remove

// A notifier removed while the tree is frozen stays in it until the epoch ends: ranges that join the
// epoch after remove started still call it, and remove returns only at the end.
TEST_F(ItreeConformance, Remove_DeferredWhileFrozenAndWaitsForTheEpoch) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  auto open = std::make_unique<Range>(mm_, 0, kPage);
  AsyncCall removing([&] { a.remove(); });
  EXPECT_TRUE(removing.stays_blocked(kGrace));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 2);
  EXPECT_TRUE(removing.stays_blocked(kGrace));
  open.reset();
  ASSERT_TRUE(removing.finishes(kLimit));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 2);
  ExpectIdle();
}

// While partially excluded (ranges active, seq even) a remove is immediate.
TEST_F(ItreeConformance, Remove_ImmediateWhilePartiallyExcluded) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  Range open(mm_, 8 * kPage, 9 * kPage);
  EXPECT_TRUE(ReturnsPromptly([&] { a.remove(); }));
  Hit(mm_, 0, kPage);
  EXPECT_EQ(journal_.first_pass_count(1), 0);
}

// ======================================================================================================
// 6.1(3)  remove or read_begin from a callback would wait for the callback's own epoch (5.2: never do
//         it). The kernel's lockdep reports it; umn diagnoses it (misuse) and returns instead of hanging.

// Runs one blockable invalidation of [0, kPage) on its own thread. Return: whether it finished.
bool InvalidationFinishes(umn_mm* mm) {
  return ReturnsPromptly([mm] { Hit(mm, 0, kPage); });
}

TEST_F(ItreeConformance, Pitfall3_RemoveFromACallbackIsDiagnosedInsteadOfDeadlocking) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  static Watch* target;
  target = &a;
  a.on_first_pass = [] { umn_interval_notifier_remove(target->sub()); };
  ASSERT_TRUE(InvalidationFinishes(mm_));
  EXPECT_EQ(diags_.count("umn_interval_notifier_remove"), 1u);
  expected_diags_ = 1;
  a.on_first_pass = nullptr;
  Hit(mm_, 0, kPage);  // the refused remove changed nothing
  EXPECT_EQ(journal_.first_pass_count(1), 2);
  ExpectIdle();
}

TEST_F(ItreeConformance, Pitfall3_RemoveFromAFinishIsDiagnosedInsteadOfDeadlocking) {
  Watch a(&journal_, 1, true);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  a.on_finish = [&a] { umn_interval_notifier_remove(a.sub()); };
  ASSERT_TRUE(InvalidationFinishes(mm_));
  EXPECT_EQ(diags_.count("umn_interval_notifier_remove"), 1u);
  expected_diags_ = 1;
  a.on_finish = nullptr;
}

TEST_F(ItreeConformance, Pitfall3_ReadBeginFromACallbackIsDiagnosedInsteadOfDeadlocking) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0, kPage), 0);
  static Watch* target;
  static unsigned long seen;
  target = &a;
  seen = 1;
  a.on_first_pass = [] { seen = target->read_begin(); };  // after set_seq: a is busy in this epoch
  ASSERT_TRUE(InvalidationFinishes(mm_));
  EXPECT_EQ(seen, 0u);
  EXPECT_EQ(diags_.count("umn_interval_read_begin"), 1u);
  expected_diags_ = 1;
  a.on_first_pass = nullptr;
  ExpectIdle();
}

}  // namespace
}  // namespace umn::test::itree_conformance
