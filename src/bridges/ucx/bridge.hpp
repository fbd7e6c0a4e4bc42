// bridge.hpp - the parts of libumn-ucx.so (umn/ucx.h): the UCX version check, UCX's hook settings, and
// the observer that turns umn process events into ucm_vm_munmap() calls.
//
// Locking: none here; bridge.cc serialises the start.
// Lifetime: static storage for the life of the process.
// Context: forward() runs as a umn process observer (umn/process.h); settings_for_umn() runs inside
// UCX's library constructor, before UCM is initialised.
// Memory ordering: the forwarded counter is relaxed (a statistic).
#pragma once

#include <ucm/api/ucm.h>

#include <atomic>

#include "umn/process.h"

namespace umn::ucx {

struct Version {
  unsigned major = 0, minor = 0, release = 0;
};

// The UCX found at run time (ucp_get_version of the libucp this process uses).
Version ucx_version() noexcept;
// Whether the bridge knows how to drive this UCX: 1.8 <= v < 2.0 (ucm_global_config_t's first four
// fields and the external-event API are the same over that range; 1.13.1 is the version tested).
bool supported(Version v) noexcept;
// Whether the bridge will feed UCX: a supported version, UCX's memory events on, umn's hooks not
// disabled by UMN_PROCESS_HOOKS=0. Called before anything is installed.
bool will_feed(const ucm_global_config_t& opts) noexcept;

// Turns UCX's own mmap and malloc hooks off in opts, for each of the two whose environment variable
// (UCX_MEM_MMAP_HOOK_MODE, UCX_MEM_MALLOC_HOOKS) the user did not set. Return: whether mmap hooks are off.
bool settings_for_umn(ucm_global_config_t* opts) noexcept;

// The umn process observer (flags UMN_PROCESS_OBSERVE_QUIET): every range UCM would announce as
// UCM_EVENT_VM_UNMAPPED goes to ucm_vm_munmap().
void forward(void* ctx, const umn_process_event* event, int phase, void* scratch) noexcept;
extern std::atomic<unsigned long> g_forwarded;  // relaxed: a statistic

}  // namespace umn::ucx
