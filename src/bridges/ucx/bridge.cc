// bridge.cc - umn_ucx_bridge_start(): check, install, declare, prove; and the constructor that runs it.
//
// Algorithm:
//   1. UCX version (ucp_get_version) within what the bridge knows, and UCX's memory events on.
//   2. umn_process_observer_add_flags(forward, QUIET | NESTED): installs the umn process hooks.
//   3. UCX's own mmap/malloc hooks off unless the environment names them (settings.cc did it already if
//      libucs was initialised through our ucm_set_global_opts; done here on the live settings otherwise,
//      which only helps when UCM has not patched anything yet).
//   4. ucm_set_external_event(UCM_EVENT_VM_UNMAPPED): UCX will not install hooks for it from now on.
//   5. Prove it: a UCM handler of our own must see a one-page munmap; then it is removed.
// Any failure prints one "umn-ucx:" line and leaves UCX's external events as they were (a failure at 5
// withdraws 2 and 4 before any cache can exist).
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "bridges/ucx/bridge.hpp"
#include "umn/ucx.h"

namespace umn::ucx {
namespace {

std::mutex g_start_lock;  // serialises umn_ucx_bridge_start
int g_status = 1;         // written under g_start_lock; read racily by get_info (an int, a statistic)

struct Probe {
  uintptr_t page = 0;
  size_t page_size = 0;
  bool seen = false;
};

void probe_handler(ucm_event_type_t type, ucm_event_t* event, void* arg) {
  auto* probe = static_cast<Probe*>(arg);
  const auto start = reinterpret_cast<uintptr_t>(event->vm_unmapped.address);
  if (type == UCM_EVENT_VM_UNMAPPED && start <= probe->page &&
      probe->page + probe->page_size <= start + event->vm_unmapped.size)
    probe->seen = true;
}

// Step 5. Return: 0, or -EIO when the handler saw nothing, or -ENOTSUP when UCM refused the handler.
int prove() noexcept {
  Probe probe;
  probe.page_size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* page = mmap(nullptr, probe.page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return -errno;
  probe.page = reinterpret_cast<uintptr_t>(page);
  if (ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, -1, probe_handler, &probe) != UCS_OK) {
    munmap(page, probe.page_size);
    return -ENOTSUP;
  }
  munmap(page, probe.page_size);
  ucm_unset_event_handler(UCM_EVENT_VM_UNMAPPED, probe_handler, &probe);
  return probe.seen ? 0 : -EIO;
}

int start_locked() noexcept {
  const Version v = ucx_version();
  if (!supported(v)) {
    std::fprintf(stderr,
                 "umn-ucx: UCX %u.%u.%u is not supported (1.8 <= version < 2.0); umn does not feed UCX's "
                 "memory events, UCX keeps its own hooks\n",
                 v.major, v.minor, v.release);
    return -EPROTONOSUPPORT;
  }
  if (ucm_global_opts.enable_events == 0) {
    std::fprintf(stderr, "umn-ucx: UCX_MEM_EVENTS=no: UCX refuses external memory events too; umn does not feed UCX\n");
    return -ENOTSUP;
  }
  if (!will_feed(ucm_global_opts)) {
    std::fprintf(stderr, "umn-ucx: umn process hooks disabled (UMN_PROCESS_HOOKS=0); umn does not feed UCX\n");
    return -EPERM;
  }
  // NESTED: what a UCX handler or a signal handler unmaps inside a delivery reaches UCX too, as with
  // UCM's own hooks (forward is reentrant; UCM takes its event lock for reading again).
  const int slot =
      umn_process_observer_add_flags(forward, nullptr, UMN_PROCESS_OBSERVE_QUIET | UMN_PROCESS_OBSERVE_NESTED);
  if (slot < 0) {
    std::fprintf(stderr, "umn-ucx: umn process hooks unavailable (%s); umn does not feed UCX\n", std::strerror(-slot));
    return slot;
  }
  settings_for_umn(&ucm_global_opts);
  ucm_set_external_event(UCM_EVENT_VM_UNMAPPED);
  if (int err = prove(); err != 0) {
    // Withdrawn before any cache exists: UCX installs its own hooks, or refuses caches if they are off.
    ucm_unset_external_event(UCM_EVENT_VM_UNMAPPED);
    umn_process_observer_remove(slot);
    std::fprintf(stderr,
                 "umn-ucx: UCX %u.%u.%u did not receive a munmap forwarded by umn (%s); umn does not "
                 "feed UCX\n",
                 v.major, v.minor, v.release, std::strerror(-err));
    return err;
  }
  return 0;
}

[[gnu::constructor]] void start_at_load() { umn_ucx_bridge_start(); }

}  // namespace
}  // namespace umn::ucx

extern "C" int umn_ucx_bridge_start(void) {
  std::lock_guard<std::mutex> lock(umn::ucx::g_start_lock);
  if (umn::ucx::g_status == 1) umn::ucx::g_status = umn::ucx::start_locked();
  return umn::ucx::g_status;
}

extern "C" void umn_ucx_bridge_get_info(struct umn_ucx_bridge_info* info) {
  const umn::ucx::Version v = umn::ucx::ucx_version();
  info->status = umn::ucx::g_status;
  info->ucx_major = v.major;
  info->ucx_minor = v.minor;
  info->ucx_release = v.release;
  info->ucx_hooks_off = ucm_global_opts.mmap_hook_mode == UCM_MMAP_HOOK_NONE ? 1 : 0;
  info->forwarded = umn::ucx::g_forwarded.load(std::memory_order_relaxed);
}
