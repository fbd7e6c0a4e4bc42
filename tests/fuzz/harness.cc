// harness.cc - see harness.hpp. White-box where it must be: it reads umn_interval_notifier::state and the
// subscriptions' active count and tree (src/core/subscriptions.hpp) to compare them with the model.
#include "harness.hpp"

#include <sched.h>

#include <array>
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
#include <utility>
#include <vector>

#include "base/lock.hpp"
#include "core/subscriptions.hpp"
#include "model.hpp"
#include "umn/umn.h"

namespace umn_fuzz {
namespace {

using umn_model::Call;
using umn_model::ClassicOps;
using umn_model::Decision;
using umn_model::Model;
using umn_model::NotifierState;
using umn_model::OpsKind;
using umn_model::Query;

constexpr int kNotifiers = 6;
constexpr int kRanges = 4;
constexpr int kRecords = 2;
constexpr int kClassicSlots = 3;  // caller-owned classic notifiers (register / unregister)
constexpr int kClassicVariants = 6;
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
    case 0:
      return base;
    case 1:
      return base + 1;
    case 2:
      return base + 0xfff;
    default:
      return UINT64_MAX - base;
  }
}
// A length: whole pages, page + 1 byte, a few bytes (0 included), or huge.
uint64_t decode_length(uint8_t b) {
  switch (b >> 6) {
    case 0:
      return (uint64_t{b & 15u} + 1) * 0x1000;
    case 1:
      return uint64_t{b & 15u} * 0x1000 + 1;
    case 2:
      return b & 63u;
    default:
      return b == 0xff ? UINT64_MAX : uint64_t{b & 15u} * 0x1000;
  }
}
Decision decode_decision(uint8_t b) { return Decision{(b & 3) != 3, (b & 4) != 0, (b & 0x18) != 0x18}; }
OpsKind decode_ops(uint8_t b) {
  static constexpr OpsKind kTable[8] = {OpsKind::kInvalidate,    OpsKind::kTwoPass, OpsKind::kBoth,
                                        OpsKind::kInvalidate,    OpsKind::kTwoPass, OpsKind::kBoth,
                                        OpsKind::kStartNoFinish, OpsKind::kNone};
  return kTable[b & 7];
}

// Classic ops tables as sets of callbacks (model.hpp ClassicOp). Register uses kClassicVariants[i] as is
// (the last is ops == NULL); get key i uses kGetKeys[i], each its own table, so its own key.
namespace co = umn_model;
constexpr ClassicOps kFullOps =
    co::kHasRelease | co::kHasStart | co::kHasEnd | co::kHasClearFlushYoung | co::kHasClearYoung | co::kHasTestYoung;
constexpr ClassicOps kStartOnlyOps = co::kHasRelease | co::kHasStart | co::kHasTestYoung;  // may fail
constexpr ClassicOps kEndOnlyOps = co::kHasEnd | co::kHasClearYoung;
constexpr ClassicOps kArchOps = co::kHasArch | co::kHasRelease | co::kHasClearFlushYoung;
constexpr ClassicOps kArchAndStartOps = co::kHasArch | co::kHasStart;  // rejected by registration
constexpr ClassicOps kAllocFree = co::kHasAlloc | co::kHasFree;
constexpr ClassicOps kRegisterVariants[kClassicVariants] = {kFullOps, kStartOnlyOps,    kEndOnlyOps,
                                                            kArchOps, kArchAndStartOps, co::kNullOps};
constexpr ClassicOps kGetKeys[kClassicVariants] = {
    kFullOps | kAllocFree, kStartOnlyOps | kAllocFree,    kEndOnlyOps | kAllocFree,
    kArchOps | kAllocFree, kArchAndStartOps | kAllocFree, kFullOps | co::kHasAlloc};  // last: no free

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
    {cb_invalidate, nullptr, nullptr},     // kInvalidate
    {nullptr, cb_start, cb_finish},        // kTwoPass
    {cb_invalidate, cb_start, cb_finish},  // kBoth
    {nullptr, cb_start, nullptr},          // kStartNoFinish
    {nullptr, nullptr, nullptr},           // kNone
};

// A classic notifier: the register slots and every object alloc_notifier hands out. Never really freed
// by free_notifier (which only marks it), so that a premature free is a divergence, not a use after free.
struct ClassicObj {
  umn_notifier n;  // first member: callbacks cast back
  int id = 0;
  std::atomic<bool> freed{false};  // set by free_notifier, on liburcu's callback thread
  bool in_use = false;             // taken from the pool
  bool awaiting_free = false;      // its input ended; free_notifier may still be queued
};

// Every ClassicObj comes from this pool (no allocation: libFuzzer's leak check reruns inputs whose
// mallocs and frees differ). Waiting for liburcu's callback thread costs ~10 ms (umn_notifier_synchronize,
// or polling), so inputs do not wait for their frees: their objects stay awaiting_free, and reap() checks
// that every one was freed, when the pool runs low and at exit. An input (at most 512 bytes, 2 per get)
// takes fewer than kPoolReserve objects.
constexpr size_t kPool = 4096, kPoolReserve = 512;
ClassicObj g_pool[kPool];
size_t g_pool_cursor = 0, g_pool_awaiting = 0;

ClassicObj* pool_take() {
  for (size_t i = 0; i < kPool; ++i, g_pool_cursor = (g_pool_cursor + 1) % kPool) {
    ClassicObj& obj = g_pool[g_pool_cursor];
    if (obj.in_use) continue;
    obj.in_use = true;
    obj.freed = false;
    std::memset(&obj.n, 0, sizeof(obj.n));
    return &obj;
  }
  std::fprintf(stderr, "umn_fuzz: classic object pool exhausted\n");
  std::abort();
}
ClassicObj& classic_of(umn_notifier* sub) { return *reinterpret_cast<ClassicObj*>(sub); }

void cb_release(umn_notifier* sub, umn_mm* mm);
int cb_range_start(umn_notifier* sub, const umn_notifier_range* range);
void cb_range_end(umn_notifier* sub, const umn_notifier_range* range);
int cb_clear_flush_young(umn_notifier* sub, umn_mm* mm, uint64_t start, uint64_t end);
int cb_clear_young(umn_notifier* sub, umn_mm* mm, uint64_t start, uint64_t end);
int cb_test_young(umn_notifier* sub, umn_mm* mm, uint64_t address);
void cb_arch(umn_notifier* sub, umn_mm* mm, uint64_t start, uint64_t end);
umn_notifier* cb_alloc(umn_mm* mm);
void cb_free(umn_notifier* sub);

constexpr umn_notifier_ops make_classic_ops(ClassicOps ops) {
  auto pick = [ops](unsigned bit, auto fn) { return (ops & bit) != 0 ? fn : nullptr; };
  return umn_notifier_ops{pick(co::kHasRelease, cb_release),
                          pick(co::kHasClearFlushYoung, cb_clear_flush_young),
                          pick(co::kHasClearYoung, cb_clear_young),
                          pick(co::kHasTestYoung, cb_test_young),
                          pick(co::kHasStart, cb_range_start),
                          pick(co::kHasEnd, cb_range_end),
                          pick(co::kHasArch, cb_arch),
                          pick(co::kHasAlloc, cb_alloc),
                          pick(co::kHasFree, cb_free)};
}
template <size_t... I>
constexpr std::array<umn_notifier_ops, kClassicVariants> make_tables(const ClassicOps (&ops)[kClassicVariants],
                                                                     std::index_sequence<I...>) {
  return {make_classic_ops(ops[I])...};
}
const std::array<umn_notifier_ops, kClassicVariants> kRegisterOps =
    make_tables(kRegisterVariants, std::make_index_sequence<kClassicVariants>());
const std::array<umn_notifier_ops, kClassicVariants> kGetOps =
    make_tables(kGetKeys, std::make_index_sequence<kClassicVariants>());

uint32_t umn_state(const Slot& slot) {
  return std::atomic_ref(const_cast<uint32_t&>(slot.sub.state)).load(std::memory_order_acquire);
}
uint32_t expected_umn_state(NotifierState state, uint32_t never_value) {
  switch (state) {
    case NotifierState::kNever:
      return never_value;
    case NotifierState::kRemoved:
      return umn::detail::kStateRemoved;
    case NotifierState::kInTree:
      return umn::detail::kStateInTree;
    case NotifierState::kPendingInsert:
      return umn::detail::kStatePendingInsert;
    case NotifierState::kPendingRemove:
      return umn::detail::kStatePendingRemove;
  }
  return 0;
}

void diagnostic_hook(void* context, const char* call, const char* message);

class Runner {
 public:
  Runner() : model_(kNotifiers, kRanges, kClassicSlots) {
    for (int i = 0; i < kClassicSlots; ++i) new_classic();
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
    for (int id = 0; id < static_cast<int>(classics_.size()); ++id) {
      ClassicObj* obj = classics_[id];
      obj->awaiting_free = id >= kClassicSlots;  // slots are never given to free_notifier
      obj->in_use = obj->awaiting_free;
      g_pool_awaiting += obj->awaiting_free;
    }
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
  // alloc_notifier of get: the next classic id, or NULL when the input says so.
  umn_notifier* alloc_classic() {
    log(Call{Call::kAlloc, get_key_});
    return alloc_fails_ ? nullptr : &new_classic()->n;
  }

 private:
  ClassicObj* new_classic() {
    ClassicObj* obj = pool_take();
    obj->id = static_cast<int>(classics_.size());
    classics_.push_back(obj);
    return obj;
  }
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
  void op_register(int c, int variant);
  void op_unregister(int id);
  void op_get(int key, bool alloc_fails);
  void op_put(int id);
  void op_query(Query query, uint64_t start, uint64_t end);
  void op_synchronize();
  void run_classic_op(int op, Reader& in);
  void check_frees(bool all_done);
  void settle();
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
  std::vector<ClassicObj*> classics_;  // index = classic id (model.hpp); from the pool
  int get_key_ = 0;                    // the key of the get in progress (for alloc_notifier)
  bool alloc_fails_ = false;           // what alloc_notifier does in that get

  std::vector<uint8_t> decisions_;
  size_t umn_cursor_ = 0, model_cursor_ = 0;
  std::vector<Call> actual_calls_;
  std::mutex diag_lock_;
  std::vector<std::string> actual_diags_;
  std::unordered_map<unsigned long, unsigned long> umn_to_model_, model_to_umn_;
  std::string trace_;

 public:
  // Checks that umn's value u and the model's value m stand in the same relations as all earlier pairs.
  void match_seq(unsigned long u, unsigned long m, const char* what) {
    if ((u & 1) != (m & 1))
      fail(std::string(what) + ": parity differs: umn " + std::to_string(u) + " model " + std::to_string(m));
    auto [it_u, new_u] = umn_to_model_.emplace(u, m);
    auto [it_m, new_m] = model_to_umn_.emplace(m, u);
    if (it_u->second != m || it_m->second != u)
      fail(std::string(what) + ": seq relation broken: umn " + std::to_string(u) + " <-> model " + std::to_string(m) +
           " but earlier umn " + std::to_string(u) + " <-> model " + std::to_string(it_u->second) + " and model " +
           std::to_string(m) + " <-> umn " + std::to_string(it_m->second));
  }
};

void diagnostic_hook(void* context, const char* call, const char*) { static_cast<Runner*>(context)->add_diag(call); }

Slot& slot_of(umn_interval_notifier* sub) { return *reinterpret_cast<Slot*>(sub); }

bool cb_invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
  Runner& runner = *g_runner;
  const Decision d = runner.next_decision_umn();
  runner.log(Call{Call::kInvalidate, slot_of(sub).index, range->start, range->end, static_cast<int>(range->event),
                  umn_notifier_range_blockable(range), cur_seq, false});
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

void log_classic(Call::Kind kind, umn_notifier* sub, uint64_t start = 0, uint64_t end = 0,
                 const umn_notifier_range* range = nullptr) {
  Call call{kind, classic_of(sub).id, start, end};
  if (range != nullptr) {
    call.event = static_cast<int>(range->event);
    call.blockable = umn_notifier_range_blockable(range);
  }
  g_runner->log(call);
}
void cb_release(umn_notifier* sub, umn_mm*) { log_classic(Call::kRelease, sub); }
int cb_range_start(umn_notifier* sub, const umn_notifier_range* range) {
  const Decision d = g_runner->next_decision_umn();
  log_classic(Call::kClassicStart, sub, range->start, range->end, range);
  return umn_model::classic_start_return(d);
}
void cb_range_end(umn_notifier* sub, const umn_notifier_range* range) {
  log_classic(Call::kClassicEnd, sub, range->start, range->end, range);
}
int cb_clear_flush_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) {
  const Decision d = g_runner->next_decision_umn();
  log_classic(Call::kClearFlushYoung, sub, start, end);
  return umn_model::young_return(d);
}
int cb_clear_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) {
  const Decision d = g_runner->next_decision_umn();
  log_classic(Call::kClearYoung, sub, start, end);
  return umn_model::young_return(d);
}
int cb_test_young(umn_notifier* sub, umn_mm*, uint64_t address) {
  const Decision d = g_runner->next_decision_umn();
  log_classic(Call::kTestYoung, sub, address);
  return umn_model::young_return(d);
}
void cb_arch(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) { log_classic(Call::kArch, sub, start, end); }
umn_notifier* cb_alloc(umn_mm*) { return g_runner->alloc_classic(); }
// free_notifier: on liburcu's callback thread, or inline when get's registration fails. The input that
// got the notifier may have ended: no Runner here.
void cb_free(umn_notifier* sub) {
  if (!classic_of(sub).freed.exchange(true)) return;
  std::fprintf(stderr, "\n=== umn differs from the model ===\n--> free_notifier called twice for c%d\n",
               classic_of(sub).id);
  std::abort();
}

std::string describe(const Call& c) {
  static const char* kKinds[] = {"invalidate", "invalidate_start", "invalidate_finish", "range_start",
                                 "range_end",  "release",          "clear_flush_young", "clear_young",
                                 "test_young", "arch_invalidate",  "alloc_notifier"};
  const bool classic = c.kind >= Call::kClassicStart;
  std::string s = std::string(kKinds[c.kind]) +
                  (c.kind == Call::kAlloc ? "(key "
                   : classic              ? "(c"
                                          : "(n") +
                  std::to_string(c.notifier);
  if (classic && c.kind != Call::kAlloc && c.kind != Call::kRelease)
    s += ", [" + std::to_string(c.start) + "," + std::to_string(c.end) + ")" +
         (c.kind <= Call::kClassicEnd ? " ev " + std::to_string(c.event) + (c.blockable ? " blockable" : " nonblock")
                                      : std::string());
  else if (!classic && c.kind != Call::kFinish)
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
    same = e.kind == a.kind && e.notifier == a.notifier && e.start == a.start && e.end == a.end && e.event == a.event &&
           e.blockable == a.blockable && e.record == a.record;
    if (same && (e.kind == Call::kInvalidate || e.kind == Call::kStart))
      match_seq(a.cur_seq, e.cur_seq, "callback cur_seq");
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
  settle();  // a woken remove may have dropped the last reference
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
    const bool never_ok = state == NotifierState::kNever && actual_state != umn::detail::kStateRemoved &&
                          actual_state != umn::detail::kStateInTree &&
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
  umn::detail::MutexLock guard(subs->lock);
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
  // The classic list (newest first), each linked notifier's users, and the registrations count.
  std::vector<int> linked;
  for (umn_notifier* sub = umn::detail::classic_first(subs->classic); sub != nullptr;
       sub = umn::detail::classic_next(sub))
    linked.push_back(classic_of(sub).id);
  if (linked != model_.classic_list()) fail("classic list (newest first) differs from the model");
  for (int id : linked)
    if (classics_[id]->n.users != model_.classic_users(id))
      fail("c" + std::to_string(id) + " users: umn " + std::to_string(classics_[id]->n.users) + " model " +
           std::to_string(model_.classic_users(id)));
  if (subs->classic_registrations != model_.classic_registrations())
    fail("classic registrations: umn " + std::to_string(subs->classic_registrations) + " model " +
         std::to_string(model_.classic_registrations()));
}

// A free_notifier before the last put is a divergence (all_done: after synchronize, every free the
// model queued must have run too).
void Runner::check_frees(bool all_done) {
  for (int id = kClassicSlots; id < static_cast<int>(classics_.size()); ++id) {
    const bool allowed = model_.free_allowed(id);
    if (classics_[id]->freed && !allowed) fail("free_notifier(c" + std::to_string(id) + ") before its last put");
    if (all_done && allowed && !classics_[id]->freed)
      fail("free_notifier(c" + std::to_string(id) + ") has not run after umn_notifier_synchronize");
  }
}

// After each operation: the address space is dead once no reference is left but queued frees (umn
// frees it on liburcu's thread after them, at any moment: the harness must not touch it any more).
void Runner::settle() { mm_dead_ = !model_.mm_alive() || model_.mm_held_only_by_frees(); }

void Runner::op_insert(int n, uint64_t start, uint64_t length, OpsKind ops) {
  bool would_block;
  const int expected = model_.insert(n, start, length, ops, &would_block);
  trace("insert(n" + std::to_string(n) + ", " + std::to_string(start) + ", len " + std::to_string(length) + ", ops " +
        std::to_string(static_cast<int>(ops)) + ")" + (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  const int actual = umn_interval_notifier_insert(&slots_[n]->sub, mm_, start, length, &kOps[static_cast<int>(ops)]);
  if (actual != expected) fail("insert returned " + std::to_string(actual) + ", model " + std::to_string(expected));
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
  std::vector<Call> expected;
  std::vector<int> woken;
  model_.range_end(r, &expected, &woken);
  trace("range_end(r" + std::to_string(r) + ")");
  umn_notifier_invalidate_range_end(&ranges_[r]);
  compare_calls(expected);
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
  const bool actual =
      check ? umn_interval_check_retry(&slot.sub, slot.token_umn) : umn_interval_read_retry(&slot.sub, slot.token_umn);
  trace(std::string(check ? "check_retry" : "read_retry") + "(n" + std::to_string(n) +
        ") = " + (actual ? "true" : "false"));
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
}

void Runner::op_register(int c, int variant) {
  const bool registered = model_.classic_registered(c);
  bool would_block;
  const int expected = model_.classic_register(c, kRegisterVariants[variant], &would_block);
  trace("register(c" + std::to_string(c) + ", ops " + std::to_string(variant) + ")" +
        (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  umn_notifier& sub = classics_[c]->n;
  if (!registered)  // a live notifier's ops stay as they are: a second register is diagnosed
    sub.ops = kRegisterVariants[variant] == co::kNullOps ? nullptr : &kRegisterOps[variant];
  const int actual = umn_notifier_register(&sub, mm_);
  if (actual != expected) fail("register returned " + std::to_string(actual) + ", model " + std::to_string(expected));
}

void Runner::op_unregister(int id) {
  std::vector<Call> expected;
  model_.classic_unregister(id, &expected);
  trace("unregister(c" + std::to_string(id) + ")");
  umn_notifier_unregister(&classics_[id]->n, mm_);
  compare_calls(expected);
}

void Runner::op_get(int key, bool alloc_fails) {
  std::vector<Call> expected;
  bool would_block;
  const int expected_id = model_.get(key, kGetKeys[key], alloc_fails, &expected, &would_block);
  trace("get(key " + std::to_string(key) + (alloc_fails ? ", alloc fails)" : ")") +
        (would_block ? " skipped: would block" : ""));
  if (would_block) {
    g_stats.skipped++;
    return;
  }
  get_key_ = key;
  alloc_fails_ = alloc_fails;
  umn_notifier* sub = umn_notifier_get(&kGetOps[key], mm_);
  const bool failed = UMN_IS_ERR_OR_NULL(sub);
  const int actual = failed ? static_cast<int>(UMN_PTR_ERR(sub)) : classic_of(sub).id;
  compare_calls(expected);
  if (actual != expected_id)
    fail("get returned " + (failed ? "error " + std::to_string(-actual) : "c" + std::to_string(actual)) + ", model " +
         std::to_string(expected_id));
  if (!failed && (sub->mm != mm_ || sub->ops != &kGetOps[key])) fail("get: notifier's mm or ops not set");
}

void Runner::op_put(int id) {
  model_.put(id);
  trace("put(c" + std::to_string(id) + ")");
  umn_notifier_put(&classics_[id]->n);
}

void Runner::op_query(Query query, uint64_t start, uint64_t end) {
  std::vector<Call> expected;
  const int expected_ret = model_.query(query, start, end, model_decide(), &expected);
  static const char* kNames[] = {"clear_flush_young", "clear_young", "test_young", "arch_invalidate"};
  trace(std::string(kNames[static_cast<int>(query)]) + "(" + std::to_string(start) + ", " + std::to_string(end) + ")");
  int actual = 0;
  switch (query) {
    case Query::kClearFlushYoung:
      actual = umn_notifier_clear_flush_young(mm_, start, end);
      break;
    case Query::kClearYoung:
      actual = umn_notifier_clear_young(mm_, start, end);
      break;
    case Query::kTestYoung:
      actual = umn_notifier_test_young(mm_, start);
      break;
    case Query::kArch:
      umn_notifier_arch_invalidate_secondary_tlbs(mm_, start, end);
      break;
  }
  compare_calls(expected);
  if (actual != expected_ret)
    fail("query returned " + std::to_string(actual) + ", model " + std::to_string(expected_ret));
}

void Runner::op_synchronize() {
  std::vector<int> freed;
  model_.synchronize(&freed);
  std::string line = "synchronize: frees";
  for (int id : freed) line += " c" + std::to_string(id);
  trace(line);
  umn_notifier_synchronize();
  check_frees(true);
}

// The classic operations (op bytes 16..23 modulo 32). Targets of unregister and put are slots or
// allocated objects, so that both misuses (unregister of a gotten notifier, put of a registered one)
// are fuzzed too.
void Runner::run_classic_op(int op, Reader& in) {
  const uint8_t a = in.next();
  const int allocated = static_cast<int>(classics_.size()) - kClassicSlots;
  auto pick = [&](bool want_allocated) {
    return want_allocated && allocated > 0 ? kClassicSlots + (a >> 1) % allocated : (a >> 1) % kClassicSlots;
  };
  switch (op) {
    case 0:
      op_register(a % kClassicSlots, (a >> 2) % kClassicVariants);
      break;
    case 1:
      op_unregister(pick((a & 1) != 0 && (a & 0x80) != 0));
      break;  // mostly slots
    case 2:
    case 6:
      op_get(a % kClassicVariants, (a & 0xc0) == 0xc0);
      break;
    case 3:
    case 7:
      op_put(pick((a & 1) == 0 || (a & 0x80) != 0));
      break;  // mostly allocated objects
    case 4: {
      const uint64_t start = decode_start(in.next());
      const uint64_t end = start + decode_length(in.next());
      read_decisions(in);
      op_query(static_cast<Query>(a % 4), start, end);
      break;
    }
    default:
      // umn_notifier_synchronize waits ~10 ms for liburcu's callback thread: now and then only.
      if (a % 32 == 0)
        op_synchronize();
      else
        op_register(a % kClassicSlots, (a >> 2) % kClassicVariants);
      break;
  }
}

void Runner::run(Reader& in) {
  const uint8_t mode = in.next();
  const bool destroy_first = (mode & 1) != 0;
  // Most inputs start with one notifier, so that the address space has subscriptions before the first
  // range (ranges started before that are "bare" and make inserts wait, which a single thread skips).
  if ((mode & 2) == 0) op_insert(0, 0x2000, 0x3000, OpsKind::kInvalidate);
  while (!in.done() && !mm_dead_) {
    const uint8_t op = in.next();
    // Op bytes 16..23 (mod 32) are the classic operations; every other byte means op % 16, as before they
    // existed (so the older corpus entries decode as they did).
    if (op % 32 >= 16 && op % 32 < 24) {
      run_classic_op(op % 32 - 16, in);
      g_stats.ops++;
      g_stats.classic_ops++;
      settle();
      check_frees(false);
      check_state();
      continue;
    }
    switch (op % 16) {
      case 0:
      case 1: {
        const int n = in.next() % kNotifiers;
        const uint64_t start = decode_start(in.next());
        const uint64_t length = decode_length(in.next());
        op_insert(n, start, length, decode_ops(in.next()));
        break;
      }
      case 2:
        op_remove(in.next() % kNotifiers);
        break;
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
      case 8:
        op_range_end(in.next() % kRanges);
        break;
      case 9:
      case 10:
        op_read_begin(in.next() % kNotifiers);
        break;
      case 11:
      case 12:
        op_retry(in.next() % kNotifiers, false);
        break;
      case 13:
        op_retry(in.next() % kNotifiers, true);
        break;
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
    settle();  // the last remove after a destroy frees the address space
    check_frees(false);
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
      settle();
      check_state();
    }
  }
  // Classic registrations: unregister the slots, put every user of every gotten notifier.
  for (int id = 0; id < static_cast<int>(classics_.size()) && !mm_dead_; ++id) {
    while (!mm_dead_ && model_.classic_registered(id)) {
      if (id < kClassicSlots)
        op_unregister(id);
      else
        op_put(id);
      settle();
      check_state();
    }
  }
  if (!mm_dead_) {
    op_release_or_destroy(true);
    check_state();
  }
  if (!mm_dead_) fail("the address space is still referenced after every notifier was removed");
  check_frees(false);
  for (auto& slot : slots_)
    if (slot->remover.joinable()) fail("a remove never returned");
}

}  // namespace

void run_input(const uint8_t* data, size_t size) {
  {
    Reader in(data, size);
    Runner runner;
    runner.run(in);
    if (std::getenv("UMN_FUZZ_TRACE") != nullptr) runner.print_trace();
  }
  g_stats.inputs++;
  if (g_pool_awaiting + kPoolReserve >= kPool) reap();
}

void reap() {
  umn_notifier_synchronize();  // every free queued by a last put has run
  for (ClassicObj& obj : g_pool) {
    if (!obj.awaiting_free) continue;
    if (!obj.freed.load()) {
      std::fprintf(stderr,
                   "\n=== umn differs from the model ===\n--> free_notifier(c%d) never ran after its "
                   "last put (and umn_notifier_synchronize)\n",
                   obj.id);
      std::abort();
    }
    obj.awaiting_free = obj.in_use = false;
  }
  g_pool_awaiting = 0;
}

const Stats& stats() { return g_stats; }

}  // namespace umn_fuzz
