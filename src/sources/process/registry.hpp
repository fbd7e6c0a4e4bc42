// registry.hpp - the observer registry shared by every umn copy in a process (see patch/x86_64.hpp).
//
// The copy that patched libc owns the registry; other copies (and the `umn trace` preload) add observers
// to it. The layout is an ABI between copies: change it only together with kRegistryAbi.
//
// Locking: none; slots are claimed with a compare-and-swap on fn.
// Lifetime: the registry lives in the owning copy's static storage for the life of the process; an
// observer's ctx must stay valid until umn_process_observer_remove() returns and no event that started
// before is still running (in practice: for the life of the process).
// Context: the dispatcher reads the slots from any thread and from signal handlers.
// Memory ordering: a slot's ctx is stored before its fn is published with a release CAS; readers load fn
// with acquire, then ctx.
#pragma once

#include <atomic>
#include <cstdint>

#include "umn/process.h"

namespace umn::detail {

inline constexpr uint32_t kRegistryAbi = 0x756d6e06;  // 06: umn_process_call grew TRUNCATE, FALLOCATE
                                                      // (observers index tables by call)
                                                      // 05: nested calls reach UMN_PROCESS_OBSERVE_NESTED
                                                      // observers (04: umn_process_event grew nr, args)
inline constexpr unsigned kRegistrySlots = 8;

struct Registry {
  uint32_t abi = kRegistryAbi;
  struct Slot {
    std::atomic<umn_process_observer_fn> fn{nullptr};  // publishes ctx; pairs with the dispatcher's load
    std::atomic<void*> ctx{nullptr};
    std::atomic<uint32_t> flags{0};                    // UMN_PROCESS_OBSERVE_* (umn/process.h)
  } slots[kRegistrySlots];
  std::atomic<unsigned> used{0};  // highest slot index + 1 ever claimed (a hint for the walk)
  std::atomic<unsigned> quiet{0};  // slots ever claimed with UMN_PROCESS_OBSERVE_QUIET (a hint)
};

}  // namespace umn::detail
