// mm.cc - address spaces: creation, lazily created subscriptions, reference counting, teardown.
//
// Lazy subscriptions and in-flight invalidations. The kernel's registration takes every mm lock
// (mm_take_all_locks), so a subscription never appears in the middle of an invalidation. Here a range
// start that finds no subscriptions counts itself in umn_mm::bare_ranges until its end, and creation
// waits for that count to drain after publishing. Both sides use sequentially consistent operations in
// the order "announce, then look" (Dekker): either the range start sees the new subscriptions, or the
// creator sees the range's count. So once an insert or registration returns, every invalidation that is
// still running has counted itself in Subscriptions::active.
#include <pthread.h>
#include <sched.h>

#include <new>

#include "base/check.hpp"
#include "core/query.hpp"
#include "core/subscriptions.hpp"

namespace umn::detail {

namespace {

void wait_for_bare_ranges(umn_mm* mm) noexcept {
  for (unsigned spins = 0; mm->bare_ranges.load(std::memory_order_seq_cst) != 0; ++spins) {
    if (spins < 64) {
      sched_yield();
    } else {
      struct timespec pause = {0, 50 * 1000};
      nanosleep(&pause, nullptr);
    }
  }
}

}  // namespace

Subscriptions* subscriptions_publish(umn_mm* mm) noexcept {
  Subscriptions* subs = subscriptions_of(mm);
  if (subs != nullptr) return subs;
  auto* fresh = new (std::nothrow) Subscriptions;
  if (fresh == nullptr) return nullptr;
  fresh->is_process = mm->is_process;
  Subscriptions* expected = nullptr;
  if (mm->subscriptions.compare_exchange_strong(expected, fresh, std::memory_order_seq_cst)) return fresh;
  delete fresh;  // another thread published first
  return expected;
}

Subscriptions* subscriptions_get_or_create(umn_mm* mm) noexcept {
  // Every caller waits for the bare ranges, not only the creator: a caller that finds the subscriptions
  // published while their creator still waits would otherwise insert under a range it cannot see. The
  // seq_cst load in wait_for_bare_ranges() follows the publishing CAS, which follows any bare range's
  // announcement in the single total order, so it sees every range that missed the subscriptions.
  Subscriptions* subs = subscriptions_publish(mm);
  if (subs == nullptr) return nullptr;
  wait_for_bare_ranges(mm);
  return subs;
}

SignalsHeld::SignalsHeld(const umn_mm* mm) noexcept : held_(mm->is_process) {
  if (!held_) return;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved_);
}

SignalsHeld::~SignalsHeld() {
  if (held_) pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
}

bool mm_has_subscriptions(const umn_mm* mm) noexcept { return subscriptions_of(mm) != nullptr; }

umn_mm* process_address_space() noexcept {
  // Constant-initialised and trivially destructible: usable during static destruction, and no guard
  // variable that a fork could clone as held by another thread (a child hung in it: issue 17.9).
  static constinit umn_mm process_storage{true};
  return &process_storage;
}

void mm_get(umn_mm* mm) noexcept { mm->refs.fetch_add(1, std::memory_order_relaxed); }

void mm_put(umn_mm* mm) noexcept {
  // Pairs with itself: the last put sees every other holder's writes before freeing.
  if (mm->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  UMN_DCHECK(!mm->is_process);
  delete subscriptions_of(mm);
  delete mm;
}

}  // namespace umn::detail

using umn::detail::Subscriptions;

extern "C" {

umn_mm* umn_mm_create(void) {
  auto* mm = new (std::nothrow) umn_mm;
  if (mm == nullptr) errno = ENOMEM;
  return mm;
}

bool umn_mm_has_notifiers(const umn_mm* mm) { return mm != nullptr && umn::detail::mm_has_subscriptions(mm); }

void umn_mm_destroy(umn_mm* mm) {
  if (mm == nullptr) return;
  if (!UMN_CHECK(!mm->is_process, "umn_mm_destroy", "the process address space cannot be destroyed"))
    return;
  if (!UMN_CHECK(!mm->destroyed.exchange(true), "umn_mm_destroy", "address space destroyed twice"))
    return;
  if (Subscriptions* subs = umn::detail::subscriptions_of(mm)) {
    bool notifiers_left;
    {
      umn::detail::MutexLock guard(subs->lock);
      notifiers_left = !subs->itree.empty() || subs->deferred != nullptr;
    }
    UMN_WARN_ON(notifiers_left, "umn_mm_destroy",
                "interval notifiers still inserted; they get RELEASE and must still be removed");
    umn::detail::classic_check_leftovers(*subs);  // misuse if registrations are still held
  }
  umn_notifier_release(mm);
  umn::detail::mm_put(mm);
}

}  // extern "C"
