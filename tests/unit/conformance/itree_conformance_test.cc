// itree_conformance_test.cc - the interval-notifier side checked against the spec, through the public C
// API only (include/umn/umn.h) on a simulated address space.
//
// Written from the behavioural spec of the kernel subsystem (docs/semantics.md, sections 2, 5
// and 6: invariants I-1..I-13, I-21, I-22, the reader API of 2.6, insert 2.8, remove 2.9, release 2.10,
// the pitfalls of 6.1; and 3.1/3.3 as far as the interval side sees them) and docs/semantics.md §1, not from the
// implementation. Each test is named after the rule it checks. Where docs/semantics.md §1 deliberately differs
// from the kernel, the test follows docs/semantics.md §1 and says so.
//
// How internal state is observed without internals:
//   - the address space's seq: the cur_seq a callback receives (I-3);
//   - a notifier's seq: !umn_interval_check_retry(sub, v) holds exactly when the notifier's seq is v;
//   - "active == 0, seq even, nothing deferred" (I-1): ExpectIdle() inserts a probe and checks it is
//     linked at once, gets seq - 1 and never waits.
// Threads use deterministic handshakes (Gate). "Does not return yet" is a bounded grace wait (kGrace)
// that can only pass wrongly on a slow machine, never fail wrongly; "returns" waits up to kLimit.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/async_call.hpp"
#include "support/diag_capture.hpp"
#include "support/scoped_range.hpp"
#include "umn/umn.h"

namespace {

using umn::test::AsyncCall;
using umn::test::DiagCapture;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTop = UINT64_MAX;
constexpr auto kGrace = std::chrono::milliseconds(30);
constexpr auto kLimit = std::chrono::seconds(10);
// A part of the space no test uses, for ExpectIdle's probe.
constexpr uint64_t kProbeBase = 0x7f0000000000;
constexpr int kProbeId = 9999;

// ------------------------------------------------------------------------------------------------------
// Test doubles

// A one-shot barrier: callbacks arrive and wait until the test opens it.
class Gate {
 public:
  void arrive_and_wait() {
    std::unique_lock guard(mu_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(guard, [this] { return open_; });
  }
  void wait_arrivals(int n) {
    std::unique_lock guard(mu_);
    cv_.wait(guard, [&] { return arrived_ >= n; });
  }
  void open() {
    std::lock_guard guard(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  bool open_ = false;
};

enum class Kind { kInvalidate, kStart, kFinish, kMark };

struct Record {
  Kind kind;
  int id;
  uint64_t start = 0;
  uint64_t end = 0;
  unsigned long cur_seq = 0;
  bool blockable = false;
  umn_notifier_event event = UMN_NOTIFY_UNMAP;
  bool finish_null_on_entry = true;              // kStart: *finish was NULL on entry (I-13)
  umn_interval_notifier* finish_notifier = nullptr;  // kFinish: finish->notifier
  bool finish_is_own_record = true;              // kFinish: the record handed out by this notifier
};

// Every callback, in call order. Guarded by its own mutex: callbacks run on several threads.
class Journal {
 public:
  void add(const Record& record) {
    std::lock_guard guard(mu_);
    records_.push_back(record);
  }
  void mark(int id) { add({Kind::kMark, id}); }
  [[nodiscard]] std::vector<Record> all() const {
    std::lock_guard guard(mu_);
    return records_;
  }
  // Ids of the first-pass calls (invalidate or invalidate_start), in call order.
  [[nodiscard]] std::vector<int> first_passes() const {
    return ids_if([](Kind k) { return k == Kind::kInvalidate || k == Kind::kStart; });
  }
  [[nodiscard]] std::vector<int> finishes() const { return ids_if([](Kind k) { return k == Kind::kFinish; }); }
  // Everything as (kind letter, id): "S1" start, "I1" invalidate, "F1" finish, "M1" mark.
  [[nodiscard]] std::vector<std::string> trace() const {
    std::lock_guard guard(mu_);
    std::vector<std::string> out;
    for (const Record& r : records_)
      out.push_back(std::string(1, "ISFM"[static_cast<int>(r.kind)]) + std::to_string(r.id));
    return out;
  }
  [[nodiscard]] int first_pass_count(int id) const {
    std::lock_guard guard(mu_);
    int n = 0;
    for (const Record& r : records_) n += (r.id == id && (r.kind == Kind::kInvalidate || r.kind == Kind::kStart));
    return n;
  }
  // cur_seq of notifier id's last first pass; 0 if none.
  [[nodiscard]] unsigned long last_seq(int id) const {
    std::lock_guard guard(mu_);
    for (auto it = records_.rbegin(); it != records_.rend(); ++it)
      if (it->id == id && (it->kind == Kind::kInvalidate || it->kind == Kind::kStart)) return it->cur_seq;
    return 0;
  }
  void clear() {
    std::lock_guard guard(mu_);
    records_.clear();
  }

 private:
  template <typename Pred>
  std::vector<int> ids_if(Pred pred) const {
    std::lock_guard guard(mu_);
    std::vector<int> ids;
    for (const Record& r : records_)
      if (pred(r.kind)) ids.push_back(r.id);
    return ids;
  }
  mutable std::mutex mu_;
  std::vector<Record> records_;
};

struct Watch;
// Standard-layout wrappers: a callback gets from the C struct back to its Watch.
struct WatchNode {
  umn_interval_notifier sub;
  Watch* self;
};
struct WatchFinish {
  umn_interval_notifier_finish record;
  Watch* self;
};

// One interval notifier, single- or two-pass, doing what the test asks. Behaviour fields are atomics:
// a test may change them while another thread's invalidation is between callbacks.
struct Watch {
  Watch(Journal* journal_, int id_, bool two_pass_ = false) : journal(journal_), id(id_), two_pass(two_pass_) {
    node.self = this;
    finish.self = this;
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch() {
    if (inserted) umn_interval_notifier_remove(&node.sub);
  }

  int insert(umn_mm* mm, uint64_t start, uint64_t length) {
    const int err = umn_interval_notifier_insert(&node.sub, mm, start, length, ops());
    inserted = err == 0;
    return err;
  }
  void remove() {
    umn_interval_notifier_remove(&node.sub);
    inserted = false;
  }
  umn_interval_notifier* sub() { return &node.sub; }
  unsigned long read_begin() { return umn_interval_read_begin(&node.sub); }
  bool read_retry(unsigned long seq) {
    std::lock_guard guard(user_lock);  // the caller's protocol (5.1): read_retry under the user lock
    return umn_interval_read_retry(&node.sub, seq);
  }
  // True exactly when the notifier's seq is v (check_retry compares without the lock).
  bool seq_is(unsigned long v) { return !umn_interval_check_retry(&node.sub, v); }

  [[nodiscard]] const umn_interval_notifier_ops* ops() const { return two_pass ? &kTwoPass : &kSinglePass; }

  WatchNode node{};
  WatchFinish finish{};
  Journal* journal;
  int id;
  bool two_pass;
  bool inserted = false;
  std::mutex user_lock;
  std::atomic<bool> fail{false};           // first pass returns false
  std::atomic<bool> fail_nonblock{false};  // first pass returns false when the range is not blockable
  std::atomic<bool> hand_finish{true};     // two-pass: hand out the finish record on success
  std::atomic<bool> finish_on_fail{false}; // two-pass: set *finish even when returning false
  std::atomic<bool> call_set_seq{true};
  std::atomic<bool> quiet{false};          // keep out of the journal (long-running loops)
  std::atomic<Gate*> gate{nullptr};        // first pass waits here (after set_seq)
  std::atomic<int> running{0};             // callbacks of this notifier in flight
  std::atomic<int> calls{0};               // callbacks of this notifier so far
  std::function<void()> on_finish;         // run inside invalidate_finish
  std::function<void()> on_first_pass;     // run inside the first pass, after set_seq

 private:
  static Watch* of(umn_interval_notifier* sub) { return reinterpret_cast<WatchNode*>(sub)->self; }

  bool first_pass(const umn_notifier_range* range, unsigned long cur_seq, umn_interval_notifier_finish** out) {
    running++;
    calls++;
    const bool blockable = umn_notifier_range_blockable(range);
    Record record{out != nullptr ? Kind::kStart : Kind::kInvalidate, id, range->start, range->end, cur_seq,
                  blockable, range->event};
    record.finish_null_on_entry = out == nullptr || *out == nullptr;
    if (!quiet) journal->add(record);
    const bool ok = !(fail || (fail_nonblock && !blockable));
    if (ok && call_set_seq) {
      std::lock_guard guard(user_lock);
      umn_interval_set_seq(&node.sub, cur_seq);
    }
    if (on_first_pass) on_first_pass();
    if (out != nullptr && ((ok && hand_finish) || (!ok && finish_on_fail))) {
      finish.record.notifier = nullptr;
      *out = &finish.record;
    }
    if (Gate* g = gate.load()) g->arrive_and_wait();
    running--;
    return ok;
  }
  static bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
    return of(sub)->first_pass(range, cur_seq, nullptr);
  }
  static bool invalidate_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                               umn_interval_notifier_finish** out) {
    return of(sub)->first_pass(range, cur_seq, out);
  }
  static void invalidate_finish(umn_interval_notifier_finish* record) {
    Watch* self = reinterpret_cast<WatchFinish*>(record)->self;
    self->running++;
    Record r{Kind::kFinish, self->id};
    r.finish_notifier = record->notifier;
    r.finish_is_own_record = record == &self->finish.record;
    self->journal->add(r);
    if (self->on_finish) self->on_finish();
    self->running--;
  }
  static constexpr umn_interval_notifier_ops kSinglePass = {&invalidate, nullptr, nullptr};
  static constexpr umn_interval_notifier_ops kTwoPass = {nullptr, &invalidate_start, &invalidate_finish};
};

using Range = umn::test::ScopedRange;

// A blockable invalidation of [start, end), ended at once.
void Hit(umn_mm* mm, uint64_t start, uint64_t end) { Range range(mm, start, end); }

// An invalidation run on its own thread: start, report, wait for the test's word, end.
class RangeThread {
 public:
  RangeThread(umn_mm* mm, uint64_t start, uint64_t end) {
    thread_ = std::thread([this, mm, start, end] {
      Range range(mm, start, end);
      started_.count_down();
      end_.arrive_and_wait();
    });
  }
  ~RangeThread() { end(); }
  void wait_started() { started_.wait(); }
  void end() {
    end_.open();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::latch started_{1};
  Gate end_;
  std::thread thread_;
};

// ------------------------------------------------------------------------------------------------------
// Fixture

class ItreeConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    mm_ = umn_mm_create();
    ASSERT_NE(mm_, nullptr);
  }
  void TearDown() override {
    umn_mm_destroy(mm_);
    EXPECT_EQ(diags_.count(), expected_diags_) << "unexpected diagnostics";
  }

  // I-1 through the API: active == 0, seq even and nothing deferred. A probe inserted now is linked at
  // once (a range calls it), gets seq - 1 (odd, so the address space's seq is even), its read_begin
  // does not wait, and its hit gets cur_seq = its seq + 2. Return: the (even) seq after the probe.
  unsigned long ExpectIdle() {
    Journal journal;
    Watch probe(&journal, kProbeId);
    EXPECT_EQ(probe.insert(mm_, kProbeBase, kPage), 0);
    auto seq = std::make_shared<std::atomic<unsigned long>>(0);
    {
      AsyncCall read([&probe, seq] { seq->store(probe.read_begin()); });
      EXPECT_TRUE(read.finishes(kLimit)) << "read_begin of a notifier inserted while idle waited";
    }
    const unsigned long v = seq->load();
    EXPECT_EQ(v % 2, 1u) << "a notifier's seq is odd";
    Hit(mm_, kProbeBase, kProbeBase + kPage);
    EXPECT_EQ(journal.first_pass_count(kProbeId), 1) << "the probe was not linked at once (deferred?)";
    EXPECT_EQ(journal.last_seq(kProbeId), v + 2) << "the address space's seq was not v + 1 (even)";
    probe.remove();
    return v + 3;
  }

  DiagCapture diags_;
  Journal journal_;
  umn_mm* mm_ = nullptr;
  size_t expected_diags_ = 0;
};

// Runs fn on a thread and expects it to return promptly. Return: whether it did.
bool ReturnsPromptly(std::function<void()> fn) {
  AsyncCall call(std::move(fn));
  return call.finishes(kLimit);
}

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
// I-5  a range [s, e) calls exactly the intervals with start <= e-1 && s <= last, in ascending start

// Boundaries probed at start-1, start, last, last+1 (half-open ranges that touch at their end).
TEST_F(ItreeConformance, I05_HalfOpenRangeTouchingAnIntervalDoesNotHitIt) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0x10000, 0x1000), 0);  // [0x10000, 0x10fff]
  auto hits = [&](uint64_t s, uint64_t e) {
    journal_.clear();
    Hit(mm_, s, e);
    return journal_.first_pass_count(1) == 1;
  };
  EXPECT_FALSE(hits(0xf000, 0x10000));   // ends right before start
  EXPECT_TRUE(hits(0xf000, 0x10001));    // covers start
  EXPECT_TRUE(hits(0x10fff, 0x11000));   // covers last only
  EXPECT_FALSE(hits(0x11000, 0x12000));  // starts right after last
  EXPECT_TRUE(hits(0x10800, 0x10801));   // one byte inside
  EXPECT_TRUE(hits(0, kTop));            // everything
  EXPECT_FALSE(hits(0x11000, kTop));
}

// An interval of length L covers [start, start + L - 1]; length 1 is a single byte.
TEST_F(ItreeConformance, I05_IntervalOfLengthLCoversStartToStartPlusLMinusOne) {
  Watch a(&journal_, 1), z(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 100, 1), 0);
  ASSERT_EQ(z.insert(mm_, 0, 1), 0);  // the first byte of the space
  journal_.clear();
  Hit(mm_, 99, 100);
  Hit(mm_, 101, 102);
  Hit(mm_, 1, 100);
  EXPECT_TRUE(journal_.first_passes().empty());
  Hit(mm_, 100, 101);
  Hit(mm_, 0, 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1, 2}));
}

// Intervals ending at the top of the space: [kTop - kPage + 1, kTop] is reached by [kTop - 1, kTop); an
// interval that is only the byte kTop cannot be reached by any range (end is exclusive, at most kTop).
TEST_F(ItreeConformance, I05_IntervalsAtTheTopOfTheSpace) {
  Watch top(&journal_, 1), last_byte(&journal_, 2), below(&journal_, 3);
  ASSERT_EQ(top.insert(mm_, kTop - kPage + 1, kPage), 0);
  ASSERT_EQ(last_byte.insert(mm_, kTop, 1), 0);
  ASSERT_EQ(below.insert(mm_, kTop - 2 * kPage + 1, kPage), 0);  // [kTop-2p+1, kTop-p]
  journal_.clear();
  Hit(mm_, kTop - 1, kTop);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1}));
  journal_.clear();
  Hit(mm_, 0, kTop);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{3, 1}));
  journal_.clear();
  Hit(mm_, kTop - kPage, kTop - kPage + 1);  // the last byte of `below`, touching `top`
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{3}));
  journal_.clear();
  Hit(mm_, kTop - kPage + 1, kTop - kPage + 2);  // the first byte of `top`
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1}));
}

// Overlapping intervals are called in ascending start order, whatever the insertion order.
TEST_F(ItreeConformance, I05_RangeCallsIntersectingIntervalsInAscendingStart) {
  std::vector<std::unique_ptr<Watch>> watches;
  const std::vector<uint64_t> starts = {7, 3, 9, 1, 5, 0, 8, 2, 6, 4};
  for (uint64_t s : starts) {
    watches.push_back(std::make_unique<Watch>(&journal_, static_cast<int>(s), s % 2 == 0));
    ASSERT_EQ(watches.back()->insert(mm_, s * kPage, (12 - s) * kPage), 0);  // all cover page 11
  }
  journal_.clear();
  Hit(mm_, 11 * kPage, 11 * kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  journal_.clear();
  Hit(mm_, 4 * kPage + 5, 6 * kPage);  // [4p+5, 6p-1]: intervals starting at or below page 5
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

// Equal starts are visited in insertion order (the kernel inserts to the right on ties, 2.3).
TEST_F(ItreeConformance, I05_EqualStartsAreVisitedInInsertionOrder) {
  std::vector<std::unique_ptr<Watch>> watches;
  const std::vector<uint64_t> lengths = {3, 1, 5, 2, 4, 1, 6};
  for (size_t i = 0; i < lengths.size(); ++i) {
    watches.push_back(std::make_unique<Watch>(&journal_, static_cast<int>(i)));
    ASSERT_EQ(watches.back()->insert(mm_, kPage, lengths[i] * kPage), 0);
  }
  journal_.clear();
  Hit(mm_, kPage, kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  watches[2]->remove();  // re-inserted: now last among the equal starts
  ASSERT_EQ(watches[2]->insert(mm_, kPage, kPage), 0);
  journal_.clear();
  Hit(mm_, kPage, kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 3, 4, 5, 6, 2}));
}

// Many overlapping intervals, random ranges, inserts and removes, against a naive model (fixed seed).
TEST_F(ItreeConformance, I05_ManyOverlappingIntervalsMatchANaiveModel) {
  constexpr uint32_t kSeed = 0x5eed1705;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937_64 rng(kSeed);
  struct Model {
    uint64_t start, last;
    int id;
    uint64_t order;  // insertion order, for equal starts
  };
  constexpr int kCount = 96;
  std::vector<std::unique_ptr<Watch>> watches;
  std::vector<Model> model;
  uint64_t order = 0;
  auto insert = [&](int id) {
    uint64_t start, length;
    switch (rng() % 8) {
      case 0: start = kTop - (rng() % 4096); length = kTop - start + 1; break;  // ends at kTop
      case 1: start = (rng() % 8) * 512; length = 1 + rng() % 4096; break;      // equal starts likely
      default: start = rng() % (1u << 20); length = 1 + rng() % (1u << 16); break;
    }
    ASSERT_EQ(watches[id]->insert(mm_, start, length), 0);
    model.push_back({start, start + length - 1, id, order++});
  };
  for (int id = 0; id < kCount; ++id) {
    watches.push_back(std::make_unique<Watch>(&journal_, id, id % 3 == 0));
    insert(id);
  }
  for (int round = 0; round < 400; ++round) {
    if (round % 5 == 4) {  // replace one interval
      const size_t pos = rng() % model.size();
      const int id = model[pos].id;
      watches[id]->remove();
      model.erase(model.begin() + static_cast<long>(pos));
      insert(id);
    }
    uint64_t s = rng() % 3 == 0 ? kTop - 1 - rng() % 8192 : rng() % (1u << 20);
    uint64_t e = s + 1 + rng() % (1u << 15);
    if (e < s || e == 0) e = kTop;  // wrapped: clamp to the top
    std::vector<Model> expected;
    for (const Model& m : model)
      if (m.start <= e - 1 && s <= m.last) expected.push_back(m);
    std::sort(expected.begin(), expected.end(), [](const Model& x, const Model& y) {
      return x.start != y.start ? x.start < y.start : x.order < y.order;
    });
    std::vector<int> want;
    for (const Model& m : expected) want.push_back(m.id);
    journal_.clear();
    Hit(mm_, s, e);
    ASSERT_EQ(journal_.first_passes(), want) << "round " << round << " range [" << s << ", " << e << ")";
  }
}

// A seeded random walk over nested ranges (blocking and non-blocking, some failing), inserts and removes
// (deferred or not), checked at every step against a model of 2.1-2.9: which notifiers each range calls
// and in what order, the cur_seq they get, -EAGAIN, and every notifier's seq (I-1..I-5, I-8, I-10, 2.7).
TEST_F(ItreeConformance, I05_RandomWalkMatchesTheStateMachineModel) {
  constexpr uint32_t kSeed = 0x17ee0002;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937_64 rng(kSeed);
  enum class St { kAbsent, kTree, kPending };
  struct M {
    uint64_t start = 0, last = 0;
    St st = St::kAbsent;
    unsigned long seq = 0;
  };
  constexpr int kCount = 48;
  std::vector<std::unique_ptr<Watch>> w;
  std::vector<M> m(kCount);
  for (int id = 0; id < kCount; ++id) {
    w.push_back(std::make_unique<Watch>(&journal_, id, id % 3 == 0));
    w[id]->fail_nonblock = id % 7 == 3;
    m[id].start = static_cast<uint64_t>(id) * 0x10000 + rng() % 0x8000;  // distinct starts
    m[id].last = m[id].start + rng() % 0x40000;
  }
  Watch seed(&journal_, -1);
  ASSERT_EQ(seed.insert(mm_, kProbeBase, kPage), 0);  // subscriptions exist: seq 2
  unsigned long seq = 2;
  int active = 0;
  std::vector<std::unique_ptr<Range>> open;
  auto close_epoch_if_done = [&] {
    if (active > 0 || seq % 2 == 0) return;
    ++seq;
    for (M& x : m)
      if (x.st == St::kPending) x.st = St::kTree;
  };
  int stats[4] = {};  // deferred inserts, partially-excluded inserts, -EAGAIN, ranges that hit
  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const int what = static_cast<int>(rng() % 10);
    const int id = static_cast<int>(rng() % kCount);
    if (what < 3) {  // insert
      if (m[id].st != St::kAbsent) continue;
      ASSERT_EQ(w[id]->insert(mm_, m[id].start, m[id].last - m[id].start + 1), 0);
      if (active > 0 && seq % 2 == 1) {
        m[id].st = St::kPending;
        m[id].seq = seq;
        stats[0]++;
      } else {
        if (active > 0) seq |= 1, stats[1]++;
        m[id].st = St::kTree;
        m[id].seq = active > 0 ? seq : seq - 1;
      }
    } else if (what < 5) {  // remove, when it does not have to wait (this thread holds the ranges)
      if (m[id].st == St::kAbsent || (m[id].st == St::kTree && seq % 2 == 1)) continue;
      w[id]->remove();
      m[id].st = St::kAbsent;
    } else if (what < 7 && open.size() < 6) {  // open a range
      // A third land where no notifier is: they open partially-excluded periods.
      const uint64_t s = rng() % (kCount * 0x10000) + (rng() % 3 == 0 ? kCount * 0x10000 + 0x100000 : 0);
      const uint64_t e = s + 1 + rng() % 0x30000;
      const bool nonblock = rng() % 3 == 0;
      std::vector<int> hits;
      for (int i = 0; i < kCount; ++i)
        if (m[i].st == St::kTree && m[i].start <= e - 1 && s <= m[i].last) hits.push_back(i);
      std::sort(hits.begin(), hits.end(), [&](int a, int b) { return m[a].start < m[b].start; });
      ++active;
      if (!hits.empty()) seq |= 1;
      std::vector<int> called;
      bool failed = false;
      for (int i : hits) {
        called.push_back(i);
        if (nonblock && w[i]->fail_nonblock) {
          failed = true;
          break;
        }
        m[i].seq = seq;
      }
      journal_.clear();
      auto range = std::make_unique<Range>(mm_, s, e, nonblock ? Range::kNonBlock : Range::kBlock);
      ASSERT_EQ(journal_.first_passes(), called);
      for (const Record& r : journal_.all())
        if (r.kind != Kind::kFinish) { ASSERT_EQ(r.cur_seq, seq); }
      ASSERT_EQ(range->result(), failed ? -EAGAIN : 0);
      stats[2] += failed;
      stats[3] += !hits.empty();
      if (failed) {
        --active;
        close_epoch_if_done();
      } else {
        open.push_back(std::move(range));
      }
    } else if (!open.empty()) {  // close the innermost range
      open.pop_back();
      --active;
      close_epoch_if_done();
    }
    for (int i = 0; i < kCount; ++i)
      if (m[i].st != St::kAbsent) { ASSERT_TRUE(w[i]->seq_is(m[i].seq)) << "notifier " << i; }
  }
  while (!open.empty()) {
    open.pop_back();
    --active;
    close_epoch_if_done();
  }
  EXPECT_EQ(ExpectIdle(), seq + 2);
  // The walk must reach every state it is meant to check.
  EXPECT_GT(stats[0], 10);
  EXPECT_GT(stats[1], 20);
  EXPECT_GT(stats[2], 10);
  EXPECT_GT(stats[3], 100);
  std::printf("deferred inserts %d, partially-excluded inserts %d, -EAGAIN %d, hitting ranges %d\n", stats[0],
              stats[1], stats[2], stats[3]);
}

// A range overlapping a thousand intervals calls each exactly once, all with the same cur_seq.
TEST_F(ItreeConformance, I05_ThousandOverlappingIntervalsEachCalledOnce) {
  constexpr int kCount = 1000;
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kCount; ++i) {
    watches.push_back(std::make_unique<Watch>(&journal_, i, i % 2 == 1));
    ASSERT_EQ(watches.back()->insert(mm_, static_cast<uint64_t>(i) * 16, 1 << 20), 0);
  }
  journal_.clear();
  Hit(mm_, 1 << 19, (1 << 19) + 1);
  std::vector<int> want(kCount);
  for (int i = 0; i < kCount; ++i) want[i] = i;
  EXPECT_EQ(journal_.first_passes(), want);
  std::vector<int> odd;
  for (int i = 1; i < kCount; i += 2) odd.push_back(i);
  EXPECT_EQ(journal_.finishes(), odd);
  for (const Record& r : journal_.all())
    if (r.kind != Kind::kFinish) { ASSERT_EQ(r.cur_seq, 3u); }
}

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
