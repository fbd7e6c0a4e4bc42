// observers.hpp - the observer chain: claiming registry slots, and feeding this copy's address space as
// an observer of another umn copy that owns the sites.
//
// Locking: none; slots are claimed with a compare-and-swap on fn (registry.hpp).
// Lifetime: see registry.hpp (an observer's ctx lives for the life of the process).
// Context: claim_slot from any thread; chained_observer runs inside deliveries (any thread, handlers).
// Memory ordering: ctx and flags are stored before fn is published with a release CAS; pairs with the
//   acquire loads of fn in delivery.cc.
#pragma once

#include "sources/process/registry.hpp"
#include "umn/process.h"

namespace umn::detail {

// Claims the first free slot of registry for fn(ctx) with flags. Return: the slot index, or -ENOSPC.
int claim_slot(Registry* registry, umn_process_observer_fn fn, void* ctx, unsigned flags = 0) noexcept;

// The observer through which another copy's hooks feed our address space ctx (a umn_mm*).
void chained_observer(void* ctx, const umn_process_event* event, int phase, void* scratch);

}  // namespace umn::detail
