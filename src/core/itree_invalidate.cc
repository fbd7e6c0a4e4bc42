// itree_invalidate.cc - the multi-writer seqcount over the interval tree, and the two-pass walk.
//
// Algorithm (the kernel's mn_itree_* design, see docs/locking.md):
//   1. Epoch start, under the lock: active++; if a notifier overlaps the range, seq |= 1 (the tree is
//      frozen from here until the last range of the epoch ends); cur_seq = seq.
//   2. Walk, without the lock: for each overlapping notifier in ascending start order, the first pass
//      (invalidate, or invalidate_start which may hand back a finish record). Finish records are appended
//      to a local queue through their own link: no allocation.
//   3. Second pass, without the lock: every queued record's invalidate_finish, in first-pass order.
//   4. Epoch end, under the lock: active--; when it reaches 0 with seq odd, seq++ (even again), apply
//      the deferred inserts and removes, and wake the waiters.
// Ordering guarantees:
//   (a) A notifier's callbacks all see the same odd cur_seq within one epoch, and seq never decreases.
//   (b) The tree is not modified while seq is odd, so the lock-free walk in (2) is safe: inserts and
//       removes that arrive meanwhile go on the deferred list, and remove() waits for (4).
//   (c) (3) runs before the range start returns, hence before its (4).
#include "core/fork.hpp"
#include "core/itree_invalidate.hpp"

#include <atomic>
#include <new>

#include "base/check.hpp"
#include "core/query.hpp"

namespace umn::detail {
namespace {

umn_interval_notifier* notifier_of(umn_interval_tree_node* node) noexcept {
  // interval_tree is the first member of struct umn_interval_notifier (checked in interval_notifier.cc).
  return reinterpret_cast<umn_interval_notifier*>(node);
}

// Second-pass records in first-pass order; links through the records themselves. A record handed out
// twice in one walk (misuse: "one record serves one invalidation at a time") relinks itself: into a
// cycle when the hand-outs are consecutive, else cutting off the records queued between them. run()
// therefore follows at most as many links as were pushed and diagnoses a chain that ends early or goes
// on: O(1) per record, and the second pass always ends.
class FinishQueue {
 public:
  void push(umn_interval_notifier_finish* finish) noexcept {
    finish->link = nullptr;
    *tail_ = finish;
    tail_ = &finish->link;
    queued_++;
  }
  // Forgets every queued record of sub (abandoned: its records may be freed). Also called while run()
  // is in a callback (the callback destroyed another notifier): run() keeps only the records not yet
  // called in the queue, so this edits exactly the records still to come.
  void drop(const umn_interval_notifier* sub) noexcept {
    umn_interval_notifier_finish** link = &head_;
    size_t left = queued_;
    for (; *link != nullptr && left > 0; --left) {
      if ((*link)->notifier == sub) {
        *link = (*link)->link;
        queued_--;
      } else {
        link = &(*link)->link;
      }
    }
    tail_ = link;
  }
  // Calls every record's invalidate_finish once, in push order. Each record leaves the queue before its
  // call (the callback may reuse it, or drop() later records), so nothing is read from it afterwards.
  void run() noexcept {
    while (head_ != nullptr && queued_ > 0) {
      umn_interval_notifier_finish* finish = head_;
      head_ = finish->link;
      queued_--;
      finish->notifier->ops->invalidate_finish(finish);
    }
    // A WARN: an invalidate_start callback broke its own contract, not the caller of range_start.
    UMN_WARN_ON(head_ != nullptr || queued_ != 0, "umn_notifier_invalidate_range_start",
                "a finish record was handed out twice in one invalidation (some second passes were lost)");
    head_ = nullptr;
    tail_ = &head_;
    queued_ = 0;
  }

 private:
  umn_interval_notifier_finish* head_ = nullptr;
  umn_interval_notifier_finish** tail_ = &head_;
  size_t queued_ = 0;
};

// The interval-tree walks this thread is running, innermost first (a callback may start another
// invalidation, e.g. through the process hooks). Frames live on the walkers' stacks: no allocation, and
// initial-exec TLS so that no access allocates either. A frame names the notifier whose callback runs and
// the walk's second-pass queue, so that itree_abandon can take a notifier out of this thread's walks.
struct WalkFrame {
  const Subscriptions* subs;
  WalkFrame* outer;
  umn_interval_notifier* current;  // the notifier being called (the walk goes on from its tree node)
  FinishQueue* finishes;
};
[[gnu::tls_model("initial-exec")]] thread_local WalkFrame* t_walks = nullptr;

class WalkScope {
 public:
  WalkScope(const Subscriptions& subs, FinishQueue* finishes) noexcept : frame_{&subs, t_walks, nullptr, finishes} {
    t_walks = &frame_;
  }
  ~WalkScope() { t_walks = frame_.outer; }
  WalkScope(const WalkScope&) = delete;
  WalkScope& operator=(const WalkScope&) = delete;
  WalkFrame& frame() noexcept { return frame_; }

 private:
  WalkFrame frame_;
};

// A notifier abandoned in a walk (itree_abandon) is replaced in the tree by a tombstone until the epoch
// ends: same interval, these ops, which do nothing.
bool tombstone_invalidate(umn_interval_notifier*, const umn_notifier_range*, unsigned long) noexcept { return true; }
constexpr umn_interval_notifier_ops kTombstoneOps = {&tombstone_invalidate, nullptr, nullptr};

// Step 1. Return: the first overlapping node (cur_seq set, odd), or nullptr.
umn_interval_tree_node* epoch_start(Subscriptions& subs, uint64_t start, uint64_t last,
                            unsigned long* cur_seq) noexcept {
  MutexLock guard(subs.lock);
  subs.active++;
  if (subs.is_process) t_own_process_ranges.active++;  // core/fork.hpp
  umn_interval_tree_node* first = subs.itree.first_overlap(start, last);
  unsigned long seq = subs.invalidate_seq.load(std::memory_order_relaxed);
  if (first != nullptr && (seq & 1) == 0) {
    seq |= 1;
    // Read lock-free by read_begin; the callbacks' set_seq (release) orders it for those readers.
    subs.invalidate_seq.store(seq, std::memory_order_release);
  }
  *cur_seq = seq;
  return first;
}

// Runs one notifier's first pass. Return: the callback's verdict; a record to queue in *finish.
bool first_pass(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                umn_interval_notifier_finish** finish) noexcept {
  const umn_interval_notifier_ops* ops = sub->ops;
  *finish = nullptr;
  if (ops->invalidate_start == nullptr) return ops->invalidate(sub, range, cur_seq);
  bool ok = ops->invalidate_start(sub, range, cur_seq, finish);
  if (!ok) *finish = nullptr;  // a failed first pass gets no second pass
  return ok;
}

// Applies the deferred inserts and removes. Called under subs.lock with seq just turned even.
// Return: the tombstones it took out of the tree, chained through deferred_next, to free after the lock.
umn_interval_notifier* apply_deferred(Subscriptions& subs) noexcept UMN_REQUIRES(subs.lock) {
  umn_interval_notifier* sub = subs.deferred;
  umn_interval_notifier* tombstones = nullptr;
  subs.deferred = nullptr;
  while (sub != nullptr) {
    umn_interval_notifier* next = sub->deferred_next;
    sub->deferred_next = nullptr;
    if (sub->ops == &kTombstoneOps) {
      subs.itree.erase(&sub->interval_tree);
      sub->deferred_next = tombstones;
      tombstones = sub;
      sub = next;
      continue;
    }
    if (sub->state == kStatePendingInsert) {
      const bool indexed = subs.itree.insert(&sub->interval_tree);  // reserved at insert: cannot fail
      UMN_DCHECK(indexed);
      (void)indexed;
      subs.pending_inserts--;
      set_state(sub, kStateInTree);
    } else {
      UMN_DCHECK(sub->state == kStatePendingRemove);
      subs.itree.erase(&sub->interval_tree);
      set_state(sub, kStateRemoved);  // its remover wakes below and drops the mm reference
    }
    sub = next;
  }
  return tombstones;
}

// Frees tombstones (apply_deferred's result), each with the address-space reference it held.
void free_tombstones(umn_interval_notifier* tombstone) noexcept {
  while (tombstone != nullptr) {
    umn_interval_notifier* next = tombstone->deferred_next;
    umn_mm* mm = tombstone->mm;
    delete tombstone;
    mm_put(mm);
    tombstone = next;
  }
}

}  // namespace

int itree_invalidate(Subscriptions& subs, const umn_notifier_range* range, uint64_t last) noexcept {
  unsigned long cur_seq;
  FinishQueue finishes;
  int err = 0;
  const bool blockable = umn_notifier_range_blockable(range);
  WalkScope walking(subs, &finishes);
  WalkFrame& frame = walking.frame();
  for (umn_interval_tree_node* node = epoch_start(subs, range->start, last, &cur_seq); node != nullptr;
       node = IntervalTree::next_overlap(&frame.current->interval_tree, range->start, last)) {
    umn_interval_notifier* sub = notifier_of(node);
    umn_interval_notifier_finish* finish;
    frame.current = sub;
    const bool ok = first_pass(sub, range, cur_seq, &finish);
    if (frame.current != sub) finish = nullptr;  // abandoned by its own callback: so is its record
    if (ok) {
      if (finish != nullptr) {
        finish->notifier = sub;
        finishes.push(finish);
      }
      continue;
    }
    if (UMN_WARN_ON(blockable, "umn_notifier_invalidate_range_start",
                    "an interval notifier failed a blockable invalidation"))
      continue;
    err = -EAGAIN;
    break;
  }
  finishes.run();
  if (err != 0) itree_invalidate_end(subs);  // the caller must not call range_end after -EAGAIN
  return err;
}

bool itree_walking(const Subscriptions& subs) noexcept {
  for (const WalkFrame* frame = t_walks; frame != nullptr; frame = frame->outer)
    if (frame->subs == &subs) return true;
  return false;
}

const void* itree_walk_mark() noexcept { return t_walks; }

void itree_walk_restore(const void* mark) noexcept {
  t_walks = static_cast<WalkFrame*>(const_cast<void*>(mark));
}

namespace {

// itree_invalidate_end under subs.lock. Return: the tombstones to free once the lock is dropped.
umn_interval_notifier* end_locked(Subscriptions& subs) noexcept UMN_REQUIRES(subs.lock) {
  UMN_DCHECK(subs.active > 0);
  subs.active--;
  if (subs.is_process) t_own_process_ranges.active--;
  unsigned long seq = subs.invalidate_seq.load(std::memory_order_relaxed);
  if (subs.active > 0 || (seq & 1) == 0) {
    if (subs.active == 0 && subs.waiters > 0) subs.epoch_ended.notify_all();  // registration waiters
    return nullptr;
  }
  // Pairs with the acquire loads in read_begin: a reader that sees the even seq sees the epoch's end.
  subs.invalidate_seq.store(seq + 1, std::memory_order_release);
  umn_interval_notifier* tombstones = apply_deferred(subs);
  if (subs.waiters > 0) subs.epoch_ended.notify_all();
  return tombstones;
}

}  // namespace

void itree_invalidate_end(Subscriptions& subs) noexcept {
  umn_interval_notifier* tombstones;
  {
    MutexLock guard(subs.lock);
    tombstones = end_locked(subs);
  }
  free_tombstones(tombstones);
}

bool itree_abandon(umn_interval_notifier* sub) noexcept {
  Subscriptions& subs = *subscriptions_of(sub->mm);
  if (!itree_walking(subs)) return false;
  auto* tombstone = new (std::nothrow) umn_interval_notifier{};
  if (tombstone == nullptr) return false;
  {
    SignalsHeld hold(sub->mm);
    MutexLock guard(subs.lock);
    if (std::atomic_ref(sub->state).load(std::memory_order_relaxed) == kStateInTree) {
      tombstone->interval_tree.start = sub->interval_tree.start;
      tombstone->interval_tree.last = sub->interval_tree.last;
      tombstone->ops = &kTombstoneOps;
      tombstone->mm = sub->mm;  // sub's reference on the address space passes to the tombstone
      subs.itree.replace(&sub->interval_tree, &tombstone->interval_tree);
      set_state(sub, kStateRemoved);
      set_state(tombstone, kStatePendingRemove);  // leaves the tree when the epoch ends
      tombstone->deferred_next = subs.deferred;
      subs.deferred = tombstone;
      for (WalkFrame* frame = t_walks; frame != nullptr; frame = frame->outer) {
        if (frame->subs != &subs) continue;
        if (frame->current == sub) frame->current = tombstone;
        frame->finishes->drop(sub);
      }
      return true;
    }
  }
  delete tombstone;
  return false;
}

}  // namespace umn::detail
