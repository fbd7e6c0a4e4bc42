// model.cc - the reference model (see model.hpp). Each method is umn's documented behaviour, step by
// step, in the order umn.h and reference/kernel-semantics.md 2.2-2.10 state it. No cleverness here:
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

bool inserted(NotifierState state) {
  return state == NotifierState::kInTree || state == NotifierState::kPendingInsert ||
         state == NotifierState::kPendingRemove;
}
void erase_value(std::vector<int>* list, int value) {
  list->erase(std::find(list->begin(), list->end(), value));
}
}  // namespace

const char* to_string(NotifierState state) {
  switch (state) {
    case NotifierState::kNever: return "never-inserted";
    case NotifierState::kRemoved: return "removed";
    case NotifierState::kInTree: return "in-tree";
    case NotifierState::kPendingInsert: return "pending-insert";
    case NotifierState::kPendingRemove: return "pending-remove";
  }
  return "?";
}

Model::Model(int notifiers, int ranges) : notifiers_(notifiers), ranges_(ranges) {}

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
  std::stable_sort(hits.begin(), hits.end(),
                   [&](int a, int b) { return notifiers_[a].start < notifiers_[b].start; });
  if (!hits.empty() && seq_ % 2 == 0) seq_ |= 1;
  const unsigned long cur_seq = seq_;
  std::vector<int> finishes;
  int err = 0;
  for (int n : hits) {
    Notifier& sub = notifiers_[n];
    const Decision d = decide(n);
    const bool two_pass = sub.ops != OpsKind::kInvalidate;
    Call call{two_pass ? Call::kStart : Call::kInvalidate, n, start, end, event, blockable, cur_seq,
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
  int err = invalidate_locked(start, end - 1, event, blockable, end, decide, calls);
  if (err != 0) {
    std::vector<int> woken;  // cannot wake anyone: this range opened the epoch it ends
    end_locked(&woken);
    return err;
  }
  range.itree_started = true;
  return 0;
}

void Model::range_end(int r, std::vector<int>* woken) {
  std::lock_guard guard(lock_);
  Range& range = ranges_[r];
  if (range.bare) bare_ranges_--;
  if (range.itree_started) end_locked(woken);
  range = Range{};
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
}

void Model::release(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken,
                    bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = release_would_block_locked();
  if (!*would_block) release_locked(decide, calls, woken);
}

void Model::destroy(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken,
                    bool* would_block) {
  std::lock_guard guard(lock_);
  *would_block = !destroyed_ && release_would_block_locked();
  if (*would_block) return;
  if (destroyed_) {
    diag(kDestroy, "destroyed twice");
    return;
  }
  destroyed_ = true;
  if (has_subs_ && (!tree_.empty() || !deferred_.empty())) diag(kDestroy, "notifiers left");
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
