// observers.cc - the observer chain and the public observer calls (contracts in observers.hpp and
// umn/process.h).
#include "sources/process/observers.hpp"

#include <cerrno>

#include "sources/process/observer_args.hpp"
#include "sources/process/state.hpp"

namespace umn::detail {

void chained_observer(void* ctx, const umn_process_event* event, int phase, void* scratch) {
  // Each copy announces fork on its own address space from its own fork handlers (fork.cc), inside its
  // own fork locks: delivering it here would take this copy's locks from the other copy's handlers.
  if (event->call == UMN_CALL_FORK) return;
  auto* range = static_cast<umn_notifier_range*>(scratch);
  static_assert(sizeof(umn_notifier_range) <= UMN_PROCESS_SCRATCH_SIZE);
  if (phase == UMN_PROCESS_PHASE_START) {
    umn_notifier_range_init(range, event->event, 0, static_cast<umn_mm*>(ctx), event->start, event->end);
    umn_notifier_invalidate_range_start(range);
  } else {
    umn_notifier_invalidate_range_end(range);
  }
}

int claim_slot(Registry* registry, umn_process_observer_fn fn, void* ctx, unsigned flags) noexcept {
  for (unsigned i = 0; i < kRegistrySlots; ++i) {
    Registry::Slot& slot = registry->slots[i];
    umn_process_observer_fn expected = nullptr;
    if (slot.fn.load(std::memory_order_relaxed) != nullptr) continue;
    slot.ctx.store(ctx, std::memory_order_relaxed);
    slot.flags.store(flags, std::memory_order_relaxed);
    // Pairs with the acquire load in deliver_start.
    if (!slot.fn.compare_exchange_strong(expected, fn, std::memory_order_release)) continue;
    if ((flags & UMN_PROCESS_OBSERVE_QUIET) != 0) registry->quiet.fetch_add(1, std::memory_order_relaxed);
    unsigned used = registry->used.load(std::memory_order_relaxed);
    while (used < i + 1 && !registry->used.compare_exchange_weak(used, i + 1, std::memory_order_release)) {
    }
    return static_cast<int>(i);
  }
  return -ENOSPC;
}

}  // namespace umn::detail

using namespace umn::detail;

extern "C" {

int umn_process_observer_add_flags(umn_process_observer_fn fn, void* ctx, unsigned flags) {
  int status = check_observer_args(fn, flags);
  if (status != 0) return status;
  status = umn_process_hooks_install();
  if (status != 0) return status;
  return claim_slot(active_registry(), fn, ctx, flags);
}

int umn_process_observer_add(umn_process_observer_fn fn, void* ctx) { return umn_process_observer_add_flags(fn, ctx, 0); }

void umn_process_observer_remove(int slot) {
  if (slot < 0 || static_cast<unsigned>(slot) >= kRegistrySlots) return;
  active_registry()->slots[slot].fn.store(nullptr, std::memory_order_release);
}

}  // extern "C"
