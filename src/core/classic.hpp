// classic.hpp - classic (whole address space) notifiers inside libumn: the RCU list and its walks.
//
// Locking
//   Subscriptions::lock guards every change of the list's structure (link, unlink), each notifier's
//   `users` and private state word, and registration's wait for `active == 0`.
//   ClassicList::get_lock serialises umn_notifier_get's lookup-allocate-register, so alloc_notifier runs
//   once per (ops, mm). Order: get_lock, then Subscriptions::lock. Neither is held across a callback,
//   except that alloc_notifier runs with get_lock held (as the kernel's runs with mmap_lock).
//   Walks take no lock: they run inside an RCU read-side section (core/rcu.hpp, urcu-bp).
//
// Lifetime
//   A registered notifier holds one reference on its umn_mm (dropped by unregister, or after the free of
//   the last put). An unlinked notifier keeps its `next` word, so a walker standing on it goes on; it is
//   reused or freed only after a grace period (unregister's synchronize, put's call_rcu).
//
// Context
//   Walks may sleep when their callbacks may. Registration waits for in-flight ranges; unregister and
//   synchronize wait for grace periods: none of them inside a read-side section (a classic callback).
//
// Memory ordering
//   Publication: link stores the head with release after initialising the node; walkers load every
//   `next` with acquire (consume would do; acquire costs nothing on x86 and TSan understands it).
//   Registration vs in-flight ranges: a range counts in Subscriptions::active from its interval-tree
//   start to its end; registration links only while active == 0, under the lock that active changes
//   under. So a range that started before the link has ended its start walk, and one that starts later
//   sees the new notifier. range_end snapshots the list (ClassicEndWalk) *before* its interval-tree end
//   lowers active, so a notifier linked right after that gets no end without its start.
#pragma once

#include <atomic>
#include <cstdint>

#include "base/lock.hpp"
#include "core/rcu.hpp"
#include "umn/umn.h"

namespace umn::detail {

struct Subscriptions;

// The classic subscribers of one address space, newest first (the kernel's hlist order).
struct ClassicList {
  uintptr_t head = 0;  // umn_notifier*; atomic_ref: written under Subscriptions::lock, read under RCU
  Mutex get_lock;  // see Locking above; Subscriptions::classic_registrations counts the registrations
};

// umn_notifier::umn_private, word by word.
enum ClassicWord : int {
  kWordNext = 0,   // umn_notifier* of the next (older) notifier; kept when unlinked
  kWordPprev = 1,  // uintptr_t* of the word that points here; 0 when unlinked ("unhashed")
  kWordRcu = 2,    // two words: liburcu's rcu_head for the deferred free_notifier
  kWordState = 2 + rcu::kHeadWords,
  kWordFlags = kWordState + 1,
  kClassicWords = kWordFlags + 1,
};

// kWordState: magic values, so that zeroed or garbage memory reads as "never registered".
enum ClassicState : uintptr_t {
  kClassicRegistered = 0x756d6e20,
  kClassicUnregistering = 0x756d6e21,  // unregister is running
  kClassicUnregistered = 0x756d6e22,   // may be registered again
  kClassicFreeing = 0x756d6e23,        // last put done; free_notifier pending
};

// kWordFlags.
enum ClassicFlag : uintptr_t {
  kClassicFromGet = 1u << 0,          // allocated by umn_notifier_get: a key for get, freed by put
  kClassicReleaseClaimed = 1u << 1,   // ->release was called (or is being called): never twice
};

inline std::atomic_ref<uintptr_t> classic_word(umn_notifier* sub, int index) noexcept {
  return std::atomic_ref<uintptr_t>(sub->umn_private[index]);
}
inline umn_notifier* as_notifier(uintptr_t word) noexcept { return reinterpret_cast<umn_notifier*>(word); }

// The first notifier. Context: read side (or Subscriptions::lock held).
inline umn_notifier* classic_first(ClassicList& list) noexcept {
  return as_notifier(std::atomic_ref<uintptr_t>(list.head).load(std::memory_order_acquire));
}
// The next notifier after sub. Pairs with the release stores of link / unlink. Context: read side.
inline umn_notifier* classic_next(umn_notifier* sub) noexcept {
  return as_notifier(classic_word(sub, kWordNext).load(std::memory_order_acquire));
}

// Links sub at the head. Context: Subscriptions::lock held.
void classic_link_locked(ClassicList& list, umn_notifier* sub) noexcept;
// Unlinks sub, keeping its next word for walkers standing on it. Return: false if it was not linked.
// Context: Subscriptions::lock held.
bool classic_unlink_locked(umn_notifier* sub) noexcept;

// Claims the one ->release call of sub. Return: true for the caller that must make it. Context: any.
bool classic_claim_release(umn_notifier* sub) noexcept;

// invalidate_range_start on every classic notifier (newest first). On a non-blockable failure every
// notifier with an end gets it, and -EAGAIN is returned. Return: 0 or -EAGAIN.
// Context: while the range counts in Subscriptions::active; may sleep iff the range is blockable.
int classic_invalidate_start(Subscriptions& subs, const umn_notifier_range* range) noexcept;

// range_end's classic half. Construct it while the range still counts in Subscriptions::active
// (before itree_invalidate_end): it enters the read side and snapshots the list there. run() then calls
// invalidate_range_end on the snapshot's notifiers (newest first). Disabled: does nothing.
class ClassicEndWalk {
 public:
  ClassicEndWalk(Subscriptions* subs, bool enabled) noexcept;  // subs may be null when disabled
  ~ClassicEndWalk();
  ClassicEndWalk(const ClassicEndWalk&) = delete;
  ClassicEndWalk& operator=(const ClassicEndWalk&) = delete;
  void run(const umn_notifier_range* range) noexcept;

 private:
  bool enabled_;
  umn_notifier* first_ = nullptr;
};

// Teardown: ->release on every classic notifier not yet released, then empties the list and waits for
// every release in flight (also those started by a concurrent unregister). Context: may sleep.
void classic_release(Subscriptions& subs, umn_mm* mm) noexcept;

// True when no classic notifier is linked. Context: any (a racy hint without the lock).
bool classic_empty(const Subscriptions& subs) noexcept;

// umn_mm_destroy's check: registrations still held are WARNed (debug builds first list each linked
// culprit on stderr: notifier, ops, users). Context: not from a callback.
void classic_check_leftovers(Subscriptions& subs) noexcept;

}  // namespace umn::detail
