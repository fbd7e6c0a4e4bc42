// classic.cc - the classic notifiers' RCU list and its walks: range start/end, the young queries,
// arch_invalidate_secondary_tlbs, and teardown. Registration lives in registration.cc.
//
// Algorithm: the kernel's hlist under SRCU (mm/mmu_notifier.c, docs/semantics.md 3), with
// urcu-bp as the RCU (core/rcu.hpp says why). The list is intrusive (umn_notifier::umn_private) and
// newest-first, so every walk calls in reverse registration order.
// Ordering and progress guarantees:
//   1. Walks take no lock and allocate nothing; they run inside one read-side section each.
//   2. No callback runs under Subscriptions::lock.
//   3. Unlinking keeps the node's next word, so a walker standing on an unlinked node finishes the list;
//      the node is not reused before a grace period (unregister: synchronize; put: call).
//   4. A non-blockable start failure calls every end (so the starts that succeeded are ended) before
//      returning -EAGAIN; the caller then does not call range_end (5.12+ kernel behaviour).
//   5. ->release runs at most once per registration: teardown and unregister race for one claim bit,
//      each claiming from inside a read-side section that also covers its call, so the loser's
//      grace-period wait covers the winner's call (a claim made outside the section would not be seen:
//      the model in classic_teardown.pml shows that interleaving).
#include <cerrno>

#include "base/check.hpp"
#include "core/subscriptions.hpp"

static_assert(sizeof(umn_notifier::umn_private) / sizeof(uintptr_t) == umn::detail::kClassicWords,
              "umn_notifier::umn_private holds exactly the classic layer's words");

namespace umn::detail {
namespace {

constexpr const char* kStartCall = "umn_notifier_invalidate_range_start";

// Calls fn(sub) on every linked notifier, newest first. Context: read side.
template <class Fn>
void for_each_notifier(ClassicList& list, Fn&& fn) noexcept {
  for (umn_notifier* sub = classic_first(list); sub != nullptr; sub = classic_next(sub)) fn(sub);
}

// Judges one failed start. Return: true if it fails the range (-EAGAIN); false if it is treated as
// success (blockable: a driver bug, warned; the caller's range_end ends it as usual).
bool start_failure_counts(const umn_notifier* sub, const umn_notifier_range* range, int ret) noexcept {
  UMN_WARN_ON(sub->ops->invalidate_range_end != nullptr, kStartCall,
              "a classic notifier that can fail invalidate_range_start also has invalidate_range_end");
  if (UMN_WARN_ON(umn_notifier_range_blockable(range), kStartCall,
                  "a classic notifier failed invalidate_range_start on a blockable range"))
    return false;
  UMN_WARN_ON(ret != -EAGAIN, kStartCall,
              "a classic notifier's invalidate_range_start returned an error other than -EAGAIN");
  return true;
}

void call_ends(umn_notifier* first, const umn_notifier_range* range) noexcept {
  for (umn_notifier* sub = first; sub != nullptr; sub = classic_next(sub))
    if (sub->ops->invalidate_range_end != nullptr) sub->ops->invalidate_range_end(sub, range);
}

// The queries (young bits, secondary TLBs): calls op on every notifier that has it; stops at the first true when `first_only`.
template <class Call>
int query_walk(umn_mm* mm, bool first_only, Call&& call) noexcept {
  Subscriptions* subs = mm != nullptr ? subscriptions_of(mm) : nullptr;
  if (subs == nullptr || classic_empty(*subs)) return 0;
  rcu::ReadGuard guard;
  int young = 0;
  for (umn_notifier* sub = classic_first(subs->classic); sub != nullptr; sub = classic_next(sub)) {
    young |= call(sub) ? 1 : 0;
    if (young != 0 && first_only) break;
  }
  return young;
}

void unlink_all_locked(ClassicList& list) noexcept {
  while (umn_notifier* sub = as_notifier(std::atomic_ref<uintptr_t>(list.head).load(std::memory_order_relaxed)))
    classic_unlink_locked(sub);
}

}  // namespace

void classic_link_locked(ClassicList& list, umn_notifier* sub) noexcept {
  std::atomic_ref<uintptr_t> head(list.head);
  const uintptr_t first = head.load(std::memory_order_relaxed);
  classic_word(sub, kWordNext).store(first, std::memory_order_relaxed);
  classic_word(sub, kWordPprev).store(reinterpret_cast<uintptr_t>(&list.head), std::memory_order_relaxed);
  if (first != 0)
    classic_word(as_notifier(first), kWordPprev)
        .store(reinterpret_cast<uintptr_t>(&sub->umn_private[kWordNext]), std::memory_order_relaxed);
  // Publishes sub (and its ops, mm) to walkers; pairs with the acquire load in classic_first().
  head.store(reinterpret_cast<uintptr_t>(sub), std::memory_order_release);
}

bool classic_unlink_locked(umn_notifier* sub) noexcept {
  auto* pprev = reinterpret_cast<uintptr_t*>(classic_word(sub, kWordPprev).load(std::memory_order_relaxed));
  if (pprev == nullptr) return false;
  const uintptr_t next = classic_word(sub, kWordNext).load(std::memory_order_relaxed);
  // Pairs with the acquire loads in classic_first() / classic_next(): `next` was published before.
  std::atomic_ref<uintptr_t>(*pprev).store(next, std::memory_order_release);
  if (next != 0) classic_word(as_notifier(next), kWordPprev).store(reinterpret_cast<uintptr_t>(pprev),
                                                                    std::memory_order_relaxed);
  classic_word(sub, kWordPprev).store(0, std::memory_order_relaxed);  // next kept: see guarantee 3
  return true;
}

bool classic_claim_release(umn_notifier* sub) noexcept {
  const uintptr_t before = classic_word(sub, kWordFlags).fetch_or(kClassicReleaseClaimed, std::memory_order_acq_rel);
  return (before & kClassicReleaseClaimed) == 0;
}

int classic_invalidate_start(Subscriptions& subs, const umn_notifier_range* range) noexcept {
  rcu::ReadGuard guard;
  bool failed = false;
  for_each_notifier(subs.classic, [&](umn_notifier* sub) {
    if (sub->ops->invalidate_range_start == nullptr) return;
    const int ret = sub->ops->invalidate_range_start(sub, range);
    if (ret != 0 && start_failure_counts(sub, range, ret)) failed = true;
  });
  if (!failed) return 0;
  call_ends(classic_first(subs.classic), range);  // the successful starts expect their end
  return -EAGAIN;
}

ClassicEndWalk::ClassicEndWalk(Subscriptions* subs, bool enabled) noexcept : enabled_(enabled) {
  if (!enabled_) return;
  rcu::read_lock();
  first_ = classic_first(subs->classic);
}

ClassicEndWalk::~ClassicEndWalk() {
  if (enabled_) rcu::read_unlock();
}

void ClassicEndWalk::run(const umn_notifier_range* range) noexcept {
  if (enabled_) call_ends(first_, range);
}

void classic_release(Subscriptions& subs, umn_mm* mm) noexcept {
  if (classic_empty(subs)) return;  // nothing linked, and registration is closed (released is set)
  {
    rcu::ReadGuard guard;
    for_each_notifier(subs.classic, [mm](umn_notifier* sub) {
      if (classic_claim_release(sub) && sub->ops->release != nullptr) sub->ops->release(sub, mm);
    });
  }
  {
    SignalsHeld hold(mm);
    MutexLock guard(subs.lock);
    unlink_all_locked(subs.classic);
  }
  if (!UMN_CHECK(!rcu::read_ongoing(), "umn_notifier_release", "called from a classic notifier callback"))
    return;
  rcu::synchronize();  // releases started by a concurrent unregister finish before teardown returns
}

bool classic_empty(const Subscriptions& subs) noexcept {
  // Acquire: pairs with the release store of a concurrent unregister's unlink (classic_unlink_locked),
  // so a teardown that sees the list empty also sees the end of that ->release (made before the unlink).
  // umn_notifier_release's final Subscriptions::lock section orders it as well, so no test can tell a
  // relaxed load from this one (tests/fuzz/mutants.sh leaves it out); acquire is free on x86.
  return std::atomic_ref<uintptr_t>(const_cast<uintptr_t&>(subs.classic.head)).load(std::memory_order_acquire) == 0;
}

}  // namespace umn::detail

using umn::detail::query_walk;

extern "C" {

int umn_notifier_clear_flush_young(umn_mm* mm, uint64_t start, uint64_t end) {
  if (!UMN_CHECK(mm != nullptr, "umn_notifier_clear_flush_young", "NULL address space") ||
      UMN_WARN_ON(start >= end, "umn_notifier_clear_flush_young", "range with start >= end"))
    return -EINVAL;
  return query_walk(mm, false, [&](umn_notifier* sub) {
    return sub->ops->clear_flush_young != nullptr && sub->ops->clear_flush_young(sub, mm, start, end) != 0;
  });
}

int umn_notifier_clear_young(umn_mm* mm, uint64_t start, uint64_t end) {
  if (!UMN_CHECK(mm != nullptr, "umn_notifier_clear_young", "NULL address space") ||
      UMN_WARN_ON(start >= end, "umn_notifier_clear_young", "range with start >= end"))
    return -EINVAL;
  return query_walk(mm, false, [&](umn_notifier* sub) {
    return sub->ops->clear_young != nullptr && sub->ops->clear_young(sub, mm, start, end) != 0;
  });
}

int umn_notifier_test_young(umn_mm* mm, uint64_t address) {
  if (!UMN_CHECK(mm != nullptr, "umn_notifier_test_young", "NULL address space")) return -EINVAL;
  return query_walk(mm, true, [&](umn_notifier* sub) {
    return sub->ops->test_young != nullptr && sub->ops->test_young(sub, mm, address) != 0;
  });
}

void umn_notifier_arch_invalidate_secondary_tlbs(umn_mm* mm, uint64_t start, uint64_t end) {
  if (!UMN_CHECK(mm != nullptr, "umn_notifier_arch_invalidate_secondary_tlbs", "NULL address space") ||
      UMN_WARN_ON(start >= end, "umn_notifier_arch_invalidate_secondary_tlbs", "range with start >= end"))
    return;
  query_walk(mm, false, [&](umn_notifier* sub) {
    if (sub->ops->arch_invalidate_secondary_tlbs != nullptr)
      sub->ops->arch_invalidate_secondary_tlbs(sub, mm, start, end);
    return false;
  });
}

}  // extern "C"
