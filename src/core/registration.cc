// registration.cc - umn_notifier_register / unregister, the refcounted get / put, and synchronize.
//
// Algorithm (kernel 5.4+ mm/mmu_notifier.c, docs/semantics.md 4):
//   register:   under Subscriptions::lock, wait until no range is in flight (active == 0), then link at
//               the head, users = 1, take an mm reference. This replaces the kernel's mm_take_all_locks:
//               a new notifier never sees an end without its start (see classic.hpp, Memory ordering).
//   unregister: inside one read-side section, claim and call ->release unless teardown did; unlink,
//               synchronize (every walk that could still hold the notifier has left), drop the mm
//               reference. Never free_notifier.
//   get:        lookup by ops pointer under the lock; else, under ClassicList::get_lock, look again,
//               alloc_notifier, register. So alloc_notifier runs once per (ops, mm). Failures are error
//               pointers (UMN_ERR_PTR), as the kernel's; alloc_notifier's own error pointer goes back as is.
//   put:        users-- under the lock; the last one unlinks and queues free_notifier + mm reference
//               drop behind a grace period (call_rcu). synchronize is rcu_barrier: all queued frees ran.
// Progress: registration can wait without bound under a steady stream of overlapping invalidations
// (as the kernel's mmap_lock writer can); it reports a WARN every 10 s of waiting, which also catches a
// thread that registers between its own range_start and range_end (a self-deadlock).
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <unistd.h>

#include "base/check.hpp"
#include "core/subscriptions.hpp"

namespace umn::detail {
namespace {

constexpr const char* kRegisterCall = "umn_notifier_register";
constexpr const char* kGetCall = "umn_notifier_get";
constexpr const char* kPutCall = "umn_notifier_put";
constexpr const char* kUnregisterCall = "umn_notifier_unregister";
constexpr auto kRegisterWarnAfter = std::chrono::seconds(10);

uintptr_t state_of(umn_notifier* sub) noexcept {
  return classic_word(sub, kWordState).load(std::memory_order_acquire);
}
uintptr_t flags_of(umn_notifier* sub) noexcept {
  return classic_word(sub, kWordFlags).load(std::memory_order_relaxed);
}
bool is_live(uintptr_t state) noexcept {
  return state == kClassicRegistered || state == kClassicUnregistering || state == kClassicFreeing;
}

// get's failure: err (a negative errno) as an error pointer.
umn_notifier* error_pointer(int err) noexcept { return static_cast<umn_notifier*>(UMN_ERR_PTR(err)); }

// Register's argument checks. Return: 0 or -EINVAL (misuse, diagnosed).
int check_register_args(umn_notifier* sub, umn_mm* mm) noexcept {
  if (!UMN_CHECK(!UMN_IS_ERR_OR_NULL(sub) && mm != nullptr && sub->ops != nullptr, kRegisterCall,
                 "NULL or error-pointer notifier, NULL address space or ops"))
    return -EINVAL;
  const umn_notifier_ops* ops = sub->ops;
  if (!UMN_CHECK(ops->arch_invalidate_secondary_tlbs == nullptr ||
                     (ops->invalidate_range_start == nullptr && ops->invalidate_range_end == nullptr),
                 kRegisterCall, "ops have arch_invalidate_secondary_tlbs and invalidate_range_start/end"))
    return -EINVAL;
  if (!UMN_CHECK(!is_live(state_of(sub)), kRegisterCall, "notifier is already registered")) return -EINVAL;
  return 0;
}

// Waits until no range is in flight. Context: subs.lock held through `held`.
void wait_for_no_ranges(Subscriptions& subs, UniqueLock& held) noexcept UMN_REQUIRES(subs.lock) {
  subs.waiters++;
  while (subs.active != 0) {
    // Woken by itree_invalidate_end when active reaches 0 with waiters.
    if (subs.epoch_ended.wait_for(held, kRegisterWarnAfter) == std::cv_status::timeout && subs.active != 0)
      UMN_WARN_ON(true, kRegisterCall,
                  "waited 10 s for in-flight invalidations (registering between a range_start and its "
                  "range_end on the same thread never returns)");
  }
  subs.waiters--;
}

// Initialises sub's private words and links it. Context: subs.lock held, active == 0.
void link_new_locked(Subscriptions& subs, umn_notifier* sub, umn_mm* mm, uintptr_t flags) noexcept UMN_REQUIRES(subs.lock) {
  sub->mm = mm;
  sub->users = 1;
  classic_word(sub, kWordFlags).store(flags, std::memory_order_relaxed);
  classic_word(sub, kWordState).store(kClassicRegistered, std::memory_order_release);
  classic_link_locked(subs.classic, sub);
  subs.classic_registrations++;
  mm_get(mm);
}

// Register without the caller-context checks. Return: 0, -EINVAL, -ENOMEM.
int register_notifier(umn_notifier* sub, umn_mm* mm, uintptr_t flags) noexcept {
  if (int err = check_register_args(sub, mm); err != 0) return err;
  Subscriptions* subs = subscriptions_get_or_create(mm);
  if (subs == nullptr) return -ENOMEM;
  SignalsHeld hold(mm);
  UniqueLock held(subs->lock);
  if (!subs->released) wait_for_no_ranges(*subs, held);
  // Checked after the wait too: teardown may have run meanwhile. Once released is set, teardown's walk
  // has or will see every notifier linked before, and none may be linked after.
  if (subs->released) {
    // A get racing with teardown is legitimate (it gets EINVAL); a plain register is a caller bug.
    if ((flags & kClassicFromGet) == 0) UMN_WARN_ON(true, kRegisterCall, "address space was released");
    return -EINVAL;
  }
  link_new_locked(*subs, sub, mm, flags);
  return 0;
}

// The registered get-notifier of ops, with users incremented; nullptr with *err = 0 when there is none,
// or with *err = -EOVERFLOW / -EINVAL (teardown begun or done).
umn_notifier* find_and_get(Subscriptions& subs, const umn_mm* mm, const umn_notifier_ops* ops,
                           int* err) noexcept {
  SignalsHeld hold(mm);
  MutexLock guard(subs.lock);
  // Once teardown has begun, the registrations it releases are not handed out again (their ->release
  // has run or is about to), and no new one is made: a get racing with teardown fails like one after it.
  *err = subs.released ? -EINVAL : 0;
  if (*err != 0) return nullptr;
  for (umn_notifier* sub = classic_first(subs.classic); sub != nullptr; sub = classic_next(sub)) {
    if (sub->ops != ops || (flags_of(sub) & kClassicFromGet) == 0) continue;
    if (sub->users == UINT_MAX) {
      *err = -EOVERFLOW;
      return nullptr;
    }
    sub->users++;
    return sub;
  }
  return nullptr;
}

// Allocates and registers the notifier of (ops, mm). Context: mm's ClassicList::get_lock held.
// Return: the notifier or an error pointer.
umn_notifier* alloc_and_register(const umn_notifier_ops* ops, umn_mm* mm) noexcept {
  umn_notifier* sub = ops->alloc_notifier(mm);
  if (sub == nullptr) return error_pointer(-ENOMEM);
  if (UMN_IS_ERR(sub)) return sub;  // the driver's own error, handed back as the kernel does
  sub->ops = ops;
  classic_word(sub, kWordState).store(0, std::memory_order_relaxed);  // fresh memory: never registered
  if (int err = register_notifier(sub, mm, kClassicFromGet); err != 0) {
    ops->free_notifier(sub);  // never published: no grace period needed
    return error_pointer(err);
  }
  return sub;
}

// Return: the notifier or an error pointer.
umn_notifier* get_notifier(const umn_notifier_ops* ops, umn_mm* mm) noexcept {
  Subscriptions* subs = subscriptions_get_or_create(mm);
  if (subs == nullptr) return error_pointer(-ENOMEM);
  int err;
  if (umn_notifier* sub = find_and_get(*subs, mm, ops, &err); sub != nullptr || err != 0)
    return err != 0 ? error_pointer(err) : sub;
  MutexLock get_guard(subs->classic.get_lock);
  if (umn_notifier* sub = find_and_get(*subs, mm, ops, &err); sub != nullptr || err != 0)
    return err != 0 ? error_pointer(err) : sub;  // another get registered it while we waited for get_lock
  return alloc_and_register(ops, mm);
}

// The deferred half of the last put: runs on liburcu's callback thread after a grace period.
void free_after_grace_period(rcu_head* head) {
  rcu::callback_entered();
  auto* words = reinterpret_cast<uintptr_t*>(head) - kWordRcu;
  auto* sub = reinterpret_cast<umn_notifier*>(reinterpret_cast<char*>(words) - offsetof(umn_notifier, umn_private));
  umn_mm* mm = sub->mm;
  sub->ops->free_notifier(sub);
  mm_put(mm);  // pairs with register's mm_get
  rcu::callback_exited();
}

// put's locked half. Return: true when this was the last user (sub is unlinked and must be freed).
bool put_locked(Subscriptions& subs, umn_notifier* sub) noexcept UMN_REQUIRES(subs.lock) {
  const uintptr_t state = state_of(sub);
  if (!UMN_CHECK(state != kClassicFreeing && sub->users != 0, kPutCall, "put of a notifier with 0 users"))
    return false;
  if (!UMN_CHECK(state == kClassicRegistered && (flags_of(sub) & kClassicFromGet) != 0, kPutCall,
                 "notifier was not obtained from umn_notifier_get"))
    return false;
  if (--sub->users != 0) return false;
  classic_unlink_locked(sub);  // harmless if teardown already unlinked it
  subs.classic_registrations--;
  classic_word(sub, kWordState).store(kClassicFreeing, std::memory_order_relaxed);
  return true;
}

void unregister_notifier(umn_notifier* sub, umn_mm* mm) noexcept {
  Subscriptions& subs = *subscriptions_of(mm);  // exists: sub's registration created it
  {
    // The section is entered before the claim: a teardown that loses the claim to us then finds us in
    // a section its synchronize waits for, so it returns only after our ->release (claim first, then
    // a preemption, and teardown could return before the call; issue 12).
    rcu::ReadGuard guard;
    if (classic_claim_release(sub) && sub->ops->release != nullptr) sub->ops->release(sub, mm);
  }
  {
    SignalsHeld hold(mm);
    MutexLock guard(subs.lock);
    classic_unlink_locked(sub);
    subs.classic_registrations--;
  }
  rcu::synchronize();  // every walk that may still be calling sub has left
  classic_word(sub, kWordState).store(kClassicUnregistered, std::memory_order_release);
  mm_put(mm);  // pairs with register's mm_get
}

void write_culprit(const umn_notifier* sub) noexcept {
  char line[160];
  int len = std::snprintf(line, sizeof line,
                          "umn: umn_mm_destroy: classic notifier %p (ops %p, users %u) still registered\n",
                          static_cast<const void*>(sub), static_cast<const void*>(sub->ops), sub->users);
  if (len > 0) (void)!::write(STDERR_FILENO, line, static_cast<size_t>(len));
}

}  // namespace

void classic_check_leftovers(Subscriptions& subs) noexcept {
  unsigned long left;
  {
    MutexLock guard(subs.lock);
    left = subs.classic_registrations;
    if (UMN_DEBUG_LEVEL >= 1 && default_hook_in_use())
      for (umn_notifier* sub = classic_first(subs.classic); sub != nullptr; sub = classic_next(sub))
        write_culprit(sub);
  }
  // A WARN, not misuse (as for interval notifiers left inserted): the address space stays consistent,
  // and the registrations' unregister / put remain valid and drop the last references.
  UMN_WARN_ON(left != 0, "umn_mm_destroy",
              "classic notifiers still registered; they get ->release and must still be unregistered/put");
}

}  // namespace umn::detail

using namespace umn::detail;

extern "C" {

int umn_notifier_register(umn_notifier* sub, umn_mm* mm) {
  if (!UMN_CHECK(!rcu::read_ongoing(), kRegisterCall, "called from a classic notifier callback"))
    return -EDEADLK;
  return register_notifier(sub, mm, 0);
}

void umn_notifier_unregister(umn_notifier* sub, umn_mm* mm) {
  if (!UMN_CHECK(!UMN_IS_ERR_OR_NULL(sub) && mm != nullptr && sub->mm == mm, kUnregisterCall,
                 "NULL or error-pointer notifier, NULL address space, or not the notifier's address space"))
    return;
  if (!UMN_CHECK(!rcu::read_ongoing(), kUnregisterCall, "called from a classic notifier callback")) return;
  uintptr_t expected = kClassicRegistered;
  if (!UMN_CHECK((flags_of(sub) & kClassicFromGet) == 0, kUnregisterCall,
                 "notifier comes from umn_notifier_get: use umn_notifier_put") ||
      !UMN_CHECK(classic_word(sub, kWordState).compare_exchange_strong(expected, kClassicUnregistering),
                 kUnregisterCall, "notifier is not registered (unregistered twice?)"))
    return;
  unregister_notifier(sub, mm);
}

umn_notifier* umn_notifier_get(const umn_notifier_ops* ops, umn_mm* mm) {
  if (!UMN_CHECK(ops != nullptr && mm != nullptr && ops->alloc_notifier != nullptr && ops->free_notifier != nullptr,
                 kGetCall, "NULL ops or address space, or ops without alloc_notifier/free_notifier"))
    return error_pointer(-EINVAL);
  if (!UMN_CHECK(!rcu::read_ongoing(), kGetCall, "called from a classic notifier callback"))
    return error_pointer(-EDEADLK);
  return get_notifier(ops, mm);
}

void umn_notifier_put(umn_notifier* sub) {
  if (!UMN_CHECK(!UMN_IS_ERR_OR_NULL(sub) && sub->mm != nullptr, kPutCall,
                 "NULL or error-pointer notifier (a failed umn_notifier_get has nothing to put)"))
    return;
  Subscriptions* subs = subscriptions_of(sub->mm);
  if (!UMN_CHECK(subs != nullptr, kPutCall, "notifier was never registered")) return;
  bool last;
  {
    SignalsHeld hold(sub->mm);
    MutexLock guard(subs->lock);
    last = put_locked(*subs, sub);
  }
  if (last) rcu::call(reinterpret_cast<rcu_head*>(&sub->umn_private[kWordRcu]), &free_after_grace_period);
}

void umn_notifier_synchronize(void) {
  if (!UMN_CHECK(!rcu::read_ongoing() && !rcu::in_callback(), "umn_notifier_synchronize",
                 "called from a classic notifier callback or from free_notifier"))
    return;
  rcu::barrier();
}

}  // extern "C"
