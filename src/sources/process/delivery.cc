// delivery.cc - delivering one event to the process address space and the observers (contract in
// delivery.hpp). Everything lives in the thread's state, on the caller's stack or in static storage: no
// malloc, no lock besides the core's subscription lock (taken only when notifiers exist), so the path is
// async-signal-safe.
#include "sources/process/delivery.hpp"

#include <sys/syscall.h>

#include <cerrno>

#include "sources/process/state.hpp"
#include "sources/process/thread_state.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail {
namespace {

// Around every call into notifiers and observers: marks the level, and so its thread, as delivering (the
// dispatcher passes the thread's calls through as nested), and keeps errno as the interrupted libc code
// left it (libc sets errno itself from the raw result; a callback may change it). A siglongjmp out of
// the callbacks skips the destructor: the thread's next hooked call finds the level dead and clears it
// (thread_state.cc).
struct DeliveryScope {
  explicit DeliveryScope(Level& delivering) noexcept : level(delivering), saved_errno(errno) {
    level.delivering = true;
    level.state->delivering.fetch_add(1, std::memory_order_relaxed);  // this thread and its handlers only
  }
  ~DeliveryScope() {
    level.state->delivering.fetch_sub(1, std::memory_order_relaxed);
    level.delivering = false;
    errno = saved_errno;
  }
  Level& level;
  int saved_errno;
};

// Calls the observers of registry (none if nullptr) whose flags include all of `required` at START, in
// slot order, and keeps them in pending for deliver_end.
void start_observers(Pending* pending, Registry* registry, uint32_t required) noexcept {
  const unsigned used = registry != nullptr ? registry->used.load(std::memory_order_acquire) : 0;
  for (unsigned i = 0; i < kRegistrySlots; ++i) {
    // Pairs with the release CAS in claim_slot: ctx and flags are visible once fn is.
    umn_process_observer_fn fn = i < used ? registry->slots[i].fn.load(std::memory_order_acquire) : nullptr;
    if (fn != nullptr && (registry->slots[i].flags.load(std::memory_order_relaxed) & required) != required)
      fn = nullptr;
    pending->fns[i] = fn;
    if (fn == nullptr) continue;
    pending->ctxs[i] = registry->slots[i].ctx.load(std::memory_order_relaxed);
    fn(pending->ctxs[i], &pending->event, UMN_PROCESS_PHASE_START, pending->scratch[i]);
  }
}

}  // namespace

void deliver_start(Level& level, Pending* pending, umn_mm* mm, Registry* registry) noexcept {
  DeliveryScope scope(level);
  g_events.fetch_add(1, std::memory_order_relaxed);
  const umn_process_event& event = pending->event;
  for (umn_process_observer_fn& fn : pending->fns) fn = nullptr;
  umn_notifier_range_init(&pending->range, event.event, 0, mm, event.start, event.end);
  pending->core_open = mm != nullptr;
  if (mm != nullptr) umn_notifier_invalidate_range_start(&pending->range);
  start_observers(pending, registry, 0);
}

void deliver_nested_start(Level& level, Pending* pending) noexcept {
  DeliveryScope scope(level);
  for (umn_process_observer_fn& fn : pending->fns) fn = nullptr;
  pending->core_open = false;  // no range_end in deliver_end: the notifiers never saw it
  start_observers(pending, active_registry(), UMN_PROCESS_OBSERVE_NESTED);
}

void deliver_start(Level& level, Pending* pending) noexcept {
  deliver_start(level, pending, process_mm(), active_registry());
}

void deliver_end(Level& level, Pending* pending, long result) noexcept {
  DeliveryScope scope(level);
  pending->event.result = result;
  for (unsigned i = kRegistrySlots; i-- > 0;) {
    umn_process_observer_fn fn = pending->fns[i];
    pending->fns[i] = nullptr;  // ended (also if its END does not return)
    if (fn != nullptr) fn(pending->ctxs[i], &pending->event, UMN_PROCESS_PHASE_END, pending->scratch[i]);
  }
  if (pending->core_open) {
    pending->core_open = false;
    // The kernel flushes secondary TLBs that share the CPU page tables from the TLB flush of the zap,
    // inside the range: so here, after the call and before range_end.
    umn_notifier_arch_invalidate_secondary_tlbs(pending->range.mm, pending->range.start, pending->range.end);
    umn_notifier_invalidate_range_end(&pending->range);
  }
}

void deliver_quiet(Level& level, long nr, const long* a, long result, uintptr_t caller, uint32_t required) noexcept {
  Registry* registry = active_registry();
  if (registry->quiet.load(std::memory_order_relaxed) == 0) return;
  DeliveryScope scope(level);
  const bool returns_addr = nr == SYS_mmap || nr == SYS_mremap || nr == SYS_shmat;
  const uint64_t addr = static_cast<uint64_t>(returns_addr ? result : a[0]);
  umn_process_event event = {UMN_CALL_QUIET, UMN_NOTIFY_UNMAP, addr, addr, caller, result, nr, a};
  alignas(16) unsigned char scratch[UMN_PROCESS_SCRATCH_SIZE];
  const unsigned used = registry->used.load(std::memory_order_acquire);
  for (unsigned i = 0; i < used && i < kRegistrySlots; ++i) {
    umn_process_observer_fn fn = registry->slots[i].fn.load(std::memory_order_acquire);
    if (fn == nullptr || (registry->slots[i].flags.load(std::memory_order_relaxed) & required) != required) continue;
    fn(registry->slots[i].ctx.load(std::memory_order_relaxed), &event, UMN_PROCESS_PHASE_QUIET, scratch);
  }
}

long quiet_call(Level& level, long nr, const long* a, uintptr_t caller) noexcept {
  long result = sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  deliver_quiet(level, nr, a, result, caller, UMN_PROCESS_OBSERVE_QUIET);
  return result;
}

}  // namespace umn::detail
