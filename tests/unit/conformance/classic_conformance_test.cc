// classic_conformance_test.cc - conformance of the classic (hlist) notifiers, the dispatch paths and the
// lifetime rules with the kernel's semantics, written from the spec (docs/semantics.md 3, 4,
// 6.1, 6.3 I-14..I-20, I-22) and docs/semantics.md §1, through the public C API only (include/umn/umn.h).
//
// One TEST per invariant or spec rule, named after it (I<n>_..., S<section>_..., or the rule). Where
// docs/semantics.md §1 or umn.h intentionally differ from the kernel, the test follows them and says so.
// Multi-threaded tests use real threads and handshakes (Latch, AsyncCall); a "does not return yet" is a
// short bounded wait (AsyncCall::stays_blocked) followed by the release of the blocker.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/async_call.hpp"
#include "umn/umn.h"
#include "unit/classic/classic_support.hpp"

namespace umn::test::classic_conformance {
namespace {

using Entries = std::vector<std::string>;

// ---- an interval notifier that records its calls (one pass, or two passes with its own record) ----
struct Ival {
  umn_interval_notifier n{};  // first: a umn_interval_notifier* is an Ival*
  std::string name;
  Log* log;
  umn_interval_notifier_ops ops{};
  umn_interval_notifier_finish finish{};
  bool fail_nonblock = false;  // answer false to a non-blockable invalidation
  Latch* gate = nullptr;       // when set, the callback waits on it (after recording)
  std::atomic<int> calls{0}, finishes{0};
  std::mutex mu;
  std::vector<umn_notifier_range> ranges;  // guarded by mu
  std::vector<unsigned long> seqs;         // guarded by mu

  Ival(std::string ival_name, Log* shared_log, bool two_pass = false)
      : name(std::move(ival_name)), log(shared_log) {
    if (two_pass) {
      ops.invalidate_start = &on_start;
      ops.invalidate_finish = &on_finish;
    } else {
      ops.invalidate = &on_invalidate;
    }
  }
  static Ival& of(umn_interval_notifier* sub) { return *reinterpret_cast<Ival*>(sub); }
  int insert(umn_mm* mm, uint64_t start, uint64_t length) {
    return umn_interval_notifier_insert(&n, mm, start, length, &ops);
  }
  bool record(const umn_notifier_range* range, unsigned long cur_seq, const char* what) {
    {
      std::lock_guard guard(mu);
      ranges.push_back(*range);
      seqs.push_back(cur_seq);
    }
    calls++;
    if (log != nullptr) log->add(name + ":" + what);
    if (fail_nonblock && !umn_notifier_range_blockable(range)) return false;
    umn_interval_set_seq(&n, cur_seq);
    if (gate != nullptr) gate->wait();
    return true;
  }
  static bool on_invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
    return of(sub).record(range, cur_seq, "invalidate");
  }
  static bool on_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                       umn_interval_notifier_finish** finish) {
    const bool ok = of(sub).record(range, cur_seq, "invalidate_start");
    if (ok) *finish = &of(sub).finish;
    return ok;
  }
  static void on_finish(umn_interval_notifier_finish* finish) {
    Ival& self = of(finish->notifier);
    self.finishes++;
    if (self.log != nullptr) self.log->add(self.name + ":finish");
  }
  umn_notifier_range last_range() {
    std::lock_guard guard(mu);
    return ranges.back();
  }
  unsigned long last_seq() {
    std::lock_guard guard(mu);
    return seqs.back();
  }
};

// ---- get/put notifiers: counters per ops table ----
struct GetCounters {
  std::atomic<int> allocs{0}, frees{0}, releases{0}, youngs{0};
};
struct Gotten {
  umn_notifier c{};  // first
  GetCounters* counters;
  Latch* young_gate = nullptr;  // when set, clear_young waits on it
  bool put_in_release = false;
  bool keep_memory = false;  // free_notifier only counts (so that a later misuse is observable)
};

GetCounters g_get;         // for kGetOps
std::atomic<std::thread::id> g_free_thread;  // the thread of the last free_notifier
GetCounters g_get_other;   // for kGetOtherOps
Latch* g_alloc_gate = nullptr;  // when set, alloc_notifier waits on it

umn_notifier* gotten_alloc(GetCounters& counters) {
  auto* g = new Gotten;
  g->counters = &counters;
  counters.allocs++;
  if (g_alloc_gate != nullptr) g_alloc_gate->wait();
  return &g->c;
}
void gotten_free(umn_notifier* sub) {
  auto* g = reinterpret_cast<Gotten*>(sub);
  g_free_thread = std::this_thread::get_id();
  g->counters->frees++;
  if (!g->keep_memory) delete g;
}
void gotten_release(umn_notifier* sub, umn_mm*) {
  auto* g = reinterpret_cast<Gotten*>(sub);
  g->counters->releases++;
  if (g->put_in_release) umn_notifier_put(sub);
}
int gotten_clear_young(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
  auto* g = reinterpret_cast<Gotten*>(sub);
  g->counters->youngs++;
  if (g->young_gate != nullptr) g->young_gate->wait();
  return 1;
}

const umn_notifier_ops kGetOps = {&gotten_release, nullptr, &gotten_clear_young, nullptr, nullptr, nullptr,
                                  nullptr, [](umn_mm*) { return gotten_alloc(g_get); }, &gotten_free};
const umn_notifier_ops kGetOtherOps = {&gotten_release, nullptr, &gotten_clear_young, nullptr, nullptr, nullptr,
                                       nullptr, [](umn_mm*) { return gotten_alloc(g_get_other); }, &gotten_free};
Gotten& gotten(umn_notifier* sub) { return *reinterpret_cast<Gotten*>(sub); }

// A classic notifier whose ->release blocks on a gate (teardown-in-progress tests).
struct Blocker {
  struct Node {
    umn_notifier sub{};  // first
    Blocker* self = nullptr;
  } node;
  umn_notifier_ops ops{};
  Latch gate;
  std::atomic<int> releases{0};
  Blocker() {
    node.self = this;
    node.sub.ops = &ops;
    ops.release = [](umn_notifier* sub, umn_mm*) {
      Blocker* self = reinterpret_cast<Node*>(sub)->self;
      self->releases++;
      self->gate.wait();
    };
  }
};

class ClassicConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    umn_notifier_synchronize();
    for (GetCounters* c : {&g_get, &g_get_other}) c->allocs = c->frees = c->releases = c->youngs = 0;
    mm_ = umn_mm_create();
    ASSERT_NE(mm_, nullptr);
  }
  void TearDown() override {
    umn_mm_destroy(mm_);
    umn_notifier_synchronize();
    EXPECT_EQ(g_get.allocs.load(), g_get.frees.load()) << "every gotten notifier is freed after its last put";
    EXPECT_EQ(g_get_other.allocs.load(), g_get_other.frees.load());
  }
  // An invalidation [start, end) of mm_, started (blockable) and ended.
  void invalidate_range(uint64_t start = 0x1000, uint64_t end = 0x2000) { invalidate(mm_, start, end); }
  int start_nonblock(umn_notifier_range* range, uint64_t start = 0x1000, uint64_t end = 0x2000) {
    umn_notifier_range_init(range, UMN_NOTIFY_CLEAR, 0, mm_, start, end);
    return umn_notifier_invalidate_range_start_nonblock(range);
  }
  umn_mm* mm_ = nullptr;
  Log log_;
};

// ================================ I-14: hlist order, non-blockable failure ================================

// Every hlist walk (start, end, the three young queries, arch, release) calls in reverse registration
// order: new notifiers are added at the head.
TEST_F(ClassicConformance, I14_HlistCallsInReverseRegistrationOrder) {
  const unsigned which = kRelease | kRange | kClearFlushYoung | kClearYoung | kTestYoung;
  Rec a("a", &log_, which), b("b", &log_, which), c("c", &log_, which);
  Rec x("x", &log_, kArch), y("y", &log_, kArch);
  for (Rec* r : {&a, &b, &x, &c, &y}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  invalidate_range();
  EXPECT_EQ(log_.take(), (Entries{"c:start", "b:start", "a:start", "c:end", "b:end", "a:end"}));
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 0);
  EXPECT_EQ(log_.take(), (Entries{"c:clear_flush_young", "b:clear_flush_young", "a:clear_flush_young",
                                  "c:clear_young", "b:clear_young", "a:clear_young", "c:test_young",
                                  "b:test_young", "a:test_young"}));
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0, 0x1000);
  EXPECT_EQ(log_.take(), (Entries{"y:arch", "x:arch"}));
  umn_notifier_release(mm_);
  EXPECT_EQ(log_.take(), (Entries{"c:release", "b:release", "a:release"}));
  for (Rec* r : {&a, &b, &x, &c, &y}) umn_notifier_unregister(&r->c, mm_);
}

// Non-blockable -EAGAIN (kernel 5.12+, spec 3.2): every subscriber's start is still called; then, inside
// the failed start call, every subscriber that has an end gets exactly one (also one without a start);
// the caller calls no range_end. A failing subscriber without an end is not warned.
TEST_F(ClassicConformance, I14_NonblockEagainCallsEveryStartThenEveryEndWithinTheFailedCall) {
  Diags diags;
  Rec a("a", &log_, kRange), b("b", &log_, kStart), c("c", &log_, kRange), d("d", &log_, kEnd);
  b.start_result = -EAGAIN;
  for (Rec* r : {&a, &b, &c, &d}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  umn_notifier_range range;
  EXPECT_EQ(start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(log_.take(), (Entries{"c:start", "b:start", "a:start", "d:end", "c:end", "a:end"}));
  EXPECT_EQ(a.last_flags & UMN_NOTIFIER_RANGE_BLOCKABLE, 0u);
  EXPECT_EQ(diags.count(), 0u);
  // The next invalidation is paired normally: nothing was left half-started.
  b.start_result = 0;
  invalidate_range();
  EXPECT_EQ(log_.take(), (Entries{"c:start", "b:start", "a:start", "d:end", "c:end", "a:end"}));
  for (Rec* r : {&a, &b, &c, &d}) umn_notifier_unregister(&r->c, mm_);
}

// A subscriber that fails a start and also has an end is WARNed (it cannot tell its end from a
// successful one); it still gets its end, once, like every other subscriber with an end.
TEST_F(ClassicConformance, I14_FailingSubscriberWithAnEndIsWarned) {
  Diags diags;
  Rec a("a", &log_, kRange);
  a.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  EXPECT_EQ(start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(log_.take(), (Entries{"a:start", "a:end"}));
  EXPECT_EQ(diags.count("also has invalidate_range_end"), 1u);
  umn_notifier_unregister(&a.c, mm_);
}

// An error other than -EAGAIN is WARNed (kernel: WARN_ON(_ret != -EAGAIN)). The kernel then returns that
// error; docs/semantics.md §1 gives -EAGAIN the one meaning "would block" and umn.h documents 0 / -EAGAIN / -EINVAL
// for _nonblock, so umn returns -EAGAIN (docs/semantics.md §1 wins).
TEST_F(ClassicConformance, I14_NonEagainErrorIsWarnedAndReportedAsEagain) {
  Diags diags;
  Rec a("a", &log_, kStart);
  a.start_result = -ENOMEM;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  EXPECT_EQ(start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(diags.count("other than -EAGAIN"), 1u);
  umn_notifier_unregister(&a.c, mm_);
}

// A failure on a blockable range is a driver bug: WARNed, and the range goes on. The kernel's blockable
// wrapper ignores the error but the hlist walk has already ended everyone, so the caller's range_end
// ends them a second time; the spec states "if any call failed (so the range must be non-blockable)".
// umn treats the failure as success (each start paired with exactly one end, from range_end), which
// keeps I-14's pairing; umn.h documents the WARN.
TEST_F(ClassicConformance, I14_BlockableFailureIsWarnedAndEachStartEndedOnce) {
  Diags diags;
  Rec a("a", &log_, kStart), b("b", &log_, kRange);
  a.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  invalidate_range();
  EXPECT_EQ(log_.take(), (Entries{"b:start", "a:start", "b:end"}));
  EXPECT_EQ(diags.count("blockable range"), 1u);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
}

// ================================ I-15: young queries ================================

// test_young calls newest first and stops at the first true.
TEST_F(ClassicConformance, I15_TestYoungStopsAtFirstTrue) {
  Rec a("a", &log_, kTestYoung), b("b", &log_, kTestYoung), c("c", &log_, kTestYoung);
  b.young = 1;
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 1);
  EXPECT_EQ(log_.take(), (Entries{"c:test_young", "b:test_young"}));
  b.young = 0;
  EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 0);
  EXPECT_EQ(log_.take(), (Entries{"c:test_young", "b:test_young", "a:test_young"}));
  for (Rec* r : {&a, &b, &c}) umn_notifier_unregister(&r->c, mm_);
}

// clear_young calls every subscriber that has it (no early exit) and ORs the answers.
TEST_F(ClassicConformance, I15_ClearYoungCallsEveryoneAndOrs) {
  Rec a("a", &log_, kClearYoung), b("b", &log_, kClearYoung), c("c", &log_, kClearYoung);
  c.young = 1;  // the first one called answers true: the others are still called
  for (Rec* r : {&a, &b, &c}) ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  EXPECT_EQ(log_.take(), (Entries{"c:clear_young", "b:clear_young", "a:clear_young"}));
  c.young = 0;
  a.young = 7;  // any non-zero answer counts as young
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  a.young = 0;
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  for (Rec* r : {&a, &b, &c}) umn_notifier_unregister(&r->c, mm_);
}

// clear_flush_young likewise: everyone, ORed.
TEST_F(ClassicConformance, I15_ClearFlushYoungCallsEveryoneAndOrs) {
  Rec a("a", &log_, kClearFlushYoung), b("b", &log_, kClearFlushYoung);
  b.young = 1;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 1);
  EXPECT_EQ(log_.take(), (Entries{"b:clear_flush_young", "a:clear_flush_young"}));
  b.young = 0;
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 0);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
}

// With no notifier that has the op (no subscriptions at all, interval notifiers only, or classic ones
// without young ops), all three answer false and call nothing.
TEST_F(ClassicConformance, I15_NoYoungSubscriberAnswersFalseWithoutCalls) {
  Ival ival("i", &log_);
  Rec r("r", &log_, kRange | kRelease);
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 0);
    EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
    EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 0);
    EXPECT_EQ(log_.take(), Entries{});
    if (round == 0) { ASSERT_EQ(ival.insert(mm_, 0, 0x10000), 0); }
    if (round == 1) { ASSERT_EQ(umn_notifier_register(&r.c, mm_), 0); }
  }
  umn_notifier_unregister(&r.c, mm_);
  umn_interval_notifier_remove(&ival.n);
}

// ================================ I-16 / I-17: release (teardown) ================================

// Every interval notifier gets exactly one RELEASE invalidation, blockable, over [0, UINT64_MAX) (the
// kernel's [0, ULONG_MAX)), both passes for a two-pass one, even when hlist subscribers exist too (the
// 2019 draft's double itree release). A second release does nothing.
TEST_F(ClassicConformance, I16_EachIntervalGetsExactlyOneReleaseInvalidation) {
  Ival one("one", &log_), two("two", &log_, /*two_pass=*/true);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  ASSERT_EQ(two.insert(mm_, 0x7f0000000000, 0x1000), 0);
  Rec a("a", &log_, kRelease | kRange), b("b", &log_, kRelease);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&b.c, mm_), 0);
  umn_notifier_release(mm_);
  umn_notifier_release(mm_);
  EXPECT_EQ(one.calls, 1);
  EXPECT_EQ(two.calls, 1);
  EXPECT_EQ(two.finishes, 1);
  EXPECT_EQ(a.releases, 1);
  EXPECT_EQ(b.releases, 1);
  EXPECT_EQ(a.starts, 0) << "release is not an invalidate_range_start of the hlist";
  for (Ival* i : {&one, &two}) {
    const umn_notifier_range r = i->last_range();
    EXPECT_EQ(r.event, UMN_NOTIFY_RELEASE);
    EXPECT_TRUE(umn_notifier_range_blockable(&r));
    EXPECT_EQ(r.start, 0u);
    EXPECT_EQ(r.end, UINT64_MAX);
    EXPECT_EQ(r.mm, mm_);
    EXPECT_EQ(i->last_seq() & 1, 1u) << "cur_seq is odd";
  }
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&b.c, mm_);
  umn_interval_notifier_remove(&one.n);
  umn_interval_notifier_remove(&two.n);
}

// Each hlist ->release runs (once, with the address space) before release returns, and the hlist is
// empty afterwards: no walk calls the old subscribers, and their later unregister calls no ->release.
TEST_F(ClassicConformance, I16_HlistReleasesRunBeforeReturnAndLeaveTheListEmpty) {
  const unsigned which = kRelease | kRange | kClearFlushYoung | kClearYoung | kTestYoung;
  Rec a("a", &log_, which), b("b", &log_, which), x("x", &log_, kArch | kRelease);
  for (Rec* r : {&a, &b, &x}) {
    r->young = 1;
    ASSERT_EQ(umn_notifier_register(&r->c, mm_), 0);
  }
  umn_notifier_release(mm_);
  EXPECT_EQ(log_.take(), (Entries{"x:release", "b:release", "a:release"}));
  invalidate_range();
  EXPECT_EQ(umn_notifier_clear_flush_young(mm_, 0, 0x1000), 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  EXPECT_EQ(umn_notifier_test_young(mm_, 0x1000), 0);
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0, 0x1000);
  EXPECT_EQ(log_.take(), Entries{}) << "the hlist is empty after release";
  for (Rec* r : {&a, &b, &x}) umn_notifier_unregister(&r->c, mm_);
  EXPECT_EQ(log_.take(), Entries{}) << "unregister after teardown calls no second ->release";
  EXPECT_EQ(a.c.users, 1u) << "release does not change users";
}

// The itree RELEASE pass (both passes) runs before any hlist ->release.
TEST_F(ClassicConformance, I17_ItreeReleasePassRunsBeforeHlistRelease) {
  Ival one("one", &log_), two("two", &log_, /*two_pass=*/true);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  ASSERT_EQ(two.insert(mm_, 0x3000, 0x1000), 0);
  Rec a("a", &log_, kRelease);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "two:invalidate_start", "two:finish", "a:release"}));
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
  umn_interval_notifier_remove(&two.n);
}

// Teardown does not remove interval notifiers: they stay in the tree (later invalidations still reach
// them, read_begin works and does not wait), and the driver's remove is still required and works.
TEST_F(ClassicConformance, I17_IntervalsStayInTheTreeAfterRelease) {
  Ival one("one", &log_);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(one.calls, 1);
  const unsigned long seq = umn_interval_read_begin(&one.n);
  invalidate_range(0x1800, 0x1900);
  EXPECT_EQ(one.calls, 2);
  EXPECT_TRUE(umn_interval_read_retry(&one.n, seq));
  umn_interval_notifier_remove(&one.n);
}

// ================================ concurrent release ================================

// A release that finds a teardown in progress (blocked in a hlist ->release) waits until that teardown
// has finished, and does not run it twice: when it returns, every ->release has run and the list is
// empty, as after the first.
TEST_F(ClassicConformance, ConcurrentReleaseWaitsForTheFirstTeardownDuringHlistRelease) {
  Blocker blocker;
  Rec a("a", &log_, kRelease | kClearYoung);
  a.young = 1;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&blocker.node.sub, mm_), 0);  // called first
  AsyncCall first([&] { umn_notifier_release(mm_); });
  ASSERT_TRUE(blocker.gate.await_entered());
  AsyncCall second([&] { umn_notifier_release(mm_); });
  EXPECT_TRUE(second.stays_blocked()) << "a second release returned while the first was tearing down";
  blocker.gate.open();
  ASSERT_TRUE(second.finishes());
  EXPECT_EQ(a.releases, 1);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0) << "list empty once any release returned";
  ASSERT_TRUE(first.finishes());
  EXPECT_EQ(blocker.releases, 1);
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&blocker.node.sub, mm_);
}

// Likewise while the first teardown is still in its itree RELEASE pass.
TEST_F(ClassicConformance, ConcurrentReleaseWaitsForTheFirstTeardownDuringItreePass) {
  Latch gate;
  Ival one("one", &log_);
  one.gate = &gate;
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  Rec a("a", &log_, kRelease);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  AsyncCall first([&] { umn_notifier_release(mm_); });
  ASSERT_TRUE(gate.await_entered());
  AsyncCall second([&] { umn_notifier_release(mm_); });
  EXPECT_TRUE(second.stays_blocked()) << "a second release returned while the first was tearing down";
  EXPECT_EQ(a.releases, 0);
  one.gate = nullptr;
  gate.open();
  ASSERT_TRUE(second.finishes());
  EXPECT_EQ(a.releases, 1);
  EXPECT_EQ(one.calls, 1);
  ASSERT_TRUE(first.finishes());
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
}

// A release from a callback of its own teardown (classic ->release or an interval's RELEASE) would wait
// for itself: umn.h forbids it; umn diagnoses it and returns, and the teardown completes.
TEST_F(ClassicConformance, ReleaseFromItsOwnTeardownIsDiagnosedNotADeadlock) {
  Diags diags;
  static umn_mm* s_mm;
  s_mm = mm_;
  BareNotifier n;
  n.ops.release = [](umn_notifier*, umn_mm*) { umn_notifier_release(s_mm); };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  Ival one("one", &log_);
  one.ops.invalidate = [](umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
    umn_notifier_release(s_mm);
    return Ival::on_invalidate(sub, range, cur_seq);
  };
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  umn_notifier_release(mm_);
  EXPECT_EQ(diags.count("own teardown"), 2u);
  EXPECT_EQ(one.calls, 1);
  umn_notifier_unregister(&n.sub, mm_);
  umn_interval_notifier_remove(&one.n);
}

// umn_mm_destroy during a teardown in progress also waits for it (it calls umn_notifier_release).
TEST(ClassicConformanceTeardown, DestroyDuringTeardownWaitsForIt) {
  Diags diags;  // destroy WARNs about the registration still held
  umn_mm* mm = umn_mm_create();
  Blocker blocker;
  ASSERT_EQ(umn_notifier_register(&blocker.node.sub, mm), 0);
  AsyncCall first([&] { umn_notifier_release(mm); });
  ASSERT_TRUE(blocker.gate.await_entered());
  AsyncCall destroy([&] { umn_mm_destroy(mm); });
  EXPECT_TRUE(destroy.stays_blocked()) << "destroy returned while the teardown was running";
  blocker.gate.open();
  ASSERT_TRUE(destroy.finishes());
  ASSERT_TRUE(first.finishes());
  EXPECT_EQ(blocker.releases, 1);
  umn_notifier_unregister(&blocker.node.sub, mm);  // the last reference: frees the address space
}

// ================================ I-18: unregister ================================

// Once unregister has returned, no op of the notifier is running: it waits for a callback in flight on
// another thread, and no walk calls the notifier afterwards.
TEST_F(ClassicConformance, I18_UnregisterWaitsForARunningCallback) {
  Latch gate;
  BareNotifier n;
  static Latch* s_gate;
  static std::atomic<int> s_calls;
  s_gate = &gate;
  s_calls = 0;
  n.ops.clear_young = [](umn_notifier*, umn_mm*, uint64_t, uint64_t) {
    s_calls++;
    if (s_gate != nullptr) s_gate->wait();
    return 1;
  };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  AsyncCall walker([&] { umn_notifier_clear_young(mm_, 0, 0x1000); });
  ASSERT_TRUE(gate.await_entered());
  AsyncCall unregister([&] { umn_notifier_unregister(&n.sub, mm_); });
  EXPECT_TRUE(unregister.stays_blocked()) << "unregister returned while a callback was running";
  gate.open();
  ASSERT_TRUE(unregister.finishes());
  ASSERT_TRUE(walker.finishes());
  s_gate = nullptr;
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  EXPECT_EQ(s_calls, 1);
}

// Unregister also waits for a ->release that a concurrent teardown is running on the notifier (the
// kernel's synchronize_srcu after the unlink), and does not call ->release a second time.
TEST_F(ClassicConformance, I18_UnregisterWaitsForAReleaseRunByTeardown) {
  Blocker blocker;
  ASSERT_EQ(umn_notifier_register(&blocker.node.sub, mm_), 0);
  AsyncCall teardown([&] { umn_notifier_release(mm_); });
  ASSERT_TRUE(blocker.gate.await_entered());
  AsyncCall unregister([&] { umn_notifier_unregister(&blocker.node.sub, mm_); });
  EXPECT_TRUE(unregister.stays_blocked()) << "unregister returned while ->release was running";
  blocker.gate.open();
  ASSERT_TRUE(unregister.finishes());
  ASSERT_TRUE(teardown.finishes());
  EXPECT_EQ(blocker.releases, 1);
}

// Teardown waits for a ->release started by a concurrent unregister (spec 3.5 step 3): pages are not
// freed under a release still running.
TEST_F(ClassicConformance, I18_TeardownWaitsForAReleaseRunByUnregister) {
  Blocker blocker;
  ASSERT_EQ(umn_notifier_register(&blocker.node.sub, mm_), 0);
  AsyncCall unregister([&] { umn_notifier_unregister(&blocker.node.sub, mm_); });
  ASSERT_TRUE(blocker.gate.await_entered());
  AsyncCall teardown([&] { umn_notifier_release(mm_); });
  EXPECT_TRUE(teardown.stays_blocked()) << "teardown returned while unregister's ->release was running";
  blocker.gate.open();
  ASSERT_TRUE(teardown.finishes());
  ASSERT_TRUE(unregister.finishes());
  EXPECT_EQ(blocker.releases, 1) << "umn calls ->release at most once per registration";
}

// unregister calls ->release itself (once) when teardown has not, and never calls free_notifier, even
// when the ops have one: the caller owns the memory.
TEST_F(ClassicConformance, I18_UnregisterCallsReleaseOnceAndNeverFreeNotifier) {
  Gotten plain;
  plain.counters = &g_get;
  plain.c.ops = &kGetOps;
  ASSERT_EQ(umn_notifier_register(&plain.c, mm_), 0);
  EXPECT_EQ(plain.c.users, 1u);
  umn_notifier_unregister(&plain.c, mm_);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.releases, 1);
  EXPECT_EQ(g_get.frees, 0);
  EXPECT_EQ(g_get.allocs, 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 0);
  // After unregister the memory may be registered again.
  ASSERT_EQ(umn_notifier_register(&plain.c, mm_), 0);
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  umn_notifier_unregister(&plain.c, mm_);
  EXPECT_EQ(g_get.releases, 2);
}

// ================================ I-19: get / put ================================

// get with the same ops pointer returns the same object and increments users; the ops pointer (not the
// callbacks) is the key; the last put frees exactly once, and after synchronize every such free ran.
TEST_F(ClassicConformance, I19_GetWithSameOpsReturnsSameObjectAndCountsUsers) {
  umn_notifier* first = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(first));
  EXPECT_EQ(first->users, 1u);
  EXPECT_EQ(first->mm, mm_);
  EXPECT_EQ(first->ops, &kGetOps);
  umn_notifier* again = umn_notifier_get(&kGetOps, mm_);
  EXPECT_EQ(again, first);
  EXPECT_EQ(first->users, 2u);
  umn_notifier* other = umn_notifier_get(&kGetOtherOps, mm_);  // same callbacks, other key
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(other));
  EXPECT_NE(other, first);
  EXPECT_EQ(g_get.allocs, 1);
  EXPECT_EQ(g_get_other.allocs, 1);
  umn_notifier_put(again);
  EXPECT_EQ(first->users, 1u);
  umn_notifier_put(first);
  umn_notifier_put(other);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.frees, 1);
  EXPECT_EQ(g_get_other.frees, 1);
  EXPECT_NE(g_free_thread.load(), std::this_thread::get_id()) << "free_notifier runs from the RCU callback";
  EXPECT_EQ(g_get.releases, 0) << "put never calls ->release";
  // After the last put, a get allocates a new registration.
  umn_notifier* fresh = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(fresh));
  EXPECT_EQ(g_get.allocs, 2);
  umn_notifier_put(fresh);
}

// I-19, get at UINT_MAX users is EOVERFLOW with users unchanged: Registration.GetAtUintMaxIsEoverflow
// (tests/unit/classic/registration_test.cc).

// The free after the last put waits for the hlist walkers active at that time: a walker inside the
// notifier's callback delays free_notifier (and synchronize) until it leaves.
TEST_F(ClassicConformance, I19_LastPutFreesOnlyAfterWalkersLeave) {
  Latch gate;
  umn_notifier* sub = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  gotten(sub).young_gate = &gate;
  AsyncCall walker([&] { umn_notifier_clear_young(mm_, 0, 0x1000); });
  ASSERT_TRUE(gate.await_entered());
  umn_notifier_put(sub);  // does not wait
  AsyncCall sync([] { umn_notifier_synchronize(); });
  EXPECT_TRUE(sync.stays_blocked()) << "synchronize returned while a walker was inside the notifier";
  EXPECT_EQ(g_get.frees, 0) << "freed under a running callback";
  gate.open();
  ASSERT_TRUE(sync.finishes());
  EXPECT_EQ(g_get.frees, 1);
  ASSERT_TRUE(walker.finishes());
}

// A put at users == 0 WARNs and changes nothing (no second free).
TEST_F(ClassicConformance, I19_PutAtZeroUsersWarnsAndChangesNothing) {
  Diags diags;
  umn_notifier* sub = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  gotten(sub).keep_memory = true;
  umn_notifier_put(sub);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.frees, 1);
  EXPECT_EQ(diags.count(), 0u);
  umn_notifier_put(sub);
  umn_notifier_synchronize();
  EXPECT_EQ(diags.count("0 users"), 1u);
  EXPECT_EQ(g_get.frees, 1);
  EXPECT_EQ(sub->users, 0u);
  delete &gotten(sub);
}

// After release, get fails with EINVAL without calling alloc_notifier, for a new key and for the key
// of a registration made before the teardown (which is not handed out again); teardown leaves users
// alone, and the earlier registration still needs (and accepts) its put.
TEST_F(ClassicConformance, I19_GetAfterReleaseIsEinval) {
  umn_notifier* before = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(before));
  umn_notifier_release(mm_);
  EXPECT_EQ(g_get.releases, 1);
  EXPECT_EQ(before->users, 1u);
  for (const umn_notifier_ops* ops : {&kGetOps, &kGetOtherOps}) {
    EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(ops, mm_)), -EINVAL);
  }
  EXPECT_EQ(before->users, 1u);
  EXPECT_EQ(g_get.allocs + g_get_other.allocs, 1);
  umn_notifier_put(before);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.frees, 1);
}

// A get while a teardown is in progress fails like one after it (EINVAL, no alloc_notifier): it must
// not hand out a registration whose ->release has run or is about to run.
TEST_F(ClassicConformance, I19_GetDuringTeardownIsEinval) {
  umn_notifier* before = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(before));
  Blocker blocker;
  ASSERT_EQ(umn_notifier_register(&blocker.node.sub, mm_), 0);  // newest: its ->release runs first
  AsyncCall teardown([&] { umn_notifier_release(mm_); });
  ASSERT_TRUE(blocker.gate.await_entered());
  for (const umn_notifier_ops* ops : {&kGetOps, &kGetOtherOps}) {
    EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(ops, mm_)), -EINVAL);
  }
  EXPECT_EQ(before->users, 1u);
  EXPECT_EQ(g_get_other.allocs, 0);
  blocker.gate.open();
  ASSERT_TRUE(teardown.finishes());
  EXPECT_EQ(g_get.releases, 1);
  umn_notifier_unregister(&blocker.node.sub, mm_);
  umn_notifier_put(before);
}

// put may be called from ->release (the last put there frees after the teardown).
TEST_F(ClassicConformance, I19_PutFromReleaseIsAllowed) {
  Diags diags;
  umn_notifier* sub = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  gotten(sub).put_in_release = true;
  umn_notifier_release(mm_);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.releases, 1);
  EXPECT_EQ(g_get.frees, 1);
  EXPECT_EQ(diags.count(), 0u);
}

// Concurrent first gets of one key allocate once and share the object.
TEST_F(ClassicConformance, I19_ConcurrentFirstGetsAllocateOnce) {
  Latch gate;
  g_alloc_gate = &gate;
  umn_notifier* got[2] = {nullptr, nullptr};
  {
    AsyncCall one([&] { got[0] = umn_notifier_get(&kGetOps, mm_); });
    ASSERT_TRUE(gate.await_entered());  // the first get is inside alloc_notifier
    AsyncCall two([&] { got[1] = umn_notifier_get(&kGetOps, mm_); });
    EXPECT_TRUE(two.stays_blocked(std::chrono::milliseconds(20)));
    g_alloc_gate = nullptr;
    gate.open();
    ASSERT_TRUE(one.finishes());
    ASSERT_TRUE(two.finishes());
  }
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got[0]));
  EXPECT_EQ(got[0], got[1]);
  EXPECT_EQ(got[0]->users, 2u);
  EXPECT_EQ(g_get.allocs, 1);
  umn_notifier_put(got[0]);
  umn_notifier_put(got[1]);
}

// I-19, get never returns a notifier registered with umn_notifier_register: Registration.GetIgnoresPlainRegistrations
// (tests/unit/classic/registration_test.cc).

// get's errors: ops without alloc_notifier / free_notifier -> EINVAL (WARNed); alloc_notifier returning
// NULL -> ENOMEM; a registration that fails after alloc (here: I-20's arch + start) gives the fresh
// notifier back to free_notifier synchronously, before get returns.
TEST_F(ClassicConformance, I19_GetErrorsAndSynchronousFreeOfAFailedRegistration) {
  Diags diags;
  static const umn_notifier_ops no_free = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                           [](umn_mm*) { return gotten_alloc(g_get); }, nullptr};
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&no_free, mm_)), -EINVAL);
  EXPECT_EQ(g_get.allocs, 0);
  static const umn_notifier_ops null_alloc = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                              [](umn_mm*) -> umn_notifier* { return nullptr; }, &gotten_free};
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&null_alloc, mm_)), -ENOMEM);
  static const umn_notifier_ops mixed = {
      nullptr, nullptr, nullptr, nullptr, [](umn_notifier*, const umn_notifier_range*) { return 0; }, nullptr,
      [](umn_notifier*, umn_mm*, uint64_t, uint64_t) {}, [](umn_mm*) { return gotten_alloc(g_get); },
      &gotten_free};
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&mixed, mm_)), -EINVAL);
  EXPECT_EQ(g_get.allocs, 1);
  EXPECT_EQ(g_get.frees, 1) << "the failed registration is freed before get returns";
  EXPECT_GE(diags.count(), 2u);
}

// ================================ I-20: arch_invalidate_secondary_tlbs exclusivity ================================

// Registration of ops with arch_invalidate_secondary_tlbs and invalidate_range_start or _end is rejected
// with -EINVAL (WARNed) and leaves nothing registered; arch alone, or start/end alone, is accepted.
TEST_F(ClassicConformance, I20_ArchWithStartOrEndIsRejected) {
  Diags diags;
  Rec with_start("s", &log_, kArch | kStart), with_end("e", &log_, kArch | kEnd);
  Rec arch_only("a", &log_, kArch | kRelease), range_only("r", &log_, kRange);
  EXPECT_EQ(umn_notifier_register(&with_start.c, mm_), -EINVAL);
  EXPECT_EQ(umn_notifier_register(&with_end.c, mm_), -EINVAL);
  EXPECT_EQ(diags.count("arch_invalidate_secondary_tlbs"), 2u);
  ASSERT_EQ(umn_notifier_register(&arch_only.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&range_only.c, mm_), 0);
  invalidate_range();
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0, 0x1000);
  EXPECT_EQ(log_.take(), (Entries{"r:start", "r:end", "a:arch"}));
  umn_notifier_unregister(&arch_only.c, mm_);
  umn_notifier_unregister(&range_only.c, mm_);
  EXPECT_EQ(with_start.releases + with_end.releases, 0);
}

// ================================ I-22: subscriptions created by register ================================

// The first register creates the subscriptions with seq 2: an interval inserted afterwards while idle
// gets seq 1 (= 2 - 1), and the first invalidation that hits it passes cur_seq 3.
TEST_F(ClassicConformance, I22_FirstRegisterCreatesSubscriptionsWithSeqTwo) {
  Rec a("a", &log_, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  Ival one("one", &log_);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  EXPECT_EQ(umn_interval_read_begin(&one.n), 1u);
  invalidate_range();
  EXPECT_EQ(one.last_seq(), 3u);
  EXPECT_EQ(umn_interval_read_begin(&one.n), 3u);
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
}

// ================================ 3.1 - 3.4: dispatch ================================

// The blockable start sets UMN_NOTIFIER_RANGE_BLOCKABLE and _nonblock clears it, whatever the caller
// put in flags (callers never set it themselves); the classic callbacks get the caller's range object.
TEST_F(ClassicConformance, S3_4_StartWrappersOwnTheBlockableBit) {
  static const umn_notifier_range* s_seen;
  BareNotifier n;
  n.ops.invalidate_range_start = [](umn_notifier*, const umn_notifier_range* r) {
    s_seen = r;
    return 0;
  };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_PROTECTION_VMA, 0, mm_, 0x1000, 0x2000);
  umn_notifier_invalidate_range_start(&range);
  EXPECT_EQ(s_seen, &range);
  EXPECT_TRUE(umn_notifier_range_blockable(&range));
  EXPECT_EQ(range.event, UMN_NOTIFY_PROTECTION_VMA);
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, UMN_NOTIFIER_RANGE_BLOCKABLE, mm_, 0x1000, 0x2000);
  ASSERT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), 0);
  EXPECT_FALSE(umn_notifier_range_blockable(&range));
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_unregister(&n.sub, mm_);
}

// Start: the interval tree (both passes) first, then the hlist starts. End: the hlist ends after the
// interval-tree end. A successful _nonblock start is paired with the caller's range_end like a blockable
// one; nested pairs each get their own start and end.
TEST_F(ClassicConformance, S3_1_ItreeBeforeHlistAndEachStartPairedWithOneEnd) {
  Ival one("one", &log_), two("two", &log_, /*two_pass=*/true);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  ASSERT_EQ(two.insert(mm_, 0x1800, 0x1000), 0);
  Rec a("a", &log_, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  invalidate_range(0x1000, 0x3000);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "two:invalidate_start", "two:finish", "a:start", "a:end"}));
  umn_notifier_range outer, inner;
  ASSERT_EQ(start_nonblock(&outer, 0x1000, 0x1100), 0);
  ASSERT_EQ(start_nonblock(&inner, 0x1100, 0x1200), 0);
  umn_notifier_invalidate_range_end(&inner);
  umn_notifier_invalidate_range_end(&outer);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "a:start", "one:invalidate", "a:start", "a:end", "a:end"}));
  EXPECT_EQ(one.last_seq() & 1, 1u);
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
  umn_interval_notifier_remove(&two.n);
}

// An -EAGAIN of the interval-tree part returns at once: the hlist is not called at all (no start, no
// end), and the caller calls no range_end.
TEST_F(ClassicConformance, S3_1_ItreeEagainSkipsTheHlist) {
  Ival one("one", &log_);
  one.fail_nonblock = true;
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  Rec a("a", &log_, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  EXPECT_EQ(start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate"}));
  invalidate_range();  // the address space is not left invalidating
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "a:start", "a:end"}));
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
}

// An -EAGAIN of the hlist part after the interval tree succeeded: the kernel leaks the interval-tree
// half (active stays raised, the seq may stay odd: spec 3.2 "Asymmetry", 6.1(6)); umn undoes it, as the
// spec asks of the port and umn.h documents ("the address space is already back to not-invalidating").
// So read_begin of the invalidated interval returns, and an insert is not deferred.
TEST_F(ClassicConformance, S3_2_HlistEagainUndoesTheItreeHalf) {
  Ival one("one", &log_);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  Rec a("a", &log_, kStart);
  a.start_result = -EAGAIN;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  EXPECT_EQ(start_nonblock(&range), -EAGAIN);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "a:start"}));
  AsyncCall reader([&] { umn_interval_read_begin(&one.n); });
  EXPECT_TRUE(reader.finishes(std::chrono::seconds(5))) << "the epoch of the failed start was left open";
  Ival late("late", &log_);
  ASSERT_EQ(late.insert(mm_, 0x1000, 0x1000), 0);
  a.start_result = 0;
  invalidate_range();
  EXPECT_EQ(late.calls, 1) << "an insert after the failed start was deferred: the tree stayed frozen";
  umn_notifier_unregister(&a.c, mm_);
  umn_interval_notifier_remove(&one.n);
  umn_interval_notifier_remove(&late.n);
}

// range_end ends the interval-tree epoch (waking readers) before the hlist ends run (spec 3.3): a
// reader waiting in read_begin has returned by the time a classic invalidate_range_end runs.
TEST_F(ClassicConformance, S3_3_ItreeEpochEndsBeforeHlistEnds) {
  Ival one("one", &log_);
  ASSERT_EQ(one.insert(mm_, 0x1000, 0x1000), 0);
  static std::mutex s_mu;
  static std::condition_variable s_cv;
  static bool s_reader_done;
  static bool s_seen_done_in_end;
  s_reader_done = false;
  s_seen_done_in_end = false;
  BareNotifier n;
  n.ops.invalidate_range_end = [](umn_notifier*, const umn_notifier_range*) {
    std::unique_lock held(s_mu);
    s_seen_done_in_end = s_cv.wait_for(held, std::chrono::seconds(3), [] { return s_reader_done; });
  };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0x1000, 0x2000);
  umn_notifier_invalidate_range_start(&range);  // one's seq is now the open epoch's
  AsyncCall reader([&] {
    umn_interval_read_begin(&one.n);  // waits for the epoch to end
    std::lock_guard guard(s_mu);
    s_reader_done = true;
    s_cv.notify_all();
  });
  umn_notifier_invalidate_range_end(&range);
  EXPECT_TRUE(s_seen_done_in_end) << "the hlist end ran while the interval-tree epoch was still open";
  ASSERT_TRUE(reader.finishes());
  umn_notifier_unregister(&n.sub, mm_);
  umn_interval_notifier_remove(&one.n);
}

// ================================ 3.6: other callbacks ================================

// arch_invalidate_secondary_tlbs calls every notifier that has it with (sub, mm, start, end); since 6.6
// it is not called from range start/end, release or the young queries.
TEST_F(ClassicConformance, S3_6_ArchInvalidateSecondaryTlbsCallsEveryHolderOnlyWhenAsked) {
  static std::atomic<int> s_calls;
  static umn_notifier* s_sub;
  static umn_mm* s_mm;
  static uint64_t s_start, s_end;
  s_calls = 0;
  BareNotifier n;
  n.ops.arch_invalidate_secondary_tlbs = [](umn_notifier* sub, umn_mm* mm, uint64_t start, uint64_t end) {
    s_calls++;
    s_sub = sub;
    s_mm = mm;
    s_start = start;
    s_end = end;
  };
  n.ops.clear_young = [](umn_notifier*, umn_mm*, uint64_t, uint64_t) { return 1; };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  invalidate_range();
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  EXPECT_EQ(s_calls, 0);
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0x4000, 0x6000);
  EXPECT_EQ(s_calls, 1);
  EXPECT_EQ(s_sub, &n.sub);
  EXPECT_EQ(s_mm, mm_);
  EXPECT_EQ(s_start, 0x4000u);
  EXPECT_EQ(s_end, 0x6000u);
  umn_notifier_release(mm_);
  EXPECT_EQ(s_calls, 1);
  umn_notifier_unregister(&n.sub, mm_);
}

// The young callbacks get (sub, mm, start, end) / (sub, mm, address) unchanged.
TEST_F(ClassicConformance, S3_6_YoungCallbacksGetTheirArguments) {
  static umn_notifier* s_sub;
  static umn_mm* s_mm;
  static uint64_t s_a, s_b;
  BareNotifier n;
  n.ops.clear_flush_young = [](umn_notifier* sub, umn_mm* mm, uint64_t start, uint64_t end) {
    s_sub = sub, s_mm = mm, s_a = start, s_b = end;
    return 0;
  };
  n.ops.test_young = [](umn_notifier* sub, umn_mm* mm, uint64_t address) {
    s_sub = sub, s_mm = mm, s_a = address, s_b = 0;
    return 0;
  };
  ASSERT_EQ(umn_notifier_register(&n.sub, mm_), 0);
  umn_notifier_clear_flush_young(mm_, 0x5000, 0x9000);
  EXPECT_EQ(s_sub, &n.sub);
  EXPECT_EQ(s_mm, mm_);
  EXPECT_EQ(s_a, 0x5000u);
  EXPECT_EQ(s_b, 0x9000u);
  umn_notifier_test_young(mm_, 0x7123);
  EXPECT_EQ(s_a, 0x7123u);
  umn_notifier_unregister(&n.sub, mm_);
}

// ================================ 4.1 - 4.3: registration details ================================

// register sets mm and users = 1 and takes effect for invalidations started after it; registering a
// notifier that is already registered is -EINVAL (WARNed) and leaves one registration; bad arguments
// are -EINVAL.
TEST_F(ClassicConformance, S4_1_RegisterSetsMmAndUsersAndRejectsDoubleRegistration) {
  Diags diags;
  Rec a("a", &log_, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  EXPECT_EQ(a.c.mm, mm_);
  EXPECT_EQ(a.c.users, 1u);
  EXPECT_EQ(umn_notifier_register(&a.c, mm_), -EINVAL);
  umn_mm* other = umn_mm_create();
  EXPECT_EQ(umn_notifier_register(&a.c, other), -EINVAL);
  EXPECT_EQ(diags.count("already registered"), 2u);
  invalidate_range();
  EXPECT_EQ(log_.take(), (Entries{"a:start", "a:end"}));
  EXPECT_EQ(umn_notifier_register(nullptr, mm_), -EINVAL);
  BareNotifier no_ops;
  no_ops.sub.ops = nullptr;
  EXPECT_EQ(umn_notifier_register(&no_ops.sub, mm_), -EINVAL);
  umn_notifier_unregister(&a.c, mm_);
  umn_mm_destroy(other);
}

// Register waits until no invalidation of the address space is in flight (the kernel's
// mm_take_all_locks): a notifier never gets an end without its start, and every invalidation that
// started before register has ended when it returns.
TEST_F(ClassicConformance, S4_1_RegisterWaitsForInFlightRanges) {
  Rec a("a", &log_, kRange), late("late", &log_, kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0x1000, 0x2000);
  umn_notifier_invalidate_range_start(&range);
  AsyncCall reg([&] { ASSERT_EQ(umn_notifier_register(&late.c, mm_), 0); });
  EXPECT_TRUE(reg.stays_blocked()) << "register returned while a range was in flight";
  umn_notifier_invalidate_range_end(&range);
  ASSERT_TRUE(reg.finishes());
  EXPECT_EQ(log_.take(), (Entries{"a:start", "a:end"}));
  invalidate_range();
  EXPECT_EQ(log_.take(), (Entries{"late:start", "a:start", "late:end", "a:end"}));
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&late.c, mm_);
}

// Also when the range started before the address space had any subscription (the first register creates
// them): register waits for it, and the new notifier gets no end.
TEST_F(ClassicConformance, S4_1_FirstRegisterWaitsForARangeStartedBeforeAnySubscription) {
  Rec late("late", &log_, kRange);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0x1000, 0x2000);
  umn_notifier_invalidate_range_start(&range);
  AsyncCall reg([&] { ASSERT_EQ(umn_notifier_register(&late.c, mm_), 0); });
  EXPECT_TRUE(reg.stays_blocked()) << "register returned while a range was in flight";
  umn_notifier_invalidate_range_end(&range);
  ASSERT_TRUE(reg.finishes());
  EXPECT_EQ(log_.take(), Entries{});
  umn_notifier_unregister(&late.c, mm_);
}

// From a classic callback, register (-EDEADLK), get (NULL, EDEADLK), unregister (refused: the notifier
// stays registered) and synchronize may wait for the walk running the callback: diagnosed and refused
// (umn.h). put is allowed from any callback.
TEST_F(ClassicConformance, S4_CallsThatWaitAreRefusedFromCallbacksButPutIsAllowed) {
  Diags diags;
  static umn_mm* s_mm;
  static int s_register;
  static umn_notifier* s_got;
  static umn_notifier* s_to_put;
  s_mm = mm_;
  s_to_put = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(s_to_put));
  BareNotifier self;
  self.ops.invalidate_range_start = [](umn_notifier* sub, const umn_notifier_range*) {
    Rec inner("inner", nullptr, kRange);
    s_register = umn_notifier_register(&inner.c, s_mm);
    s_got = umn_notifier_get(&kGetOtherOps, s_mm);
    umn_notifier_unregister(sub, s_mm);
    umn_notifier_synchronize();
    if (s_to_put != nullptr) umn_notifier_put(std::exchange(s_to_put, nullptr));
    return 0;
  };
  ASSERT_EQ(umn_notifier_register(&self.sub, mm_), 0);
  invalidate_range();
  EXPECT_EQ(s_register, -EDEADLK);
  EXPECT_EQ(UMN_PTR_ERR(s_got), -EDEADLK);
  EXPECT_EQ(diags.count(), 4u);
  EXPECT_EQ(s_to_put, nullptr);
  EXPECT_EQ(g_get_other.allocs, 0);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.frees, 1) << "the put from the callback was the last one";
  umn_notifier_unregister(&self.sub, mm_);  // the callback's unregister was refused
  EXPECT_EQ(diags.count(), 4u);
}

// ================================ bad ranges ================================

// range_start / young / arch with start >= end: a WARN (never an abort), -EINVAL where there is a return
// value, no callback, range_end on such a range is a no-op, and the address space stays usable.
TEST_F(ClassicConformance, RangesWithStartNotBelowEndAreDiagnosedAndRejected) {
  Diags diags;
  Ival one("one", &log_);
  ASSERT_EQ(one.insert(mm_, 0, 0x10000), 0);
  Rec a("a", &log_, kRange | kClearYoung | kClearFlushYoung), x("x", &log_, kArch);
  a.young = 1;
  ASSERT_EQ(umn_notifier_register(&a.c, mm_), 0);
  ASSERT_EQ(umn_notifier_register(&x.c, mm_), 0);
  for (uint64_t start : {uint64_t{0x2000}, uint64_t{0x3000}}) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, start, 0x2000);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, start, 0x2000);
    EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EINVAL);
    EXPECT_EQ(umn_notifier_clear_young(mm_, start, 0x2000), -EINVAL);
    EXPECT_EQ(umn_notifier_clear_flush_young(mm_, start, 0x2000), -EINVAL);
    umn_notifier_arch_invalidate_secondary_tlbs(mm_, start, 0x2000);
  }
  EXPECT_EQ(diags.count("start >= end"), 10u);
  EXPECT_EQ(log_.take(), Entries{});
  // Usable: nothing was left half-started.
  EXPECT_EQ(umn_interval_read_begin(&one.n) & 1, 1u);
  invalidate_range();
  EXPECT_EQ(umn_notifier_clear_young(mm_, 0, 0x1000), 1);
  umn_notifier_arch_invalidate_secondary_tlbs(mm_, 0, 0x1000);
  EXPECT_EQ(log_.take(), (Entries{"one:invalidate", "a:start", "a:end", "a:clear_young", "x:arch"}));
  umn_notifier_unregister(&a.c, mm_);
  umn_notifier_unregister(&x.c, mm_);
  umn_interval_notifier_remove(&one.n);
}

// ================================ umn_mm_destroy with live registrations ================================

// Destroy with classic registrations still held WARNs (umn.h: "each such leftover is diagnosed"), calls
// each ->release once, and the later unregister / put stay valid (they drop the last references).
TEST(ClassicConformanceTeardown, DestroyWithLiveRegistrationsWarnsAndStaysSafe) {
  Diags diags;
  umn_notifier_synchronize();
  const int frees = g_get.frees;
  umn_mm* mm = umn_mm_create();
  Rec a("a", nullptr, kRelease | kRange);
  ASSERT_EQ(umn_notifier_register(&a.c, mm), 0);
  umn_notifier* got = umn_notifier_get(&kGetOps, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  ::testing::internal::CaptureStderr();
  umn_mm_destroy(mm);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "an installed hook is the only report";
  EXPECT_EQ(diags.count("still registered"), 1u);
  EXPECT_EQ(a.releases, 1);
  umn_notifier_unregister(&a.c, mm);
  EXPECT_EQ(a.releases, 1);
  umn_notifier_put(got);
  umn_notifier_synchronize();
  EXPECT_EQ(g_get.frees, frees + 1);
}

// With the default diagnostic hook, in any build (UMN_DEBUG_LEVEL >= 1 aborts on API misuse), a
// destroy with registrations left is a warning: reported on stderr, never an abort. (Bad ranges are
// misuse, base/check.hpp's rule: tests/unit/misuse/check_rule_test.cc.)
TEST(ClassicConformanceDeathTest, DestroyWithRegistrationsWarnsWithoutAborting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        unsetenv("UMN_DIAG");
        umn_set_diagnostic_hook(nullptr, nullptr);
        umn_mm* mm = umn_mm_create();
        Rec a("a", nullptr, kRelease | kRange | kClearYoung);
        if (umn_notifier_register(&a.c, mm) != 0) std::_Exit(2);
        umn_mm_destroy(mm);
        umn_notifier_unregister(&a.c, mm);
        std::_Exit(a.releases == 1 ? 0 : 6);
      },
      ::testing::ExitedWithCode(0),
      UMN_DEBUG_LEVEL >= 1 ? "classic notifier 0x[0-9a-f]+ \\(ops 0x[0-9a-f]+, users 1\\) still registered(.|\n)*warning in umn_mm_destroy"
                           : "warning in umn_mm_destroy");
}

}  // namespace
}  // namespace umn::test::classic_conformance
