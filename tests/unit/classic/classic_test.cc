// classic_test.cc - classic notifiers through the C API: register / unregister, dispatch order, the
// non-blockable failure rules, the young queries, teardown, and registration vs in-flight ranges.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "classic_support.hpp"
#include "umn/umn.h"

namespace umn::test {
namespace {

using std::chrono::milliseconds;

class Classic : public ::testing::Test {
 protected:
  void SetUp() override { mm_ = umn_mm_create(); }
  void TearDown() override { umn_mm_destroy(mm_); }
  umn_mm* mm_ = nullptr;
  Log log_;
};

// A registered notifier gets start then end for an invalidation, with users 1 and mm set.
TEST_F(Classic, RegisterDeliversStartAndEnd) {
  Rec a("a", &log_, kRelease | kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  EXPECT_EQ(a.c.mm, mm_);
  EXPECT_EQ(a.c.users, 1u);
  invalidate(mm_);
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"a:start", "a:end"}));
  EXPECT_NE(a.last_flags & UMN_NOTIFIER_RANGE_BLOCKABLE, 0u);
  umn_notifier_unregister(&a.c, mm_);
}

// Calls happen in reverse registration order, for starts, ends, and young queries.
TEST_F(Classic, CallsInReverseRegistrationOrder) {
  Rec a("a", &log_, kRange | kClearYoung), b("b", &log_, kRange | kClearYoung), c("c", &log_, kRange | kClearYoung);
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  invalidate(mm_);
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"c:start", "b:start", "a:start", "c:end", "b:end", "a:end"}));
  umn_notifier_clear_young(mm_, 0, 0x1000);
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"c:clear_young", "b:clear_young", "a:clear_young"}));
  for (Rec* r : {&a, &b, &c}) umn_notifier_unregister(&r->c, mm_);
}

// clear_flush_young and clear_young call every notifier and OR the answers.
TEST_F(Classic, ClearYoungCallsEveryoneAndOrs) {
  Rec a("a", nullptr, kClearFlushYoung | kClearYoung), b("b", nullptr, kClearFlushYoung | kClearYoung);
  b.young = 1;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);  // b is called first
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 1);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  EXPECT_EQ(a.youngs, 2);
  EXPECT_EQ(b.youngs, 2);
  b.young = 0;
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
}

// test_young stops at the first notifier that answers true.
TEST_F(Classic, TestYoungStopsAtFirstTrue) {
  Rec a("a", nullptr, kTestYoung), b("b", nullptr, kTestYoung), c("c", nullptr, kTestYoung);
  b.young = 1;
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 1);
  EXPECT_EQ(c.youngs, 1);
  EXPECT_EQ(b.youngs, 1);
  EXPECT_EQ(a.youngs, 0);
  for (Rec* r : {&a, &b, &c}) umn_notifier_unregister(&r->c, mm_);
}

// With no classic notifier (or no subscriptions) the young queries answer 0 and call nothing.
// (NULL or start >= end is misuse: tests/unit/misuse.)
TEST_F(Classic, YoungWithoutNotifiersIsZero) {
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 1), 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 1), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0), 0);
  Rec a("a", nullptr, kRange);  // has no young callbacks
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0), 0);
  umn_notifier_unregister(&a.c, mm_);
}

// arch_invalidate_secondary_tlbs reaches every notifier that has it, and only those.
TEST_F(Classic, ArchInvalidateSecondaryTlbsCallsEachHolder) {
  Rec a("a", nullptr, kArch | kRelease), b("b", nullptr, kRange), c("c", nullptr, kArch);
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0, 0x1000);
  EXPECT_EQ(a.archs, 1);
  EXPECT_EQ(c.archs, 1);
  EXPECT_EQ(b.starts, 0);
  for (Rec* r : {&a, &b, &c}) umn_notifier_unregister(&r->c, mm_);
}

// Registration rejects arch_invalidate_secondary_tlbs together with start or end (-EINVAL, WARN).
TEST_F(Classic, RegisterRejectsArchWithStartOrEnd) {
  Diags diags;
  Rec with_start("s", nullptr, kArch | kStart), with_end("e", nullptr, kArch | kEnd);
  EXPECT_EQ(umn_notifier_register(&with_start.c, mm_), -EINVAL);
  EXPECT_EQ(umn_notifier_register(&with_end.c, mm_), -EINVAL);
  EXPECT_EQ(diags.count("arch_invalidate_secondary_tlbs"), 2u);
  invalidate(mm_);
  EXPECT_EQ(with_start.starts + with_end.ends, 0);
}

// Bad arguments and a double registration are -EINVAL with a WARN; the first registration still works.
TEST_F(Classic, RegisterRejectsBadArgumentsAndDoubleRegistration) {
  Diags diags;
  Rec a("a", nullptr, kRange);
  EXPECT_EQ(umn_notifier_register(nullptr, mm_), -EINVAL);
  EXPECT_EQ(umn_notifier_register(&a.c, nullptr), -EINVAL);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  EXPECT_EQ(umn_notifier_register(&a.c, mm_), -EINVAL);
  EXPECT_EQ(diags.count(), 3u);
  invalidate(mm_);
  EXPECT_EQ(a.starts, 1);  // linked once
  umn_notifier_unregister(&a.c, mm_);
}

// A non-blockable -EAGAIN lets the others start, then ends every notifier with an end, and the caller
// gets -EAGAIN (and calls no end). No WARN: this is the legal way to fail.
TEST_F(Classic, NonblockEagainStartsEveryoneThenEndsThoseWithEnd) {
  Diags diags;
  Rec a("a", &log_, kRange), b("b", &log_, kStart), c("c", &log_, kRange);
  b.start_result = -EAGAIN;
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm_, 0x1000, 0x2000);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"c:start", "b:start", "a:start", "c:end", "a:end"}));
  EXPECT_EQ(c.last_flags & UMN_NOTIFIER_RANGE_BLOCKABLE, 0u);
  EXPECT_EQ(diags.count(), 0u);
  // The address space is not left invalidating: a registration does not wait.
  Rec d("d", nullptr, kRange);
  EXPECT_EQ(umn_notifier_register(&d.c, mm_), 0);
  for (Rec* r : {&a, &b, &c, &d}) umn_notifier_unregister(&r->c, mm_);
}

// A failing notifier that also has an end is WARNed (its end is called like everyone's).
TEST_F(Classic, FailingNotifierWithEndWarns) {
  Diags diags;
  Rec a("a", nullptr, kRange);
  a.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm_, 0x1000, 0x2000);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(diags.count("also has invalidate_range_end"), 1u);
  EXPECT_EQ(a.ends, 1);
  umn_notifier_unregister(&a.c, mm_);
}

// A failure on a blockable range is a driver bug: WARN, treated as success, ended once by range_end.
TEST_F(Classic, BlockableFailureWarnsAndIsEndedOnce) {
  Diags diags;
  Rec a("a", nullptr, kRange), b("b", nullptr, kStart);
  b.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  invalidate(mm_);
  EXPECT_EQ(diags.count("blockable"), 1u);
  EXPECT_EQ(a.starts, 1);
  EXPECT_EQ(a.ends, 1);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
}

// An error other than -EAGAIN is WARNed; the caller still sees -EAGAIN (the nonblock contract).
TEST_F(Classic, NonEagainErrorWarnsAndFailsWithEagain) {
  Diags diags;
  Rec b("b", nullptr, kStart);
  b.start_result = -ENOMEM;
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm_, 0x1000, 0x2000);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(diags.count("other than -EAGAIN"), 1u);
  umn_notifier_unregister(&b.c, mm_);
}

namespace interval {
std::atomic<int> invalidations{0};
bool on_invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
  umn_interval_set_seq(sub, cur_seq);
  invalidations++;
  return true;
}
const umn_interval_notifier_ops kOps = {&on_invalidate, nullptr, nullptr};
}  // namespace interval

// With an interval notifier too: a classic -EAGAIN undoes the interval half (read_begin does not wait,
// a later invalidation works), and the interval notifier was called first.
TEST_F(Classic, NonblockFailureUndoesIntervalHalf) {
  umn_interval_notifier in{};
  ASSERT_EQ(umn_interval_notifier_insert(&in, mm_, 0x1000, 0x1000, &interval::kOps), 0);
  Rec b("b", nullptr, kStart);
  b.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  interval::invalidations = 0;
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm_, 0x1000, 0x2000);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(interval::invalidations, 1);
  std::atomic<bool> returned{false};
  Thread reader([&] {
    (void)umn_interval_read_begin(&in);  // would hang if the epoch were left open
    returned = true;
  });
  EXPECT_TRUE(eventually([&] { return returned.load(); }));
  reader.join();
  umn_notifier_unregister(&b.c, mm_);
  umn_interval_notifier_remove(&in);
}

// unregister calls ->release once and, after it, no callback reaches the notifier; it can register again.
TEST_F(Classic, UnregisterReleasesOnceAndStopsCallbacks) {
  Rec a("a", nullptr, kAll);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_unregister(&a.c, mm_);
  EXPECT_EQ(a.releases, 1);
  invalidate(mm_);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0), 0);
  EXPECT_EQ(a.starts + a.youngs, 0);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);  // reusable
  invalidate(mm_);
  EXPECT_EQ(a.starts, 1);
  umn_notifier_unregister(&a.c, mm_);
  EXPECT_EQ(a.releases, 2);  // once per registration
}

// Teardown calls every ->release once and empties the list; a later unregister calls no second release.
TEST_F(Classic, ReleaseCallsEachOnceThenUnregisterIsSafe) {
  Rec a("a", &log_, kAll), b("b", &log_, kAll);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  umn_notifier_release(mm_);
  umn_notifier_release(mm_);  // runs once
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"b:release", "a:release"}));
  invalidate(mm_);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0), 0);
  EXPECT_EQ(a.starts + b.starts + a.youngs + b.youngs, 0);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
  EXPECT_EQ(a.releases, 1);
  EXPECT_EQ(b.releases, 1);
}

// Registering on a released address space fails with -EINVAL.
TEST_F(Classic, RegisterAfterReleaseFails) {
  Diags diags;
  umn_notifier_release(mm_);
  Rec a("a", nullptr, kRange);
  EXPECT_EQ(umn_notifier_register(&a.c, mm_), -EINVAL);
  EXPECT_EQ(diags.count("released"), 1u);
}

namespace release_order {
Log* log;
std::atomic<int> releases{0};
bool on_invalidate(umn_interval_notifier*, const umn_notifier_range* range, unsigned long) {
  if (range->event == UMN_NOTIFY_RELEASE) {
    releases++;
    log->add("interval:RELEASE");
  }
  return true;
}
const umn_interval_notifier_ops kOps = {&on_invalidate, nullptr, nullptr};
}  // namespace release_order

// Interval notifiers get exactly one RELEASE with classic notifiers present, before the classic releases.
TEST_F(Classic, IntervalReleaseOnceAndBeforeClassicRelease) {
  release_order::log = &log_;
  release_order::releases = 0;
  umn_interval_notifier in{};
  ASSERT_EQ(umn_interval_notifier_insert(&in, mm_, 0x1000, 0x1000, &release_order::kOps), 0);
  Rec a("a", &log_, kAll), b("b", &log_, kAll);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(release_order::releases, 1);
  EXPECT_EQ(log_.take(), (std::vector<std::string>{"interval:RELEASE", "b:release", "a:release"}));
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
  umn_interval_notifier_remove(&in);
}

// Registration waits for a range in flight; the new notifier gets neither half of that range, and both
// halves of the next one.
TEST_F(Classic, RegisterWaitsForInFlightRange) {
  Rec old_one("old", nullptr, kRange), fresh("new", nullptr, kRange);
  ASSERT_EQ(umn_notifier_register(&old_one.c, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0x1000, 0x2000);
  umn_notifier_invalidate_range_start(&range);
  std::atomic<bool> registered{false};
  Thread registrar([&] {
    EXPECT_EQ(umn_notifier_register(&fresh.c, mm_), 0);
    registered = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(registered) << "register returned while a range was in flight";
  umn_notifier_invalidate_range_end(&range);
  registrar.join();
  EXPECT_TRUE(registered);
  EXPECT_EQ(fresh.starts + fresh.ends, 0);
  invalidate(mm_);
  EXPECT_EQ(fresh.starts, 1);
  EXPECT_EQ(fresh.ends, 1);
  umn_notifier_unregister(&old_one.c, mm_);
  umn_notifier_unregister(&fresh.c, mm_);
}

namespace blocking {
Latch* start_gate;
Latch* end_gate;
std::atomic<bool> finished{false};
int on_start(umn_notifier*, const umn_notifier_range*) {
  if (start_gate != nullptr) start_gate->wait();
  finished = true;
  return 0;
}
void on_end(umn_notifier*, const umn_notifier_range*) {
  if (end_gate != nullptr) end_gate->wait();
}
}  // namespace blocking

// A notifier registered while an older one's end is still running (the range already left `active`, so
// registration does not wait) gets no end for that range. (The narrower window, a registration between
// the interval-tree end and the first load of the list, is covered by the stress test's end-without-start
// check: range_end snapshots the list before the interval-tree end.)
TEST_F(Classic, NotifierRegisteredDuringEndGetsNoEnd) {
  Latch end_gate;
  blocking::end_gate = &end_gate;
  blocking::start_gate = nullptr;
  BareNotifier slow;
  slow.ops.invalidate_range_end = &blocking::on_end;
  ASSERT_EQ(umn_notifier_register(&slow.sub, mm_), 0);
  Thread invalidator([&] { invalidate(mm_); });
  ASSERT_TRUE(end_gate.await_entered());
  Rec fresh("new", nullptr, kRange);
  ASSERT_EQ(umn_notifier_register(&fresh.c, mm_), 0);  // active is 0 already: does not wait
  end_gate.open();
  invalidator.join();
  EXPECT_EQ(fresh.starts, 0);
  EXPECT_EQ(fresh.ends, 0);
  blocking::end_gate = nullptr;
  umn_notifier_unregister(&fresh.c, mm_);
  umn_notifier_unregister(&slow.sub, mm_);
}

// A callback still running when its notifier is unregistered finishes before unregister returns.
TEST_F(Classic, UnregisterWaitsForRunningCallback) {
  Latch gate;
  blocking::start_gate = &gate;
  blocking::finished = false;
  BareNotifier blocked;
  blocked.ops.invalidate_range_start = &blocking::on_start;
  ASSERT_EQ(umn_notifier_register(&blocked.sub, mm_), 0);
  Thread invalidator([&] { invalidate(mm_); });
  ASSERT_TRUE(gate.await_entered());
  std::atomic<bool> unregistered{false};
  bool finished_first = false;
  Thread unregistrar([&] {
    umn_notifier_unregister(&blocked.sub, mm_);
    finished_first = blocking::finished;
    unregistered = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(unregistered) << "unregister returned while a callback was running";
  gate.open();
  unregistrar.join();
  invalidator.join();
  EXPECT_TRUE(finished_first);
  blocking::start_gate = nullptr;
}

namespace reentry {
umn_mm* mm;
int register_result;
int on_start(umn_notifier*, const umn_notifier_range*) {
  static umn_notifier_ops ops{};
  static umn_notifier other{};
  other.ops = &ops;
  register_result = umn_notifier_register(&other, mm);
  return 0;
}
void on_end(umn_notifier* sub, const umn_notifier_range*) { umn_notifier_unregister(sub, mm); }
}  // namespace reentry

// register and unregister from a callback are misuse: diagnosed, -EDEADLK / ignored, no deadlock.
TEST_F(Classic, RegisterOrUnregisterFromCallbackIsDiagnosed) {
  Diags diags;
  reentry::mm = mm_;
  BareNotifier reentrant;
  reentrant.ops.invalidate_range_start = &reentry::on_start;
  reentrant.ops.invalidate_range_end = &reentry::on_end;
  ASSERT_EQ(umn_notifier_register(&reentrant.sub, mm_), 0);
  invalidate(mm_);
  EXPECT_EQ(reentry::register_result, -EDEADLK);
  EXPECT_EQ(diags.count("from a classic notifier callback"), 2u);
  reentrant.ops.invalidate_range_start = nullptr;
  reentrant.ops.invalidate_range_end = nullptr;
  umn_notifier_unregister(&reentrant.sub, mm_);
}

// Unregistering twice, or a notifier never registered, is diagnosed and changes nothing.
TEST_F(Classic, DoubleUnregisterIsDiagnosed) {
  Diags diags;
  Rec a("a", nullptr, kAll);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&a.c, mm_);
  EXPECT_EQ(diags.count("not registered"), 1u);
  EXPECT_EQ(a.releases, 1);
  Rec never("never", nullptr, kAll);
  never.c.mm = mm_;
  umn_notifier_unregister(&never.c, mm_);
  EXPECT_EQ(diags.count("not registered"), 2u);
}

// Destroying an address space with a registration still held is diagnosed; ->release is called; the
// later unregister is safe and frees the address space's memory (ASan checks the use).
TEST(ClassicTeardown, DestroyWithRegistrationIsDiagnosedAndUnregisterStaysSafe) {
  Diags diags;
  umn_mm* mm = umn_mm_create();
  Rec a("a", nullptr, kAll);
  ASSERT_EQ(umn_notifier_register(&a.c, mm), 0);
  umn_mm_destroy(mm);
  EXPECT_EQ(diags.count("classic notifiers still registered"), 1u);
  EXPECT_EQ(a.releases, 1);
  umn_notifier_unregister(&a.c, mm);
  EXPECT_EQ(a.releases, 1);
}

// Registration on a fresh address space (no subscriptions yet) sees invalidations started after it.
TEST(ClassicTeardown, FirstRegistrationCreatesSubscriptions) {
  umn_mm* mm = umn_mm_create();
  invalidate(mm);  // bare: no subscriptions yet
  Rec a("a", nullptr, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm), 0);
  invalidate(mm);
  EXPECT_EQ(a.starts, 1);
  EXPECT_EQ(a.ends, 1);
  umn_notifier_unregister(&a.c, mm);
  umn_mm_destroy(mm);
}

}  // namespace
}  // namespace umn::test
