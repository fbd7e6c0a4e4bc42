// interval_notifier.cc - inserting and removing interval notifiers, and the collision-retry read side.
//
// Read side without a lock (the kernel takes the subscription spinlock in read_begin; we do not):
//   read_begin loads the notifier's seq s with acquire, then the address space's seq with acquire.
//   s equal to the address space's seq means "this notifier was invalidated in the epoch that is still
//   open" (or inserted during it): wait under the lock until the seq moves on. Otherwise return s at once,
//   having written nothing. Why the lock-free check is enough:
//   (1) set_seq(cur_seq) is a release store made after the epoch start stored cur_seq into the address
//       space's seq (same thread, or ordered through the lock). A reader that acquires s == cur_seq
//       therefore reads the address space's seq as >= cur_seq: never an older even value that would let
//       it skip the wait while the epoch is open.
//   (2) A reader that loads an older s returns it; the invalidation's set_seq then makes read_retry true.
//   (3) seq values of a notifier are odd and an idle address space's seq is even, so a wait always ends
//       when the epoch closes.
#include <cerrno>
#include <cstddef>
#include <mutex>

#include "base/check.hpp"
#include "core/itree_invalidate.hpp"
#include "core/subscriptions.hpp"

static_assert(offsetof(umn_interval_notifier, interval_tree) == 0, "interval_tree must come first");
static_assert(sizeof(void*) != 8 || sizeof(umn_interval_notifier) <= 88,
              "struct umn_interval_notifier must not outgrow the kernel's 88 bytes");

namespace umn::detail {
namespace {

// state and invalidate_seq are read without the lock by remove's misuse checks and by the read side.
// state is written only under the subscription lock, through set_state's atomic_ref; reads without the
// lock go through an atomic_ref too (state_of), reads under it may be plain (they race with no write:
// invalidate.cc, itree_invalidate.cc). invalidate_seq is only ever accessed through an atomic_ref
// (relaxed unless stated: the lock or set_seq provide the ordering).
uint32_t state_of(const umn_interval_notifier* sub) noexcept {
  return std::atomic_ref(const_cast<umn_interval_notifier*>(sub)->state).load(std::memory_order_relaxed);
}
void set_seq_relaxed(umn_interval_notifier* sub, unsigned long seq) noexcept {
  std::atomic_ref(sub->invalidate_seq).store(seq, std::memory_order_relaxed);
}

bool is_inserted(uint32_t state) noexcept {
  return state == kStateInTree || state == kStatePendingInsert || state == kStatePendingRemove;
}

// Validates insert's arguments. Return: 0 or the errno the insert returns.
int check_insert_args(umn_interval_notifier* sub, umn_mm* mm, uint64_t start, uint64_t length,
                      const umn_interval_notifier_ops* ops, uint64_t* last) noexcept {
  constexpr const char* kCall = "umn_interval_notifier_insert";
  if (!UMN_CHECK(sub != nullptr && mm != nullptr && ops != nullptr, kCall, "NULL argument")) return -EINVAL;
  if (!UMN_CHECK(ops->invalidate != nullptr || ops->invalidate_start != nullptr, kCall,
                 "ops have neither invalidate nor invalidate_start"))
    return -EINVAL;
  if (!UMN_CHECK(ops->invalidate_start == nullptr || ops->invalidate_finish != nullptr, kCall,
                 "ops have invalidate_start but no invalidate_finish"))
    return -EINVAL;
  if (length == 0 || __builtin_add_overflow(start, length - 1, last)) return -EOVERFLOW;
  if (!UMN_CHECK(!is_inserted(state_of(sub)), kCall, "notifier is already inserted")) return -EINVAL;
  if (UMN_WARN_ON(mm->destroyed.load(std::memory_order_relaxed), kCall, "address space was destroyed"))
    return -EINVAL;
  return 0;
}

// Links sub in, or defers it while the tree is frozen. Called under subs.lock.
void link_locked(Subscriptions& subs, umn_interval_notifier* sub) noexcept UMN_REQUIRES(subs.lock) {
  unsigned long seq = subs.invalidate_seq.load(std::memory_order_relaxed);
  if (subs.active > 0 && (seq & 1) != 0) {
    // Frozen: a running walk may be reading the tree. Apply at the epoch's end; readers wait for it.
    set_state(sub, kStatePendingInsert);
    sub->deferred_next = subs.deferred;
    subs.deferred = sub;
    subs.pending_inserts++;  // its index nodes stay reserved until the epoch ends
    set_seq_relaxed(sub, seq);
    return;
  }
  if (subs.active > 0) {
    // Partially excluded: a running range may cover sub without having seen it, so make readers of sub
    // wait for the running ranges to end.
    seq |= 1;
    subs.invalidate_seq.store(seq, std::memory_order_release);  // pairs with read_begin's acquire
    set_seq_relaxed(sub, seq);
  } else {
    set_seq_relaxed(sub, seq - 1);  // odd and not the current seq: read_begin never waits
  }
  const bool indexed = subs.itree.insert(&sub->interval_tree);  // reserved: does not allocate
  UMN_DCHECK(indexed);
  (void)indexed;
  set_state(sub, kStateInTree);
}

// Unlinks sub, or queues its removal while the tree is frozen. Called under subs.lock.
// Return: true when the caller must wait for the epoch to end.
bool unlink_locked(Subscriptions& subs, umn_interval_notifier* sub, unsigned long* wait_seq) noexcept UMN_REQUIRES(subs.lock) {
  unsigned long seq = subs.invalidate_seq.load(std::memory_order_relaxed);
  if (state_of(sub) == kStatePendingInsert) {
    // Cancels an insert that never reached the tree: no callback ever ran, nothing to wait for.
    umn_interval_notifier** link = &subs.deferred;
    while (*link != sub) link = &(*link)->deferred_next;
    *link = sub->deferred_next;
    sub->deferred_next = nullptr;
    subs.pending_inserts--;
    set_state(sub, kStateRemoved);
    return false;
  }
  if ((seq & 1) != 0) {
    set_state(sub, kStatePendingRemove);
    sub->deferred_next = subs.deferred;
    subs.deferred = sub;
    *wait_seq = seq;
    return true;
  }
  subs.itree.erase(&sub->interval_tree);
  set_state(sub, kStateRemoved);
  return false;
}

// Takes subs.lock with enough spare index nodes for one more insert (pending ones included). Index nodes
// are allocated without the lock: an allocation may munmap, and the process hooks would then invalidate
// this very address space. Return: false on allocation failure (lock not held).
// (Not analysed: it locks and unlocks through the caller's guard, which the analysis cannot follow;
// the caller asserts the lock after a true return.)
bool lock_with_reserve(Subscriptions& subs, UniqueLock& guard) noexcept UMN_NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    guard.lock();
    const size_t needed = subs.itree.spare_needed(subs.pending_inserts + 1);
    const size_t spare = subs.itree.spare();
    if (spare >= needed) return true;
    guard.unlock();
    IntervalTree::NodeChain chain = IntervalTree::allocate(needed - spare);
    const bool complete = chain.count == needed - spare;
    guard.lock();
    subs.itree.donate(chain);
    guard.unlock();
    if (!complete) return false;
  }
}

// Spare index nodes beyond what pending inserts need, detached under the lock, freed after it.
IntervalTree::NodeChain surplus_locked(Subscriptions& subs) noexcept UMN_REQUIRES(subs.lock) {
  return subs.itree.take_surplus(2 * subs.itree.spare_needed(subs.pending_inserts + 1));
}

}  // namespace
}  // namespace umn::detail

using namespace umn::detail;

extern "C" {

int umn_interval_notifier_insert(umn_interval_notifier* sub, umn_mm* mm, uint64_t start, uint64_t length,
                                 const umn_interval_notifier_ops* ops) {
  uint64_t last;
  if (int err = check_insert_args(sub, mm, start, length, ops, &last); err != 0) return err;
  Subscriptions* subs = subscriptions_get_or_create(mm);
  if (subs == nullptr) return -ENOMEM;
  sub->mm = mm;
  sub->ops = ops;
  sub->deferred_next = nullptr;
  sub->interval_tree.start = start;
  sub->interval_tree.last = last;
  sub->interval_tree.leaf = nullptr;
  SignalsHeld hold(mm);
  UniqueLock guard(subs->lock, std::defer_lock);
  if (!lock_with_reserve(*subs, guard)) return -ENOMEM;
  subs->lock.assert_held();
  if (UMN_WARN_ON(subs->released, "umn_interval_notifier_insert", "address space was released")) return -EINVAL;
  mm_get(mm);
  link_locked(*subs, sub);
  return 0;
}

void umn_interval_notifier_remove(umn_interval_notifier* sub) {
  constexpr const char* kCall = "umn_interval_notifier_remove";
  if (!UMN_CHECK(sub != nullptr, kCall, "NULL notifier")) return;
  const uint32_t state = state_of(sub);
  if (!UMN_CHECK(state != kStateRemoved, kCall, "notifier removed twice")) return;
  if (!UMN_CHECK(is_inserted(state), kCall, "notifier was never inserted")) return;
  umn_mm* mm = sub->mm;
  Subscriptions& subs = *subscriptions_of(mm);
  IntervalTree::NodeChain surplus;
  {
    SignalsHeld hold(mm);
    UniqueLock guard(subs.lock);
    if (!UMN_CHECK(state_of(sub) != kStatePendingRemove && state_of(sub) != kStateRemoved, kCall,
                   "notifier removed twice, concurrently"))
      return;
    // From a callback of this address space the wait below would be for the callback's own epoch.
    const bool would_wait = state_of(sub) == kStateInTree && (subs.invalidate_seq.load(std::memory_order_relaxed) & 1);
    if (!UMN_CHECK(!(would_wait && itree_walking(subs)), kCall,
                   "called from an invalidate callback: it would wait for its own invalidation"))
      return;
    unsigned long wait_seq;
    if (unlink_locked(subs, sub, &wait_seq)) {
      // The predicate reads seq under the lock: the seq bump and the deferred removal happen in one
      // critical section, so seeing the new seq proves sub has left the tree.
      subs.waiters++;
      subs.epoch_ended.wait(guard, [&] {
        return subs.invalidate_seq.load(std::memory_order_relaxed) != wait_seq;
      });
      subs.waiters--;
    }
    surplus = surplus_locked(subs);
  }
  IntervalTree::release(surplus);
  mm_put(mm);
}

unsigned long umn_interval_read_begin(umn_interval_notifier* sub) {
  // A NULL, never inserted (zeroed) or removed notifier has no address space it may touch (a remove can
  // drop the address space's last reference): diagnose instead of crashing.
  if (!UMN_CHECK(sub != nullptr && sub->mm != nullptr && is_inserted(state_of(sub)), "umn_interval_read_begin",
                 "notifier is not inserted (never inserted, or removed)"))
    return 0;
  // Pairs with the release store in umn_interval_set_seq(). link_locked()'s stores are relaxed and need
  // no partner: they are made before insert returns, and a read_begin is ordered after that return by
  // its caller (same thread, or the caller's own hand-off of the notifier).
  unsigned long seq = std::atomic_ref(sub->invalidate_seq).load(std::memory_order_acquire);
  Subscriptions& subs = *subscriptions_of(sub->mm);
  // Pairs with the release stores of the epoch start/end in itree_invalidate.cc.
  if (subs.invalidate_seq.load(std::memory_order_acquire) != seq) return seq;
  // From a callback of this address space the wait would be for the callback's own epoch.
  if (!UMN_CHECK(!itree_walking(subs), "umn_interval_read_begin",
                 "called from an invalidate callback: it would wait for its own invalidation"))
    return 0;
  SignalsHeld hold(sub->mm);
  UniqueLock guard(subs.lock);
  subs.waiters++;
  subs.epoch_ended.wait(guard, [&] { return subs.invalidate_seq.load(std::memory_order_relaxed) != seq; });
  subs.waiters--;
  return seq;
}

bool umn_interval_read_retry(umn_interval_notifier* sub, unsigned long seq) {
  if (!UMN_CHECK(sub != nullptr, "umn_interval_read_retry", "NULL notifier")) return true;  // never accept
  // The user lock, held by the caller and by the callback around set_seq, orders this load.
  return std::atomic_ref(sub->invalidate_seq).load(std::memory_order_relaxed) != seq;
}

bool umn_interval_check_retry(umn_interval_notifier* sub, unsigned long seq) {
  if (!UMN_CHECK(sub != nullptr, "umn_interval_check_retry", "NULL notifier")) return true;  // never accept
  // Pairs with the release store in umn_interval_set_seq().
  return std::atomic_ref(sub->invalidate_seq).load(std::memory_order_acquire) != seq;
}

void umn_interval_set_seq(umn_interval_notifier* sub, unsigned long cur_seq) {
  if (!UMN_CHECK(sub != nullptr, "umn_interval_set_seq", "NULL notifier")) return;
  // Pairs with the acquire loads in read_begin and check_retry.
  std::atomic_ref(sub->invalidate_seq).store(cur_seq, std::memory_order_release);
}

}  // extern "C"
