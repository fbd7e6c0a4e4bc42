// fork.cc - PROTECTION_PAGE over private writable memory around fork() (contract in fork.hpp).
#include "sources/process/fork.hpp"

#include <pthread.h>
#include <sched.h>

#include <atomic>

#include "core/query.hpp"
#include "sources/process/delivery.hpp"
#include "sources/process/events.hpp"
#include "sources/process/state.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail {
namespace {

constexpr unsigned kMaxForkRanges = 64;
Pending g_fork[kMaxForkRanges];  // guarded by g_fork_lock, held from prepare to parent/child
unsigned g_fork_count = 0;
std::atomic<bool> g_fork_lock{false};

bool anyone_listening() noexcept {
  umn_mm* mm = process_mm();
  if (mm != nullptr && mm_has_subscriptions(mm)) return true;
  return active_registry()->used.load(std::memory_order_acquire) > 0;
}

void fork_prepare() {
  while (g_fork_lock.exchange(true, std::memory_order_acquire)) sched_yield();
  g_fork_count = 0;
  if (t_delivering > 0 || !anyone_listening()) return;
  sys::MapsReader maps;
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
  for (unsigned i = 0; i < g_fork_count; ++i) deliver_start(&g_fork[i]);
}

void fork_finish(long result) {
  for (unsigned i = g_fork_count; i-- > 0;) deliver_end(&g_fork[i], result);
  g_fork_count = 0;
  g_fork_lock.store(false, std::memory_order_release);
}

void fork_parent() { fork_finish(1); }
void fork_child() { fork_finish(0); }  // balances the copied start counts; the child's mm is a copy

}  // namespace

void install_fork_handlers() noexcept { pthread_atfork(&fork_prepare, &fork_parent, &fork_child); }

}  // namespace umn::detail
