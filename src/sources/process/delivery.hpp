// delivery.hpp - delivering one event: invalidate_range_start on umn_mm_process() and every registry
// observer before the real system call, observers in reverse and invalidate_range_end after it.
//
// Locking: no lock of its own; the core's subscription lock is taken inside range_start/_end when
//   notifiers exist. Observers are called with no umn lock held.
// Lifetime: a Pending lives in the calling thread's state (thread_state.hpp; on the stack beyond its
//   levels, in fork's static array for fork) from start to end.
// Context: any thread, signal handlers included; no allocation. Every delivery marks its Level as
//   delivering (the dispatcher's nested test) for its duration and restores errno.
// Memory ordering: observer slots are read with acquire on fn (pairs with the release CAS in
//   claim_slot, observers.cc), then ctx.
#pragma once

#include <cstdint>

#include "sources/process/registry.hpp"
#include "umn/process.h"

namespace umn::detail {

struct Level;

// One event with what its delivery needs between start and end: the core range and, per observer slot,
// the observer seen at start (so end calls the same ones) and its scratch space. What has started and not
// ended yet is recorded as it happens (core_open, fns[]), so that an end after a start that was left
// midway (a siglongjmp out of a callback, thread_state.hpp) ends exactly what began, and a second end is
// a no-op.
struct Pending {
  umn_process_event event;
  umn_notifier_range range;
  bool core_open;  // range_start was entered and range_end not yet
  umn_process_observer_fn fns[kRegistrySlots];
  void* ctxs[kRegistrySlots];
  alignas(16) unsigned char scratch[kRegistrySlots][UMN_PROCESS_SCRATCH_SIZE];
};

// Starts pending->event, as part of level: counts it, range_start on mm (if not nullptr), then the
// observers of registry (if not nullptr) in order.
void deliver_start(Level& level, Pending* pending, umn_mm* mm, Registry* registry) noexcept;
// The same on the process address space and the active registry (state.hpp).
void deliver_start(Level& level, Pending* pending) noexcept;
// Starts pending->event for a call made inside a delivery on this thread (a callback's own munmap, a
// signal handler interrupting a delivery): the observers added with UMN_PROCESS_OBSERVE_NESTED only --
// never the notifiers, so the hooks never recurse into the core. Not counted in g_events.
void deliver_nested_start(Level& level, Pending* pending) noexcept;
// Ends it with the raw system call result: the observers that got START, in reverse, then range_end if
// range_start was entered. Ending an event twice ends it once.
void deliver_end(Level& level, Pending* pending, long result) noexcept;
// After a hooked call that caused no event: tells the observers whose flags include all of `required`
// (UMN_PROCESS_OBSERVE_QUIET, with _NESTED for a nested call; one relaxed load when nobody asked).
void deliver_quiet(Level& level, long nr, const long* a, long result, uintptr_t caller, uint32_t required) noexcept;
// Issues the call unannounced, then deliver_quiet. Return: the raw result.
long quiet_call(Level& level, long nr, const long* a, uintptr_t caller) noexcept;

}  // namespace umn::detail
