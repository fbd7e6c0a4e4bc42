// itree_conformance.hpp - the shared part of the interval-notifier conformance tests
// (itree_*_test.cc, one file per group of spec sections): test doubles, the fixture, helpers.
//
// The tests check the interval-notifier side against the spec, through the public C
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
#pragma once

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

namespace umn::test::itree_conformance {

using umn::test::AsyncCall;
using umn::test::DiagCapture;

inline constexpr uint64_t kPage = 4096;
inline constexpr uint64_t kTop = UINT64_MAX;
inline constexpr auto kGrace = std::chrono::milliseconds(30);
inline constexpr auto kLimit = std::chrono::seconds(10);
// A part of the space no test uses, for ExpectIdle's probe.
inline constexpr uint64_t kProbeBase = 0x7f0000000000;
inline constexpr int kProbeId = 9999;

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
inline void Hit(umn_mm* mm, uint64_t start, uint64_t end) { Range range(mm, start, end); }

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
inline bool ReturnsPromptly(std::function<void()> fn) {
  AsyncCall call(std::move(fn));
  return call.finishes(kLimit);
}

}  // namespace umn::test::itree_conformance
