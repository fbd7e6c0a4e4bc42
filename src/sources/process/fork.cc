// fork.cc - the process hooks' steps in umn's fork handlers (contract in fork.hpp, order in core/fork.hpp).
#include "sources/process/fork.hpp"

#include <sched.h>

#include <atomic>

#include "core/query.hpp"
#include "sources/process/delivery.hpp"
#include "sources/process/events.hpp"
#include "sources/process/state.hpp"
#include "sources/process/thread_state.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail {
namespace {

constexpr unsigned kMaxForkRanges = 64;
std::atomic<bool> g_fork_lock{false};
// Guarded by g_fork_lock, held from prepare to parent/child:
Pending g_fork[kMaxForkRanges];
unsigned g_fork_count = 0;

bool anyone_listening(umn_mm* mm, Registry* registry) noexcept {
  if (mm != nullptr && mm_has_subscriptions(mm)) return true;
  return registry != nullptr && registry->used.load(std::memory_order_acquire) > 0;
}

// Takes g_fork_lock (waiting for an installation in progress: hold_forks). Return: umn_mm_process() once
// the hooks were installed (or tried), else nullptr (then nobody has the address space).
umn_mm* enter() noexcept {
  hold_forks();
  g_fork_count = 0;
  // Under g_fork_lock the state is 0 or 2, never 1 (the installer holds the lock while it is 1).
  return g_install_state.load(std::memory_order_acquire) == 2 ? process_address_space() : nullptr;
}

// Starts PROTECTION_PAGE over every private writable mapping (adjacent ones merged; beyond
// kMaxForkRanges runs, the last run is extended over the rest), on mm and, when this copy owns the sites,
// on the registry's observers (every copy announces fork on its own address space: chained_observer).
void start(umn_mm* mm) noexcept {
  if (mm == nullptr || g_status != 0) return;
  volatile uint64_t canary;
  ThreadClaim claim(&canary);
  if (claim.nested()) return;  // a fork from a callback: its notifiers are mid-invalidation
  Registry* registry = active_registry() == &g_registry ? &g_registry : nullptr;
  if (!anyone_listening(mm, registry)) return;
  sys::HookMapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry)) {
    if ((entry.prot & sys::kMapWrite) == 0 || (entry.prot & sys::kMapShared) != 0) continue;
    if (g_fork_count > 0 && (g_fork[g_fork_count - 1].event.end == entry.start || g_fork_count == kMaxForkRanges)) {
      g_fork[g_fork_count - 1].event.end = entry.end;  // merge (or, when full, over-cover the gap)
      continue;
    }
    make_event(&g_fork[g_fork_count++].event, UMN_CALL_FORK, UMN_NOTIFY_PROTECTION_PAGE, entry.start,
               entry.end - entry.start, 0);
  }
  for (unsigned i = 0; i < g_fork_count; ++i) deliver_start(claim.level(), &g_fork[i], mm, registry);
}

// Ends the fork ranges: the result is 0 in the child, 1 in the parent. In the child, the notifiers only
// (they are copies whose starts must be balanced); observers: see fork.hpp.
void finish(bool child) noexcept {
  if (child) thread_state_fork_child();
  if (g_fork_count == 0) return;
  volatile uint64_t canary;
  ThreadClaim claim(&canary);
  for (unsigned i = g_fork_count; i-- > 0;) {
    if (child)
      for (umn_process_observer_fn& fn : g_fork[i].fns) fn = nullptr;
    deliver_end(claim.level(), &g_fork[i], child ? 0 : 1);
  }
  g_fork_count = 0;
}

void leave() noexcept { release_forks(); }

constexpr ForkSource kHooksForkSource = {&enter, &start, &finish, &leave};

// At load: a fork during the first installation must already wait for it. (The installer's use of
// hold_forks links this file into every program that can install the hooks.)
[[gnu::constructor]] void register_at_load() noexcept { fork_set_source(&kHooksForkSource); }

}  // namespace

void hold_forks() noexcept {
  while (g_fork_lock.exchange(true, std::memory_order_acquire)) sched_yield();  // pairs with release_forks
}

void release_forks() noexcept { g_fork_lock.store(false, std::memory_order_release); }

}  // namespace umn::detail
