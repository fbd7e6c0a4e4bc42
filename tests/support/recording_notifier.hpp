// recording_notifier.hpp - RecordingNotifier: a C-API interval notifier whose callbacks append to a
// shared CallLog and behave as a test configures them (fail, skip set_seq, hand out a finish record).
//
// Locking: CallLog has its own mutex (callbacks may run on several invalidating threads at once); the
//   behaviour fields are set by the test before the invalidation that uses them.
// Lifetime: a RecordingNotifier must outlive its insertion (remove it, or let the test's mm teardown path
//   be what is under test). The finish record is embedded: one invalidation at a time per notifier.
// Context: callbacks never block unless a test installs a gate (`gate`), and never call umn except
//   umn_interval_set_seq.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "support/scoped_range.hpp"
#include "umn/umn.h"

namespace umn::test {

enum class CallKind { kInvalidate, kStart, kFinish };

struct Call {
  CallKind kind;
  int id;
  uint64_t start;
  uint64_t end;
  unsigned long cur_seq;
  bool blockable;
  umn_notifier_event event;
};

class CallLog {
 public:
  void add(const Call& call) {
    std::lock_guard guard(mu_);
    calls_.push_back(call);
  }
  [[nodiscard]] std::vector<Call> calls() const {
    std::lock_guard guard(mu_);
    return calls_;
  }
  // The ids of the calls of one kind, in call order.
  [[nodiscard]] std::vector<int> ids(CallKind kind) const {
    std::lock_guard guard(mu_);
    std::vector<int> ids;
    for (const Call& c : calls_)
      if (c.kind == kind) ids.push_back(c.id);
    return ids;
  }
  // First-pass calls (invalidate or invalidate_start) of notifier id.
  [[nodiscard]] int first_passes(int id) const { return count(CallKind::kInvalidate, id) + count(CallKind::kStart, id); }
  [[nodiscard]] int count(CallKind kind, int id) const {
    std::lock_guard guard(mu_);
    int n = 0;
    for (const Call& c : calls_) n += (c.kind == kind && c.id == id) ? 1 : 0;
    return n;
  }
  [[nodiscard]] size_t size() const {
    std::lock_guard guard(mu_);
    return calls_.size();
  }
  void clear() {
    std::lock_guard guard(mu_);
    calls_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
};

struct RecordingNotifier;

// The finish record, embedded in its notifier.
struct RecordingFinish {
  umn_interval_notifier_finish c{};
  RecordingNotifier* owner = nullptr;
};

struct RecordingNotifier {
  enum class Mode { kSinglePass, kTwoPass };

  // What the next callbacks do.
  Mode mode = Mode::kSinglePass;
  bool fail_always = false;         // return false from the first pass
  bool fail_when_nonblock = false;  // return false from the first pass of a non-blockable range
  bool defer_finish = true;         // two-pass: hand out the finish record (else NULL: all done)
  bool finish_on_failure = false;   // two-pass: set *finish even when returning false
  bool call_set_seq = true;

  // What the callbacks saw.
  bool finish_was_null_on_entry = true;              // every invalidate_start saw *finish == NULL
  umn_interval_notifier* notifier_in_finish = nullptr;  // finish->notifier at the second pass

  umn_interval_notifier sub{};
  RecordingFinish finish;
  int id = 0;
  CallLog* log = nullptr;

  RecordingNotifier(int id_, CallLog* log_, Mode mode_ = Mode::kSinglePass) : mode(mode_), id(id_), log(log_) {
    finish.owner = this;
  }
  RecordingNotifier(const RecordingNotifier&) = delete;
  RecordingNotifier& operator=(const RecordingNotifier&) = delete;

  int insert(umn_mm* mm, uint64_t start, uint64_t length) {
    return umn_interval_notifier_insert(&sub, mm, start, length, ops());
  }
  void remove() { umn_interval_notifier_remove(&sub); }
  unsigned long read_begin() { return umn_interval_read_begin(&sub); }
  bool read_retry(unsigned long seq) { return umn_interval_read_retry(&sub, seq); }

  [[nodiscard]] const umn_interval_notifier_ops* ops() const {
    return mode == Mode::kSinglePass ? &kSinglePassOps : &kTwoPassOps;
  }

  static RecordingNotifier* of(umn_interval_notifier* sub) {
    return reinterpret_cast<RecordingNotifier*>(reinterpret_cast<char*>(sub) - offsetof(RecordingNotifier, sub));
  }

 private:
  void record(CallKind kind, const umn_notifier_range* range, unsigned long cur_seq) {
    log->add({kind, id, range->start, range->end, cur_seq, umn_notifier_range_blockable(range), range->event});
  }
  bool verdict(const umn_notifier_range* range) const {
    return !(fail_always || (fail_when_nonblock && !umn_notifier_range_blockable(range)));
  }
  static bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
    RecordingNotifier* self = of(sub);
    self->record(CallKind::kInvalidate, range, cur_seq);
    const bool ok = self->verdict(range);
    if (ok && self->call_set_seq) umn_interval_set_seq(sub, cur_seq);
    return ok;
  }
  static bool invalidate_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                               umn_interval_notifier_finish** finish) {
    RecordingNotifier* self = of(sub);
    self->record(CallKind::kStart, range, cur_seq);
    if (*finish != nullptr) self->finish_was_null_on_entry = false;
    const bool ok = self->verdict(range);
    if (ok && self->call_set_seq) umn_interval_set_seq(sub, cur_seq);
    if ((ok && self->defer_finish) || (!ok && self->finish_on_failure)) {
      self->finish.c.notifier = nullptr;
      *finish = &self->finish.c;
    }
    return ok;
  }
  static void invalidate_finish(umn_interval_notifier_finish* finish) {
    RecordingNotifier* self = reinterpret_cast<RecordingFinish*>(finish)->owner;
    self->notifier_in_finish = finish->notifier;
    self->log->add({CallKind::kFinish, self->id, 0, 0, 0, false, UMN_NOTIFY_UNMAP});
  }

  static constexpr umn_interval_notifier_ops kSinglePassOps = {&invalidate, nullptr, nullptr};
  static constexpr umn_interval_notifier_ops kTwoPassOps = {nullptr, &invalidate_start, &invalidate_finish};
};

// Invalidates [start, end) of mm and ends it at once (blockable).
inline void invalidate(umn_mm* mm, uint64_t start, uint64_t end) { ScopedRange range(mm, start, end); }

}  // namespace umn::test
