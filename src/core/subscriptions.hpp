// subscriptions.hpp - the per-address-space subscription state and struct umn_mm (private to libumn).
//
// Locking
//   Subscriptions::lock guards: the interval tree's structure and spare index nodes, the deferred list
//   and `pending_inserts`, `active`, `waiters`,
//   `released`, `release_done`, every store to `invalidate_seq`, and the classic list's structure. It is held only for
//   short sections and no callback ever runs under it.
//   `invalidate_seq` is atomic: written under lock, read lock-free by umn_interval_read_begin().
//   The interval tree is read without the lock only by an invalidation walk during an odd epoch: an odd
//   seq freezes it (inserts/removes go to the deferred list, applied by the epoch's last end).
//   The lock is not async-signal-safe, and on umn_mm_process() a signal handler's munmap takes it (the
//   process hooks deliver on the handler's thread). So every section that takes or waits on the process
//   address space's lock outside the invalidate path (insert, remove, read_begin's wait, registration,
//   get/put, release) holds the thread's signals back for its duration (SignalsHeld): a handler runs
//   before or after it, never inside. The invalidate path does not: there the hooks' own nesting check
//   applies (src/sources/process/dispatch.cc).
//
// Lifetime
//   umn_mm is reference counted (`refs`): one reference for the creator, one per inserted interval
//   notifier, one per classic registration. Subscriptions are created on first use, published with a
//   seq_cst compare-and-swap (subscriptions_publish, mm.cc: seq_cst so that it is ordered against bare
//   ranges' announcements), and freed with the umn_mm when the last reference goes.
//
// State table of invalidate_seq (docs/locking.md has the interleavings):
//   active == 0, seq even   idle: the tree may change.
//   active  > 0, seq even   partially excluded: no running range hit a notifier; an insert makes it odd.
//   active  > 0, seq odd    fully excluded: the tree is frozen; seq + 1 when the last range ends.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <mutex>

#include "base/lock.hpp"
#include "core/classic.hpp"
#include "itree/interval_tree.hpp"
#include "umn/umn.h"

namespace umn::detail {

// The address space's interval index, over the node embedded in every interval notifier.
using IntervalTree = IntervalTreeOf<umn_interval_tree_node>;

// umn_interval_notifier::state: magic values, so that zeroed or garbage memory reads as "never inserted".
enum NotifierState : uint32_t {
  kStateRemoved = 0x756d6e10,        // was inserted, now removed (may be inserted again)
  kStateInTree = 0x756d6e11,
  kStatePendingInsert = 0x756d6e12,  // on the deferred list, not yet in the tree
  kStatePendingRemove = 0x756d6e13,  // in the tree and on the deferred list
};

// Writes umn_interval_notifier::state (under Subscriptions::lock; read lock-free by remove's checks).
inline void set_state(umn_interval_notifier* sub, NotifierState state) noexcept {
  std::atomic_ref(sub->state).store(state, std::memory_order_relaxed);
}

// umn_notifier_range::umn_private: what range_start did, so that range_end undoes exactly that.
enum RangeState : unsigned {
  kRangeItreeStarted = 1u << 0,    // counted in Subscriptions::active; range_end must end it
  kRangeClassicStarted = 1u << 1,  // classic starts ran; range_end must call the classic ends
  kRangeBare = 1u << 2,            // started before the address space had subscriptions
};

struct Subscriptions {
  Mutex lock;
  CondVar epoch_ended;                                      // waited on with lock; signalled when seq turns even
  std::atomic<unsigned long> invalidate_seq{2};             // written under lock; read lock-free by read_begin
  unsigned long active UMN_GUARDED_BY(lock) = 0;            // range starts without their end
  unsigned waiters UMN_GUARDED_BY(lock) = 0;                // threads waiting on epoch_ended
  bool released UMN_GUARDED_BY(lock) = false;               // umn_notifier_release began
  bool release_done UMN_GUARDED_BY(lock) = false;           // ... and finished (epoch_ended signalled)
  IntervalTree itree UMN_GUARDED_BY(lock);                  // walked lock-free when frozen: see above
  umn_interval_notifier* deferred UMN_GUARDED_BY(lock) = nullptr;  // pending inserts and removes (LIFO)
  size_t pending_inserts UMN_GUARDED_BY(lock) = 0;          // kStatePendingInsert notifiers
  ClassicList classic;                                      // classic notifiers; see core/classic.hpp
  unsigned long classic_registrations UMN_GUARDED_BY(lock) = 0;  // registered, not unregistered/freed
  bool is_process = false;                                  // set at creation: umn_mm_process()'s (core/fork.hpp)
};

}  // namespace umn::detail

struct umn_mm {
  constexpr umn_mm() = default;
  constexpr explicit umn_mm(bool process) : is_process(process) {}
  // Published once with a seq_cst CAS (subscriptions_get_or_create, mm.cc), which includes release;
  // pairs with the acquire loads in subscriptions_of().
  std::atomic<umn::detail::Subscriptions*> subscriptions{nullptr};
  std::atomic<long> refs{1};
  // Range starts that found no subscriptions and have not ended; creation waits for them (see mm.cc).
  std::atomic<long> bare_ranges{0};
  std::atomic<bool> destroyed{false};
  bool is_process = false;  // umn_mm_process(): never freed
};

namespace umn::detail {

// Blocks every signal of the calling thread from construction to destruction when mm is the process
// address space (see Locking above); does nothing for simulated ones. Two rt_sigprocmask calls.
// Declare it before the lock guard, so that the lock is released before the signals are let through.
class SignalsHeld {
 public:
  explicit SignalsHeld(const umn_mm* mm) noexcept;
  ~SignalsHeld();
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  bool held_;
  sigset_t saved_;
};

// The subscriptions if they exist, else nullptr. Context: any.
inline Subscriptions* subscriptions_of(const umn_mm* mm) noexcept {
  return mm->subscriptions.load(std::memory_order_acquire);
}

// The subscriptions, created and published if needed, without waiting for anything; nullptr on
// allocation failure. Context: any but a signal handler (allocates).
Subscriptions* subscriptions_publish(umn_mm* mm) noexcept;

// The subscriptions, created if needed; nullptr on allocation failure. Waits for invalidations that
// started before the address space had subscriptions (so no insert or registration misses one).
// Context: may sleep; not from a callback.
Subscriptions* subscriptions_get_or_create(umn_mm* mm) noexcept;

// Reference counting of umn_mm's memory. mm_put frees on the last reference. Context: any (put: not
// from a callback of the same address space, since it may free the subscriptions).
void mm_get(umn_mm* mm) noexcept;
void mm_put(umn_mm* mm) noexcept;

}  // namespace umn::detail
