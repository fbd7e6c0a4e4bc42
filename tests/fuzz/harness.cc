// harness.cc - see harness.hpp. White-box where it must be: it reads umn_interval_notifier::state and the
// subscriptions' active count and tree (src/core/subscriptions.hpp) to compare them with the model.
#include "harness.hpp"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/subscriptions.hpp"
#include "model.hpp"
#include "umn/umn.h"

namespace umn_fuzz {
namespace {

using umn_model::Call;
using umn_model::Decision;
using umn_model::Model;
using umn_model::NotifierState;
using umn_model::OpsKind;

constexpr int kNotifiers = 6;
constexpr int kRanges = 4;
constexpr int kRecords = 2;
constexpr auto kHangLimit = std::chrono::seconds(10);

Stats g_stats;

// ---------------------------------------------------------------------------------------------------
// Input decoding

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A start address: one of 16 pages, at its first byte, second byte or last byte, or near the top.
uint64_t decode_start(uint8_t b) {
  const uint64_t base = uint64_t{b & 15u} * 0x1000;
  switch (b >> 6) {
    case 0: return base;
    case 1: return base + 1;
    case 2: return base + 0xfff;
    default: return UINT64_MAX - base;
  }
}
// A length: whole pages, page + 1 byte, a few bytes (0 included), or huge.
uint64_t decode_length(uint8_t b) {
  switch (b >> 6) {
    case 0: return (uint64_t{b & 15u} + 1) * 0x1000;
    case 1: return uint64_t{b & 15u} * 0x1000 + 1;
    case 2: return b & 63u;
    default: return b == 0xff ? UINT64_MAX : uint64_t{b & 15u} * 0x1000;
  }
}
Decision decode_decision(uint8_t b) {
  return Decision{(b & 3) != 3, (b & 4) != 0, (b & 0x18) != 0x18};
}
OpsKind decode_ops(uint8_t b) {
  static constexpr OpsKind kTable[8] = {OpsKind::kInvalidate, OpsKind::kTwoPass, OpsKind::kBoth,
                                        OpsKind::kInvalidate, OpsKind::kTwoPass, OpsKind::kBoth,
                                        OpsKind::kStartNoFinish, OpsKind::kNone};
  return kTable[b & 7];
}

// ---------------------------------------------------------------------------------------------------
// The umn side: notifier slots whose callbacks follow the input's decisions and log what they see.

class Runner;
Runner* g_runner = nullptr;  // the input being run (one at a time)

struct Slot;
struct Record {
  umn_interval_notifier_finish finish;  // first member
  Slot* slot;
  bool busy;
};
struct Slot {
  umn_interval_notifier sub;  // first member: callbacks cast back
  int index = 0;
  Record records[kRecords];
  bool has_token = false;
  unsigned long token_umn = 0, token_model = 0;
  std::thread remover;
  std::atomic<bool> remover_done{false};
};

bool cb_invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq);
bool cb_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
              umn_interval_notifier_finish** finish);
void cb_finish(umn_interval_notifier_finish* finish);

const umn_interval_notifier_ops kOps[umn_model::kOpsKinds] = {
    {cb_invalidate, nullptr, nullptr},   // kInvalidate
    {nullptr, cb_start, cb_finish},      // kTwoPass
    {cb_invalidate, cb_start, cb_finish},  // kBoth
    {nullptr, cb_start, nullptr},        // kStartNoFinish
    {nullptr, nullptr, nullptr},         // kNone
};

uint32_t umn_state(const Slot& slot) {
  return std::atomic_ref(const_cast<uint32_t&>(slot.sub.state)).load(std::memory_order_acquire);
}
uint32_t expected_umn_state(NotifierState state, uint32_t never_value) {
  switch (state) {
    case NotifierState::kNever: return never_value;
    case NotifierState::kRemoved: return umn::detail::kStateRemoved;
    case NotifierState::kInTree: return umn::detail::kStateInTree;
    case NotifierState::kPendingInsert: return umn::detail::kStatePendingInsert;
    case NotifierState::kPendingRemove: return umn::detail::kStatePendingRemove;
  }
  return 0;
}

void diagnostic_hook(void* context, const char* call, const char* message);

class Runner {
 public:
  Runner() : model_(kNotifiers, kRanges) {
    for (int i = 0; i < kNotifiers; ++i) {
      slots_[i] = std::make_unique<Slot>();
      std::memset(&slots_[i]->sub, 0, sizeof(slots_[i]->sub));
      slots_[i]->index = i;
      for (Record& record : slots_[i]->records) record = Record{{nullptr, nullptr}, slots_[i].get(), false};
    }
    mm_ = umn_mm_create();
    if (mm_ == nullptr) std::abort();
    // Every range slot names the address space, so an end without a start is a plain no-op.
    for (umn_notifier_range& range : ranges_) umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm_, 0, 1);
    g_runner = this;
    umn_set_diagnostic_hook(diagnostic_hook, this);
  }
  ~Runner() {
    umn_set_diagnostic_hook(nullptr, nullptr);
    g_runner = nullptr;
  }

  void run(Reader& in);
  void print_trace() const { std::fprintf(stderr, "%s", trace_.c_str()); }

  // ---- called from umn's callbacks ----
  Decision next_decision_umn() { return decision_at(umn_cursor_++); }
  void log(const Call& call) { actual_calls_.push_back(call); }
  void add_diag(const char* call) {
    std::lock_guard guard(diag_lock_);
    actual_diags_.emplace_back(call);
  }
  [[noreturn]] void fail(const std::string& what);

 private:
  Decision decision_at(size_t i) const {
    return i < decisions_.size() ? decode_decision(decisions_[i]) : Decision{true, true, true};
  }
  void read_decisions(Reader& in) {
    decisions_.clear();
    for (int count = in.next() % 8; count > 0; --count) decisions_.push_back(in.next());
    umn_cursor_ = model_cursor_ = 0;
  }
  umn_model::Decide model_decide() {
    return [this](int) { return decision_at(model_cursor_++); };
  }

  void op_insert(int n, uint64_t start, uint64_t length, OpsKind ops);
  void op_remove(int n);
  void op_range_start(int r, uint64_t start, uint64_t end, int event, bool blockable);
  void op_range_end(int r);
  void op_read_begin(int n);
  void op_retry(int n, bool check);
  void op_release_or_destroy(bool destroy);
  void cleanup(bool destroy_first);

  void compare_calls(const std::vector<Call>& expected);
  void join_removers(const std::vector<int>& woken);
  void check_state();
  void trace(const std::string& line) { trace_ += line + "\n"; }

  Model model_;
  umn_mm* mm_;
  bool mm_dead_ = false;
  std::unique_ptr<Slot> slots_[kNotifiers];
  umn_notifier_range ranges_[kRanges];
  std::vector<uint8_t> decisions_;
  size_t umn_cursor_ = 0, model_cursor_ = 0;
  std::vector<Call> actual_calls_;
  std::mutex diag_lock_;
  std::vector<std::string> actual_diags_;
  std::unordered_map<unsigned long, unsigned long> umn_to_model_, model_to_umn_;
  std::string trace_;
  bool seq_checked_ = false;

 public:
  // Checks that umn's value u and the model's value m stand in the same relations as all earlier pairs.
  void match_seq(unsigned long u, unsigned long m, const char* what) {
    if ((u & 1) != (m & 1)) fail(std::string(what) + ": parity differs: umn " + std::to_string(u) +
                                 " model " + std::to_string(m));
    auto [it_u, new_u] = umn_to_model_.emplace(u, m);
    auto [it_m, new_m] = model_to_umn_.emplace(m, u);
    if (it_u->second != m || it_m->second != u)
      fail(std::string(what) + ": seq relation broken: umn " + std::to_string(u) + " <-> model " +
           std::to_string(m) + " but earlier umn " + std::to_string(u) + " <-> model " +
           std::to_string(it_u->second) + " and model " + std::to_string(m) + " <-> umn " +
           std::to_string(it_m->second));
  }
};

void diagnostic_hook(void* context, const char* call, const char*) {
  static_cast<Runner*>(context)->add_diag(call);
}

Slot& slot_of(umn_interval_notifier* sub) { return *reinterpret_cast<Slot*>(sub); }

bool cb_invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
  Runner& runner = *g_runner;
  const Decision d = runner.next_decision_umn();
  runner.log(Call{Call::kInvalidate, slot_of(sub).index, range->start, range->end,
                  static_cast<int>(range->event), umn_notifier_range_blockable(range), cur_seq, false});
  if (d.set_seq) umn_interval_set_seq(sub, cur_seq);
  return d.ok;
}

bool cb_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
              umn_interval_notifier_finish** finish) {
  Runner& runner = *g_runner;
  Slot& slot = slot_of(sub);
  if (*finish != nullptr) runner.fail("invalidate_start: *finish is not NULL on entry (I-13)");
  const Decision d = runner.next_decision_umn();
  bool handed = false;
  if (d.record) {
    for (Record& record : slot.records) {
      if (record.busy) continue;
      record.busy = true;
      *finish = &record.finish;
      handed = true;
      break;
    }
  }
  runner.log(Call{Call::kStart, slot.index, range->start, range->end, static_cast<int>(range->event),
                  umn_notifier_range_blockable(range), cur_seq, handed && d.ok});
  if (d.set_seq) umn_interval_set_seq(sub, cur_seq);
  return d.ok;
}

void cb_finish(umn_interval_notifier_finish* finish) {
  Runner& runner = *g_runner;
  Record& record = *reinterpret_cast<Record*>(finish);
  if (!record.busy) runner.fail("invalidate_finish: record was not handed out (or finished twice)");
  if (finish->notifier != &record.slot->sub) runner.fail("invalidate_finish: finish->notifier is wrong");
  record.busy = false;
  runner.log(Call{Call::kFinish, record.slot->index});
}

std::string describe(const Call& c) {
  static const char* kKinds[] = {"invalidate", "invalidate_start", "invalidate_finish"};
  std::string s = std::string(kKinds[c.kind]) + "(n" + std::to_string(c.notifier);
  if (c.kind != Call::kFinish)
    s += ", [" + std::to_string(c.start) + "," + std::to_string(c.end) + ") ev " + std::to_string(c.event) +
         (c.blockable ? " blockable" : " nonblock") + " seq " + std::to_string(c.cur_seq) +
         (c.record ? " +record" : "");
  return s + ")";
}

void Runner::fail(const std::string& what) {
  std::fprintf(stderr, "\n=== umn differs from the model ===\n%s--> %s\n", trace_.c_str(), what.c_str());
  std::fflush(stderr);
  std::abort();
}

void Runner::compare_calls(const std::vector<Call>& expected) {
  auto list = [](const std::vector<Call>& calls) {
    std::string s;
    for (const Call& c : calls) s += "    " + describe(c) + "\n";
    return s;
  };
  g_stats.callbacks += actual_calls_.size();
  bool same = expected.size() == actual_calls_.size();
  for (size_t i = 0; same && i < expected.size(); ++i) {
    const Call& e = expected[i];
    const Call& a = actual_calls_[i];
    same = e.kind == a.kind && e.notifier == a.notifier && e.start == a.start && e.end == a.end &&
           e.event == a.event && e.blockable == a.blockable && e.record == a.record;
    if (same && e.kind != Call::kFinish) match_seq(a.cur_seq, e.cur_seq, "callback cur_seq");
  }
  if (!same) fail("callbacks differ\n  umn:\n" + list(actual_calls_) + "  model:\n" + list(expected));
  if (!actual_calls_.empty()) trace(list(actual_calls_));
  actual_calls_.clear();
  // Records handed out by a failing first pass are dropped by umn (the driver's problem): reclaim them.
  for (auto& slot : slots_)
    for (Record& record : slot->records) record.busy = false;
}

void Runner::join_removers(const std::vector<int>& woken) {
  for (int n : woken) {
    Slot& slot = *slots_[n];
    const auto deadline = std::chrono::steady_clock::now() + kHangLimit;
    while (!slot.remover_done.load()) {
      if (std::chrono::steady_clock::now() > deadline)
        fail("remove(n" + std::to_string(n) + ") still waits after its epoch ended (hang)");
      sched_yield();
    }
    slot.remover.join();
    trace("  remove(n" + std::to_string(n) + ") returned");
  }
  mm_dead_ = !model_.mm_alive();  // a woken remove may have dropped the last reference
}

void Runner::check_state() {
  // Diagnostics, by call name.
  std::vector<std::string> expected = model_.take_diagnostics();
  std::vector<std::string> actual;
  {
    std::lock_guard guard(diag_lock_);
    actual.swap(actual_diags_);
  }
  bool same = expected.size() == actual.size();
  for (size_t i = 0; same && i < expected.size(); ++i)
    same = expected[i].compare(0, actual[i].size() + 1, actual[i] + ":") == 0;
  if (!same) {
    std::string e, a;
    for (auto& s : expected) e += " [" + s + "]";
    for (auto& s : actual) a += " [" + s + "]";
    fail("diagnostics differ: umn" + a + " model" + e);
  }
  if (mm_dead_) return;
  // Notifier states.
  size_t in_tree = 0;
  for (int n = 0; n < kNotifiers; ++n) {
    const NotifierState state = model_.state(n);
    in_tree += state == NotifierState::kInTree || state == NotifierState::kPendingRemove;
    const uint32_t actual_state = umn_state(*slots_[n]);
    const bool never_ok = state == NotifierState::kNever &&
                          actual_state != umn::detail::kStateRemoved && actual_state != umn::detail::kStateInTree &&
                          actual_state != umn::detail::kStatePendingInsert &&
                          actual_state != umn::detail::kStatePendingRemove;
    if (!never_ok && actual_state != expected_umn_state(state, 0))
      fail("n" + std::to_string(n) + " state: model says " + umn_model::to_string(state) + ", umn has 0x" +
           std::to_string(actual_state));
  }
  // Address-space counters and the tree.
  umn::detail::Subscriptions* subs = umn::detail::subscriptions_of(mm_);
  if ((subs != nullptr) != model_.has_subscriptions()) fail("subscriptions exist in one but not the other");
  if (subs == nullptr) return;
  std::lock_guard guard(subs->lock);
  if (subs->active != model_.active())
    fail("active: umn " + std::to_string(subs->active) + " model " + std::to_string(model_.active()));
  match_seq(subs->invalidate_seq.load(), model_.seq(), "address-space seq");
  if (subs->itree.size() != in_tree) fail("tree size differs from the model");
  if (!subs->itree.verify()) fail("interval tree invariants broken");
  for (int n = 0; n < kNotifiers; ++n) {
    const NotifierState state = model_.state(n);
    if (state == NotifierState::kNever || state == NotifierState::kRemoved) continue;
    match_seq(slots_[n]->sub.invalidate_seq, model_.notifier_seq(n), "notifier seq");
  }
}

void Runner::op_insert(int n, uint64_t start, uint64_t length, OpsKind ops) {
  bool would_block;
  const int expected = model_.insert(n, start, length, ops, &would_block);
  trace("insert(n" + std::to_string(n) + ", " + std::to_string(start) + ", len " + std::to_string(length) +
        ", ops " + std::to_string(static_cast<int>(ops)) + ")" + (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  const int actual =
      umn_interval_notifier_insert(&slots_[n]->sub, mm_, start, length, &kOps[static_cast<int>(ops)]);
  if (actual != expected)
    fail("insert returned " + std::to_string(actual) + ", model " + std::to_string(expected));
}

void Runner::op_remove(int n) {
  Slot& slot = *slots_[n];
  // A second remove while one waits is a concurrent double remove: the model expects a diagnostic.
  const bool waits = model_.remove(n);
  trace("remove(n" + std::to_string(n) + ")" + (waits ? " waits for the epoch" : ""));
  if (!waits) {
    // The model says it returns at once. Called inline: were it to wait, nothing could end the epoch and
    // the run would hang, which the fuzzer's -timeout and ctest's TIMEOUT report.
    umn_interval_notifier_remove(&slot.sub);
    return;
  }
  slot.remover_done.store(false);
  std::thread thread([&slot] {
    umn_interval_notifier_remove(&slot.sub);
    slot.remover_done.store(true);
  });
  const auto deadline = std::chrono::steady_clock::now() + kHangLimit;
  for (;;) {
    if (slot.remover_done.load()) fail("remove returned at once; the model says it waits for the running epoch");
    if (umn_state(slot) == umn::detail::kStatePendingRemove) {
      // Waiting as predicted. It holds the lock until its wait releases it, so what follows is ordered.
      slot.remover = std::move(thread);
      return;
    }
    if (std::chrono::steady_clock::now() > deadline) fail("remove neither returned nor queued its removal");
    sched_yield();
  }
}

void Runner::op_range_start(int r, uint64_t start, uint64_t end, int event, bool blockable) {
  if (model_.range_open(r)) return;  // starting an open range again is misuse the harness avoids
  std::vector<Call> expected;
  const int expected_err = model_.range_start(r, start, end, event, blockable, model_decide(), &expected);
  trace(std::string(blockable ? "range_start" : "range_start_nonblock") + "(r" + std::to_string(r) + ", [" +
        std::to_string(start) + "," + std::to_string(end) + "), ev " + std::to_string(event) + ")");
  umn_notifier_range& range = ranges_[r];
  umn_notifier_range_init(&range, static_cast<umn_notifier_event>(event), 0, mm_, start, end);
  int err = 0;
  if (blockable) {
    umn_notifier_invalidate_range_start(&range);
    err = expected_err == umn_model::kEINVAL ? umn_model::kEINVAL : 0;
  } else {
    err = umn_notifier_invalidate_range_start_nonblock(&range);
  }
  compare_calls(expected);
  if (err != expected_err)
    fail("range_start returned " + std::to_string(err) + ", model " + std::to_string(expected_err));
}

void Runner::op_range_end(int r) {
  std::vector<int> woken;
  model_.range_end(r, &woken);
  trace("range_end(r" + std::to_string(r) + ")");
  umn_notifier_invalidate_range_end(&ranges_[r]);
  compare_calls({});
  join_removers(woken);
}

void Runner::op_read_begin(int n) {
  const NotifierState state = model_.state(n);
  if (state == NotifierState::kNever || state == NotifierState::kRemoved) return;
  bool would_block;
  const unsigned long expected = model_.read_begin(n, &would_block);
  trace("read_begin(n" + std::to_string(n) + ")" + (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  Slot& slot = *slots_[n];
  slot.token_umn = umn_interval_read_begin(&slot.sub);
  slot.token_model = expected;
  slot.has_token = true;
  match_seq(slot.token_umn, expected, "read_begin");
}

void Runner::op_retry(int n, bool check) {
  Slot& slot = *slots_[n];
  if (!slot.has_token) return;
  const bool expected = model_.read_retry(n, slot.token_model);
  const bool actual = check ? umn_interval_check_retry(&slot.sub, slot.token_umn)
                            : umn_interval_read_retry(&slot.sub, slot.token_umn);
  trace(std::string(check ? "check_retry" : "read_retry") + "(n" + std::to_string(n) + ") = " +
        (actual ? "true" : "false"));
  if (actual != expected) fail(std::string("retry differs; model says ") + (expected ? "true" : "false"));
}

void Runner::op_release_or_destroy(bool destroy) {
  // Destroy only with no range open: a range end after the last reference went would touch freed memory.
  if (destroy && model_.open_ranges() > 0) return;
  std::vector<Call> expected;
  std::vector<int> woken;
  bool would_block;
  if (destroy)
    model_.destroy(model_decide(), &expected, &woken, &would_block);
  else
    model_.release(model_decide(), &expected, &woken, &would_block);
  trace(std::string(destroy ? "destroy" : "release") + (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  if (destroy)
    umn_mm_destroy(mm_);
  else
    umn_notifier_release(mm_);
  compare_calls(expected);
  join_removers(woken);
  mm_dead_ = !model_.mm_alive();
}

void Runner::run(Reader& in) {
  const uint8_t mode = in.next();
  const bool destroy_first = (mode & 1) != 0;
  // Most inputs start with one notifier, so that the address space has subscriptions before the first
  // range (ranges started before that are "bare" and make inserts wait, which a single thread skips).
  if ((mode & 2) == 0) op_insert(0, 0x2000, 0x3000, OpsKind::kInvalidate);
  while (!in.done() && !mm_dead_) {
    const uint8_t op = in.next();
    switch (op % 16) {
      case 0:
      case 1: {
        const int n = in.next() % kNotifiers;
        const uint64_t start = decode_start(in.next());
        const uint64_t length = decode_length(in.next());
        op_insert(n, start, length, decode_ops(in.next()));
        break;
      }
      case 2: op_remove(in.next() % kNotifiers); break;
      case 3:
      case 4:
      case 5: {
        const int r = in.next() % kRanges;
        const uint64_t start = decode_start(in.next());
        const uint64_t end = start + decode_length(in.next());  // may wrap: start >= end is tested too
        const uint8_t flags = in.next();
        read_decisions(in);
        op_range_start(r, start, end, (flags >> 1) % 8, (flags & 1) == 0);
        break;
      }
      case 6: {
        const int r = in.next() % kRanges;
        const uint8_t flags = in.next();
        read_decisions(in);
        op_range_start(r, 0, UINT64_MAX, (flags >> 1) % 8, (flags & 1) == 0);
        break;
      }
      case 7:
      case 8: op_range_end(in.next() % kRanges); break;
      case 9:
      case 10: op_read_begin(in.next() % kNotifiers); break;
      case 11:
      case 12: op_retry(in.next() % kNotifiers, false); break;
      case 13: op_retry(in.next() % kNotifiers, true); break;
      case 14:
        read_decisions(in);
        op_release_or_destroy(false);
        break;
      default: {
        const uint8_t arg = in.next();
        read_decisions(in);
        if (arg % 4 == 0) op_release_or_destroy(true);  // destroy early only now and then
        break;
      }
    }
    g_stats.ops++;
    mm_dead_ = !model_.mm_alive();  // the last remove after a destroy frees the address space
    check_state();
  }
  cleanup(destroy_first);
}

void Runner::cleanup(bool destroy_first) {
  trace("-- cleanup");
  decisions_.clear();
  for (int r = 0; r < kRanges && !mm_dead_; ++r)
    if (model_.range_open(r)) op_range_end(r);
  check_state();
  if (destroy_first && !mm_dead_) {
    op_release_or_destroy(true);
    check_state();
  }
  for (int n = 0; n < kNotifiers && !mm_dead_; ++n) {
    const NotifierState state = model_.state(n);
    if (state == NotifierState::kInTree || state == NotifierState::kPendingInsert) {
      op_remove(n);
      mm_dead_ = !model_.mm_alive();
      check_state();
    }
  }
  if (!mm_dead_) {
    op_release_or_destroy(true);
    check_state();
  }
  if (!mm_dead_) fail("the address space is still referenced after every notifier was removed");
  for (auto& slot : slots_)
    if (slot->remover.joinable()) fail("a remove never returned");
}

}  // namespace

void run_input(const uint8_t* data, size_t size) {
  Reader in(data, size);
  Runner runner;
  runner.run(in);
  if (std::getenv("UMN_FUZZ_TRACE") != nullptr) runner.print_trace();
  g_stats.inputs++;
}

const Stats& stats() { return g_stats; }

}  // namespace umn_fuzz
