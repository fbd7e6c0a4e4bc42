// query.hpp - what the event sources (src/sources/) may ask of the core: the one core header on their
// include path (cmake/umn_layers.cmake), so that they never depend on the core's private state.
//
// Locking: none; each call is one atomic load or a function-local static.
// Lifetime: the process address space is created on first use and never destroyed (hooks may fire
// during static destruction).
// Context: any thread, signal handlers included (no lock, no allocation).
// Memory ordering: mm_has_subscriptions() is an acquire load of the pointer that the core publishes with
// a seq_cst CAS (subscriptions_get_or_create in mm.cc), so a true answer also shows the subscriptions'
// initialised state.
#pragma once

struct umn_mm;

namespace umn::detail {

// True once anything has subscribed to mm (an interval notifier inserted or a notifier registered, even
// if since removed). A false answer lets a source skip the delivery of an event.
[[nodiscard]] bool mm_has_subscriptions(const umn_mm* mm) noexcept;

// The process's address space, without installing anything: umn_mm_process() (src/sources/process/)
// is this plus the installation of the hooks that feed it.
[[nodiscard]] umn_mm* process_address_space() noexcept;

// The calling thread's interval-tree walks (itree_invalidate.cc), as an opaque mark: itree_walk_restore
// (mark) forgets every walk entered after itree_walk_mark() returned it. For a source whose thread left
// a delivery for good (a siglongjmp out of a callback: the walks' frames are dead; the process hooks'
// thread_state.hpp), before it ends the ranges left open. Context: any thread, signal handlers included.
[[nodiscard]] const void* itree_walk_mark() noexcept;
void itree_walk_restore(const void* mark) noexcept;

// The event source's steps in libumn's fork handlers (core/fork.hpp has the whole order). enter runs
// first in prepare and returns the process address space when the source hands it out (then its
// subscriptions are published now, so that no thread publishes and locks fresh ones before the clone),
// else nullptr; start(mm) starts the fork event's ranges (mm may be nullptr); finish(child) ends them;
// leave runs last in parent and child. Context: inside fork(), signals blocked.
struct ForkSource {
  umn_mm* (*enter)() noexcept;
  void (*start)(umn_mm* mm) noexcept;
  void (*finish)(bool child) noexcept;
  void (*leave)() noexcept;
};
// Sets the source whose steps the handlers run (once, at load). Context: any.
void fork_set_source(const ForkSource* source) noexcept;

}  // namespace umn::detail
