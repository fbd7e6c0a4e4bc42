// model.cc - the reference model (see model.hpp). Each method is umn's documented behaviour, step by
// step, in the order umn.h and docs/semantics.md 2.2-2.10 state it. No cleverness here:
// when this file and umn disagree, read this file first.
#include "model.hpp"

#include <algorithm>

namespace umn_model {

namespace {
constexpr const char* kInsert = "umn_interval_notifier_insert";
constexpr const char* kRemove = "umn_interval_notifier_remove";
constexpr const char* kStart = "umn_notifier_invalidate_range_start";
constexpr const char* kStartNonblock = "umn_notifier_invalidate_range_start_nonblock";
constexpr const char* kDestroy = "umn_mm_destroy";
constexpr const char* kRegister = "umn_notifier_register";
constexpr const char* kUnregister = "umn_notifier_unregister";
constexpr const char* kGet = "umn_notifier_get";
constexpr const char* kPut = "umn_notifier_put";

bool inserted(NotifierState state) {
  return state == NotifierState::kInTree || state == NotifierState::kPendingInsert ||
         state == NotifierState::kPendingRemove;
}
void erase_value(std::vector<int>* list, int value) { list->erase(std::find(list->begin(), list->end(), value)); }
}  // namespace

const char* to_string(NotifierState state) {
  switch (state) {
    case NotifierState::kNever:
      return "never-inserted";
    case NotifierState::kRemoved:
      return "removed";
    case NotifierState::kInTree:
      return "in-tree";
    case NotifierState::kPendingInsert:
      return "pending-insert";
    case NotifierState::kPendingRemove:
      return "pending-remove";
  }
  return "?";
}

Model::Model(int notifiers, int ranges, int classic_slots)
    : notifiers_(notifiers), ranges_(ranges), classics_(classic_slots) {}

void Model::diag(const char* call, const char* kind) { diags_.push_back(std::string(call) + ": " + kind); }

std::vector<std::string> Model::take_diagnostics() {
  std::lock_guard guard(lock_);
  std::vector<std::string> out;
  out.swap(diags_);
  return out;
}

int Model::insert(int n, uint64_t start, uint64_t length, OpsKind ops, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = false;
  Notifier& sub = notifiers_[n];
  if (ops == OpsKind::kNone || ops == OpsKind::kStartNoFinish) {
    diag(kInsert, "bad ops");
    return kEINVAL;
  }
  if (length == 0 || start + (length - 1) < start) return kEOVERFLOW;
  if (inserted(sub.state)) {
    diag(kInsert, "already inserted");
    return kEINVAL;
  }
  if (destroyed_) {
    diag(kInsert, "destroyed");
    return kEINVAL;
  }
  if (!has_subs_) {
    // Creating the subscriptions waits for ranges that started before they existed.
    if (bare_ranges_ > 0) {
      *would_block = true;
      return 0;
    }
    has_subs_ = true;
  }
  if (released_) {
    diag(kInsert, "released");
    return kEINVAL;
  }
  refs_++;
  sub.start = start;
  sub.last = start + (length - 1);
  sub.ops = ops;
  if (active_ > 0 && seq_ % 2 == 1) {
    // Frozen tree: defer; read_begin waits for the epoch to end.
    sub.state = NotifierState::kPendingInsert;
    deferred_.push_back(n);
    sub.seq = seq_;
  } else if (active_ > 0) {
    // Partially excluded: a running range may cover sub without having seen it.
    seq_ |= 1;
    sub.seq = seq_;
    tree_.push_back(n);
    sub.state = NotifierState::kInTree;
  } else {
    sub.seq = seq_ - 1;
    tree_.push_back(n);
    sub.state = NotifierState::kInTree;
  }
  return 0;
}

bool Model::remove(int n) {
  std::lock_guard guard(lock_);
  Notifier& sub = notifiers_[n];
  switch (sub.state) {
    case NotifierState::kNever:
    case NotifierState::kRemoved:
    case NotifierState::kPendingRemove:
      diag(kRemove, "not inserted / removed twice");
      return false;
    case NotifierState::kPendingInsert:
      erase_value(&deferred_, n);  // cancels the insert: no callback ever ran
      sub.state = NotifierState::kRemoved;
      refs_--;
      return false;
    case NotifierState::kInTree:
      break;
  }
  if (seq_ % 2 == 1) {
    sub.state = NotifierState::kPendingRemove;
    deferred_.push_back(n);
    waiting_removers_.push_back(n);
    return true;
  }
  erase_value(&tree_, n);
  sub.state = NotifierState::kRemoved;
  refs_--;
  return false;
}

unsigned long Model::read_begin(int n, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = notifiers_[n].seq == seq_;
  return notifiers_[n].seq;
}

bool Model::read_retry(int n, unsigned long seq) {
  std::lock_guard guard(lock_);
  return notifiers_[n].seq != seq;
}

int Model::invalidate_locked(uint64_t start, uint64_t last, int event, bool blockable, uint64_t end,
                             const Decide& decide, std::vector<Call>* calls) {
  active_++;
  std::vector<int> hits;
  for (int n : tree_)
    if (notifiers_[n].start <= last && start <= notifiers_[n].last) hits.push_back(n);
  // Ascending start; equal starts in the order they entered the tree.
  std::stable_sort(hits.begin(), hits.end(), [&](int a, int b) { return notifiers_[a].start < notifiers_[b].start; });
  if (!hits.empty() && seq_ % 2 == 0) seq_ |= 1;
  const unsigned long cur_seq = seq_;
  std::vector<int> finishes;
  int err = 0;
  for (int n : hits) {
    Notifier& sub = notifiers_[n];
    const Decision d = decide(n);
    const bool two_pass = sub.ops != OpsKind::kInvalidate;
    Call call{two_pass ? Call::kStart : Call::kInvalidate,
              n,
              start,
              end,
              event,
              blockable,
              cur_seq,
              two_pass && d.ok && d.record};
    calls->push_back(call);
    if (d.set_seq) sub.seq = cur_seq;
    if (call.record) finishes.push_back(n);
    if (d.ok) continue;
    if (blockable) {
      diag(kStart, "blockable invalidation failed");
      continue;
    }
    err = kEAGAIN;
    break;
  }
  for (int n : finishes) calls->push_back(Call{Call::kFinish, n});
  return err;
}

void Model::end_locked(std::vector<int>* woken) {
  active_--;
  if (active_ > 0 || seq_ % 2 == 0) return;
  seq_++;
  for (auto it = deferred_.rbegin(); it != deferred_.rend(); ++it) {
    Notifier& sub = notifiers_[*it];
    if (sub.state == NotifierState::kPendingInsert) {
      tree_.push_back(*it);
      sub.state = NotifierState::kInTree;
    } else {
      erase_value(&tree_, *it);
      sub.state = NotifierState::kRemoved;
    }
  }
  deferred_.clear();
  for (int n : waiting_removers_) {
    woken->push_back(n);
    refs_--;
  }
  waiting_removers_.clear();
}

int Model::range_start(int r, uint64_t start, uint64_t end, int event, bool blockable, const Decide& decide,
                       std::vector<Call>* calls) {
  std::lock_guard guard(lock_);
  Range& range = ranges_[r];
  range = Range{};
  if (start >= end) {
    diag(blockable ? kStart : kStartNonblock, "start >= end");
    return kEINVAL;
  }
  if (!has_subs_) {
    range.bare = true;
    bare_ranges_++;
    return 0;
  }
  range.start = start;
  range.end = end;
  range.event = event;
  range.blockable = blockable;
  int err = invalidate_locked(start, end - 1, event, blockable, end, decide, calls);
  if (err == 0 && !classic_list_.empty()) {
    if (classic_start_locked(range, decide, calls))
      err = kEAGAIN;
    else
      range.classic_started = true;
  }
  if (err != 0) {
    std::vector<int> woken;  // cannot wake anyone: this range opened the epoch it ends
    end_locked(&woken);
    range = Range{};
    return err;
  }
  range.itree_started = true;
  return 0;
}

void Model::range_end(int r, std::vector<Call>* calls, std::vector<int>* woken) {
  std::lock_guard guard(lock_);
  Range& range = ranges_[r];
  if (range.bare) bare_ranges_--;
  if (range.itree_started) end_locked(woken);
  if (range.classic_started) classic_ends_locked(range, calls);
  range = Range{};
}

// ---- classic notifiers ----

bool Model::classic_start_locked(const Range& range, const Decide& decide, std::vector<Call>* calls) {
  // Every notifier's start, newest first; a failure does not stop the walk.
  bool failed = false;
  for (int id : classic_list_) {
    const Classic& c = classics_[id];
    if ((c.ops & kHasStart) == 0) continue;
    const int ret = classic_start_return(decide(id));
    calls->push_back(Call{Call::kClassicStart, id, range.start, range.end, range.event, range.blockable});
    if (ret == 0) continue;
    if ((c.ops & kHasEnd) != 0) diag(kStart, "a notifier that can fail also has invalidate_range_end");
    if (range.blockable) {
      diag(kStart, "failed a blockable range");  // treated as success
      continue;
    }
    failed = true;
  }
  // A non-blockable failure: every end is called (the successful starts expect theirs).
  if (failed) classic_ends_locked(range, calls);
  return failed;
}

void Model::classic_ends_locked(const Range& range, std::vector<Call>* calls) {
  for (int id : classic_list_)
    if ((classics_[id].ops & kHasEnd) != 0)
      calls->push_back(Call{Call::kClassicEnd, id, range.start, range.end, range.event, range.blockable});
}

void Model::classic_link_locked(int id) {
  Classic& c = classics_[id];
  c.state = ClassicState::kRegistered;
  c.has_mm = true;
  c.claimed = false;
  c.users = 1;
  classic_list_.insert(classic_list_.begin(), id);  // newest first
  registrations_++;
  refs_++;
}

void Model::classic_unlink_locked(int id) {
  auto it = std::find(classic_list_.begin(), classic_list_.end(), id);
  if (it != classic_list_.end()) classic_list_.erase(it);  // teardown may have unlinked it already
  registrations_--;
}

int Model::classic_register(int c, ClassicOps ops, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = false;
  Classic& sub = classics_[c];
  if (sub.state == ClassicState::kRegistered) {  // its ops (not `ops`) passed the checks below
    diag(kRegister, "already registered");
    return kEINVAL;
  }
  if ((ops & kNullOps) != 0) {
    diag(kRegister, "NULL ops");
    return kEINVAL;
  }
  if ((ops & kHasArch) != 0 && (ops & (kHasStart | kHasEnd)) != 0) {
    diag(kRegister, "arch_invalidate_secondary_tlbs with invalidate_range_start/end");
    return kEINVAL;
  }
  // Waits for bare ranges (creating the subscriptions), then for every range in flight.
  if ((!has_subs_ && bare_ranges_ > 0) || (!released_ && active_ > 0)) {
    *would_block = true;
    return 0;
  }
  has_subs_ = true;
  if (released_) {
    diag(kRegister, "released");
    return kEINVAL;
  }
  sub.ops = ops;
  classic_link_locked(c);
  return 0;
}

void Model::classic_unregister(int id, std::vector<Call>* calls) {
  std::lock_guard guard(lock_);
  Classic& sub = classics_[id];
  if (!sub.has_mm || sub.key >= 0 || sub.state != ClassicState::kRegistered) {
    diag(kUnregister, "not registered / from get");
    return;
  }
  if (!sub.claimed) {
    sub.claimed = true;
    if ((sub.ops & kHasRelease) != 0) calls->push_back(Call{Call::kRelease, id});
  }
  classic_unlink_locked(id);
  sub.state = ClassicState::kUnregistered;
  refs_--;
}

int Model::get(int key, ClassicOps ops, bool alloc_fails, std::vector<Call>* calls, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = false;
  if ((ops & kHasAlloc) == 0 || (ops & kHasFree) == 0) {
    diag(kGet, "ops without alloc_notifier/free_notifier");
    return kEINVAL;
  }
  if (!has_subs_ && bare_ranges_ > 0) {
    *would_block = true;
    return 0;
  }
  has_subs_ = true;
  for (int id : classic_list_) {
    if (classics_[id].key != key) continue;
    classics_[id].users++;
    return id;
  }
  if (released_) return kEINVAL;  // racing teardown is legal: no diagnostic
  const bool bad_ops = (ops & kHasArch) != 0 && (ops & (kHasStart | kHasEnd)) != 0;
  // A fresh notifier registers as register does: it waits for ranges in flight.
  if (!alloc_fails && !bad_ops && active_ > 0) {
    *would_block = true;
    return 0;
  }
  calls->push_back(Call{Call::kAlloc, key});
  if (alloc_fails) return kENOMEM;
  const int id = static_cast<int>(classics_.size());
  classics_.push_back(Classic{});
  Classic& sub = classics_.back();
  sub.ops = ops;
  sub.key = key;
  if (bad_ops) {
    diag(kRegister, "arch_invalidate_secondary_tlbs with invalidate_range_start/end");
    sub.state = ClassicState::kFreed;  // given back to free_notifier at once
    return kEINVAL;
  }
  classic_link_locked(id);
  return id;
}

void Model::put(int id) {
  std::lock_guard guard(lock_);
  Classic& sub = classics_[id];
  if (!sub.has_mm) {
    diag(kPut, "NULL notifier / never registered");
    return;
  }
  if (sub.state == ClassicState::kFreeing || sub.state == ClassicState::kFreed || sub.users == 0) {
    diag(kPut, "put of a notifier with 0 users");
    return;
  }
  if (sub.key < 0 || sub.state != ClassicState::kRegistered) {
    diag(kPut, "not from get");
    return;
  }
  if (--sub.users != 0) return;
  classic_unlink_locked(id);
  sub.state = ClassicState::kFreeing;
  pending_free_.push_back(id);  // its mm reference goes with the free
}

void Model::synchronize(std::vector<int>* freed) {
  std::lock_guard guard(lock_);
  for (int id : pending_free_) {
    classics_[id].state = ClassicState::kFreed;
    freed->push_back(id);
    refs_--;
  }
  pending_free_.clear();
}

int Model::query(Query query, uint64_t start, uint64_t end, const Decide& decide, std::vector<Call>* calls) {
  static constexpr const char* kCalls[] = {"umn_notifier_clear_flush_young", "umn_notifier_clear_young",
                                           "umn_notifier_test_young", "umn_notifier_arch_invalidate_secondary_tlbs"};
  static constexpr ClassicOps kOps[] = {kHasClearFlushYoung, kHasClearYoung, kHasTestYoung, kHasArch};
  static constexpr Call::Kind kKinds[] = {Call::kClearFlushYoung, Call::kClearYoung, Call::kTestYoung, Call::kArch};
  std::lock_guard guard(lock_);
  const int q = static_cast<int>(query);
  if (query != Query::kTestYoung && start >= end) {
    diag(kCalls[q], "start >= end");
    return query == Query::kArch ? 0 : kEINVAL;
  }
  int young = 0;
  for (int id : classic_list_) {
    if ((classics_[id].ops & kOps[q]) == 0) continue;
    calls->push_back(Call{kKinds[q], id, start, query == Query::kTestYoung ? 0 : end});
    if (query == Query::kArch) continue;  // returns nothing
    young |= young_return(decide(id));
    if (young != 0 && query == Query::kTestYoung) break;  // test_young stops at the first young answer
  }
  return young;
}

bool Model::release_would_block_locked() const {
  // Creating the subscriptions waits for bare ranges; the walk waits until no insert is deferred (so
  // that every notifier gets its RELEASE: I-16).
  if (!has_subs_) return bare_ranges_ > 0;
  if (released_) return false;
  for (int n : deferred_)
    if (notifiers_[n].state == NotifierState::kPendingInsert) return true;
  return false;
}

void Model::release_locked(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken) {
  has_subs_ = true;
  if (released_) return;
  released_ = true;
  invalidate_locked(0, UINT64_MAX, kEventRelease, true, UINT64_MAX, decide, calls);
  end_locked(woken);
  // Then every classic notifier's ->release (once per registration), newest first; the list empties.
  for (int id : classic_list_) {
    Classic& sub = classics_[id];
    if (sub.claimed) continue;
    sub.claimed = true;
    if ((sub.ops & kHasRelease) != 0) calls->push_back(Call{Call::kRelease, id});
  }
  classic_list_.clear();
}

void Model::release(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = release_would_block_locked();
  if (!*would_block) release_locked(decide, calls, woken);
}

void Model::destroy(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = !destroyed_ && release_would_block_locked();
  if (*would_block) return;
  if (destroyed_) {
    diag(kDestroy, "destroyed twice");
    return;
  }
  destroyed_ = true;
  if (has_subs_ && (!tree_.empty() || !deferred_.empty())) diag(kDestroy, "notifiers left");
  if (has_subs_ && registrations_ > 0) diag(kDestroy, "classic notifiers still registered");
  release_locked(decide, calls, woken);
  refs_--;
}

NotifierState Model::state(int n) const {
  std::lock_guard guard(lock_);
  return notifiers_[n].state;
}
unsigned long Model::notifier_seq(int n) const {
  std::lock_guard guard(lock_);
  return notifiers_[n].seq;
}
unsigned long Model::seq() const {
  std::lock_guard guard(lock_);
  return seq_;
}
unsigned long Model::active() const {
  std::lock_guard guard(lock_);
  return active_;
}
bool Model::has_subscriptions() const {
  std::lock_guard guard(lock_);
  return has_subs_;
}
bool Model::mm_alive() const {
  std::lock_guard guard(lock_);
  return refs_ > 0;
}
bool Model::mm_held_only_by_frees() const {
  std::lock_guard guard(lock_);
  return !pending_free_.empty() && refs_ == static_cast<long>(pending_free_.size());
}
std::vector<int> Model::classic_list() const {
  std::lock_guard guard(lock_);
  return classic_list_;
}
unsigned Model::classic_users(int id) const {
  std::lock_guard guard(lock_);
  return classics_[id].users;
}
bool Model::classic_registered(int id) const {
  std::lock_guard guard(lock_);
  return classics_[id].state == ClassicState::kRegistered;
}
unsigned long Model::classic_registrations() const {
  std::lock_guard guard(lock_);
  return registrations_;
}
bool Model::free_allowed(int id) const {
  std::lock_guard guard(lock_);
  return classics_[id].state == ClassicState::kFreeing || classics_[id].state == ClassicState::kFreed;
}
bool Model::range_open(int r) const {
  std::lock_guard guard(lock_);
  return ranges_[r].bare || ranges_[r].itree_started;
}
int Model::open_ranges() const {
  std::lock_guard guard(lock_);
  int count = 0;
  for (const Range& range : ranges_) count += range.bare || range.itree_started;
  return count;
}

}  // namespace umn_model
