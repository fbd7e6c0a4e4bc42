// state.hpp - the process hooks' process-wide state: installation status, the address space they feed,
// the observer registry events flow through, counters, and whether this thread is installing (the
// per-thread delivery state is in thread_state.hpp).
//
// Locking: none. g_install_state is the installer's state machine (install.cc); the other globals are
//   written by the installer before g_install_state becomes 2 and read-only afterwards, except the
//   counters (relaxed, statistics only) and g_active (chained installs switch it once, before the state
//   becomes 2).
// Lifetime: static storage, for the life of the process (libumn is never unloaded).
// Context: read by the dispatcher on any thread and from signal handlers.
// Memory ordering: g_mm and g_active are published with release stores by the installer and read with
//   acquire loads by the dispatcher (the patch itself is not a synchronising store: threads reach the hook
//   by instruction fetch). g_status is written before the release store of g_install_state = 2.
#pragma once

#include <atomic>

#include "sources/process/registry.hpp"
#include "umn/umn.h"

namespace umn::detail {

extern std::atomic<int> g_install_state;  // 0 not yet, 1 installing, 2 done; release on 2, pairs with loads
extern int g_status;                      // written before g_install_state = 2
extern std::atomic<umn_mm*> g_mm;         // the address space fed (nullptr when chained to another copy)
extern Registry g_registry;               // ours; other copies and tracers join it if we own the sites
extern std::atomic<Registry*> g_active;   // the registry events flow through (another copy's when chained)
extern std::atomic<unsigned long> g_events;  // ranges started by the hooks (relaxed statistics)
extern std::atomic<unsigned long> g_nested;  // calls passed through from inside a delivery (relaxed)

// This thread is running the installation (its own hooked calls must not wait for it).
[[gnu::tls_model("initial-exec")]] extern thread_local bool t_installing;

// Pairs with the installer's release store of g_mm.
inline umn_mm* process_mm() noexcept { return g_mm.load(std::memory_order_acquire); }
// Pairs with the installer's release store of g_active.
inline Registry* active_registry() noexcept { return g_active.load(std::memory_order_acquire); }

}  // namespace umn::detail
