// model_test.cc - the reference model's own tests: it must state the kernel's semantics
// (docs/semantics.md) before it may judge umn. Numbers here are the kernel's.
#include "model.hpp"

#include <gtest/gtest.h>

namespace umn_model {
namespace {

const Decide kOk = [](int) { return Decision{true, true, true}; };

// 2.6 worked example: 1 after an idle insert, 3 during the epoch, waits while invalidated, 4 after.
TEST(Model, WorkedExampleSequenceNumbers) {
  Model m(2, 2);
  bool block;
  ASSERT_EQ(m.insert(0, 0x1000, 0x1000, OpsKind::kInvalidate, &block), 0);
  EXPECT_EQ(m.read_begin(0, &block), 1u);
  EXPECT_FALSE(block);
  std::vector<Call> calls;
  ASSERT_EQ(m.range_start(0, 0x1000, 0x2000, 0, true, kOk, &calls), 0);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].cur_seq, 3u);
  EXPECT_TRUE(m.read_retry(0, 1));
  EXPECT_EQ(m.read_begin(0, &block), 3u);
  EXPECT_TRUE(block);
  ASSERT_EQ(m.range_start(1, 0x8000, 0x9000, 0, true, kOk, &calls), 0);  // nested, no hit
  std::vector<int> woken;
  m.range_end(0, &calls, &woken);
  EXPECT_EQ(m.seq(), 3u);  // the nested range keeps the epoch open
  m.range_end(1, &calls, &woken);
  EXPECT_EQ(m.seq(), 4u);
  m.read_begin(0, &block);
  EXPECT_FALSE(block);
  EXPECT_FALSE(m.read_retry(0, 3));
}

// 2.8: an insert into a frozen tree is deferred and gets no callback from ranges of that epoch.
TEST(Model, InsertDuringFrozenEpochIsDeferredAndNotCalled) {
  Model m(2, 2);
  bool block;
  m.insert(0, 0, 0x1000, OpsKind::kInvalidate, &block);
  std::vector<Call> calls;
  m.range_start(0, 0, 0x1000, 0, true, kOk, &calls);
  ASSERT_EQ(m.insert(1, 0, 0x1000, OpsKind::kInvalidate, &block), 0);
  EXPECT_EQ(m.state(1), NotifierState::kPendingInsert);
  calls.clear();
  m.range_start(1, 0, 0x1000, 0, true, kOk, &calls);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].notifier, 0);
  m.read_begin(1, &block);
  EXPECT_TRUE(block);
  std::vector<int> woken;
  m.range_end(0, &calls, &woken);
  m.range_end(1, &calls, &woken);
  EXPECT_EQ(m.state(1), NotifierState::kInTree);
}

// 2.9: remove during a frozen epoch waits; the epoch's last end completes it and wakes the remover.
TEST(Model, RemoveDuringEpochWaitsForItsEnd) {
  Model m(1, 1);
  bool block;
  m.insert(0, 0, 0x1000, OpsKind::kInvalidate, &block);
  std::vector<Call> calls;
  m.range_start(0, 0, 0x1000, 0, true, kOk, &calls);
  EXPECT_TRUE(m.remove(0));
  EXPECT_EQ(m.state(0), NotifierState::kPendingRemove);
  std::vector<int> woken;
  m.range_end(0, &calls, &woken);
  EXPECT_EQ(woken, std::vector<int>{0});
  EXPECT_EQ(m.state(0), NotifierState::kRemoved);
}

// I-12: a non-blocking failure at position k runs the finishes before k and calls nothing after it.
TEST(Model, NonblockFailureAtKStopsTheWalkAndRunsEarlierFinishes) {
  Model m(3, 1);
  bool block;
  for (int n = 0; n < 3; ++n) m.insert(n, 0x1000 * n, 0x1000, OpsKind::kTwoPass, &block);
  int k = 0;
  Decide fail_second = [&](int) { return Decision{k++ != 1, true, true}; };
  std::vector<Call> calls;
  EXPECT_EQ(m.range_start(0, 0, 0x3000, 0, false, fail_second, &calls), kEAGAIN);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].kind, Call::kStart);
  EXPECT_EQ(calls[1].kind, Call::kStart);
  EXPECT_FALSE(calls[1].record);
  EXPECT_EQ(calls[2].kind, Call::kFinish);
  EXPECT_EQ(calls[2].notifier, 0);
  EXPECT_EQ(m.active(), 0u);  // I-10
  EXPECT_EQ(m.seq() % 2, 0u);
}

// 2.7 / I-5: equal starts are visited in the order they entered the tree.
TEST(Model, EqualStartsVisitedInTreeInsertionOrder) {
  Model m(3, 1);
  bool block;
  m.insert(2, 0x1000, 0x3000, OpsKind::kInvalidate, &block);
  m.insert(0, 0x1000, 0x1000, OpsKind::kInvalidate, &block);
  m.insert(1, 0x0, 0x2000, OpsKind::kInvalidate, &block);
  std::vector<Call> calls;
  m.range_start(0, 0, UINT64_MAX, 0, true, kOk, &calls);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].notifier, 1);
  EXPECT_EQ(calls[1].notifier, 2);
  EXPECT_EQ(calls[2].notifier, 0);
}

// A range started before any subscription makes a later insert wait (the model says so).
TEST(Model, BareRangeMakesInsertWait) {
  Model m(1, 1);
  std::vector<Call> calls;
  m.range_start(0, 0, 0x1000, 0, true, kOk, &calls);
  bool block;
  m.insert(0, 0, 0x1000, OpsKind::kInvalidate, &block);
  EXPECT_TRUE(block);
  EXPECT_EQ(m.state(0), NotifierState::kNever);
}

// Misuse is diagnosed and changes nothing.
TEST(Model, MisuseIsDiagnosed) {
  Model m(1, 1);
  bool block;
  EXPECT_FALSE(m.remove(0));
  EXPECT_EQ(m.take_diagnostics().size(), 1u);
  EXPECT_EQ(m.insert(0, 0, 0, OpsKind::kInvalidate, &block), kEOVERFLOW);
  EXPECT_EQ(m.insert(0, 0, 1, OpsKind::kStartNoFinish, &block), kEINVAL);
  std::vector<Call> calls;
  EXPECT_EQ(m.range_start(0, 5, 5, 0, false, kOk, &calls), kEINVAL);
  EXPECT_EQ(m.take_diagnostics().size(), 2u);
  EXPECT_EQ(m.state(0), NotifierState::kNever);
}

// ---- classic notifiers (docs/semantics.md 3, 4) ----

constexpr ClassicOps kStartEnd = kHasRelease | kHasStart | kHasEnd;
constexpr ClassicOps kGetOps = kStartEnd | kHasAlloc | kHasFree;

// Newest first; a non-blocking start failure calls every end and fails the range (5.12+).
TEST(Model, ClassicWalksNewestFirstAndNonblockFailureCallsEveryEnd) {
  Model m(0, 2, 2);
  bool block;
  ASSERT_EQ(m.classic_register(0, kStartEnd, &block), 0);
  ASSERT_EQ(m.classic_register(1, kHasStart, &block), 0);  // may fail: no end
  std::vector<Call> calls;
  ASSERT_EQ(m.range_start(0, 0, 0x1000, 0, true, kOk, &calls), 0);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].notifier, 1);
  EXPECT_EQ(calls[1].notifier, 0);
  EXPECT_EQ(m.classic_register(0, kStartEnd, &block), kEINVAL);  // twice: diagnosed, nothing waits
  EXPECT_FALSE(block);
  EXPECT_EQ(m.take_diagnostics().size(), 1u);
  std::vector<int> woken;
  calls.clear();
  m.range_end(0, &calls, &woken);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].kind, Call::kClassicEnd);
  int k = 0;
  Decide fail_first = [&](int) { return Decision{k++ != 0, false, true}; };
  calls.clear();
  EXPECT_EQ(m.range_start(1, 0, 0x1000, 0, false, fail_first, &calls), kEAGAIN);
  ASSERT_EQ(calls.size(), 3u);  // start(1) fails, start(0), then end(0)
  EXPECT_EQ(calls[2].kind, Call::kClassicEnd);
  EXPECT_EQ(m.active(), 0u);
  EXPECT_FALSE(m.range_open(1));
}

// Registration waits for ranges in flight (the model says so), and teardown calls ->release once.
TEST(Model, RegisterWaitsForRangesAndReleaseRunsOnce) {
  Model m(0, 1, 1);
  bool block;
  std::vector<Call> calls;
  std::vector<int> woken;
  ASSERT_EQ(m.classic_register(0, kStartEnd, &block), 0);
  m.classic_unregister(0, &calls);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].kind, Call::kRelease);
  m.range_start(0, 0, 0x1000, 0, true, kOk, &calls);
  m.classic_register(0, kStartEnd, &block);
  EXPECT_TRUE(block);
  m.range_end(0, &calls, &woken);
  ASSERT_EQ(m.classic_register(0, kStartEnd, &block), 0);
  calls.clear();
  m.release(kOk, &calls, &woken, &block);
  ASSERT_EQ(calls.size(), 1u);
  m.classic_unregister(0, &calls);  // after teardown: no second ->release
  EXPECT_EQ(calls.size(), 1u);
  EXPECT_TRUE(m.take_diagnostics().empty());
}

// get: one notifier per key, users counted; the last put queues the free; synchronize runs it.
TEST(Model, GetPutCountsUsersAndFreesAfterTheLastPut) {
  Model m(0, 1, 1);
  bool block;
  std::vector<Call> calls;
  const int id = m.get(0, kGetOps, false, &calls, &block);
  ASSERT_EQ(id, 1);
  EXPECT_EQ(m.get(0, kGetOps, false, &calls, &block), id);
  EXPECT_EQ(m.get(1, kGetOps, true, &calls, &block), kENOMEM);
  EXPECT_EQ(calls.size(), 2u);  // two allocs
  EXPECT_EQ(m.classic_users(id), 2u);
  m.put(id);
  EXPECT_FALSE(m.free_allowed(id));
  m.put(id);
  EXPECT_TRUE(m.free_allowed(id));
  m.put(id);  // put without get: diagnosed
  EXPECT_EQ(m.take_diagnostics().size(), 1u);
  std::vector<int> freed;
  m.synchronize(&freed);
  EXPECT_EQ(freed, std::vector<int>{id});
}

}  // namespace
}  // namespace umn_model
