// api.cc - the public C calls of umn/process.h that report state and name things (installation is in
// install.cc, observers in observers.cc).
#include <cstring>

#include "sources/process/state.hpp"
#include "umn/process.h"

using namespace umn::detail;

extern "C" {

void umn_process_hooks_get_info(umn_process_hooks_info* info) {
  const bool done = g_install_state.load(std::memory_order_acquire) == 2;
  std::memset(info, 0, sizeof(*info));
  info->status = done ? g_status : 1;
  if (!done) return;
  info->sites_patched = g_install.patched;
  info->sites_shared = g_install.shared;
  info->sites_foreign = g_install.foreign;
  info->sites_unsafe = g_install.unsafe;
  info->modules = g_install.modules;
  info->raw_syscall_covered = g_install.syscall_fn ? 1 : 0;
  info->events = g_events.load(std::memory_order_relaxed);
  info->nested = g_nested.load(std::memory_order_relaxed);
}

const char* umn_process_call_name(umn_process_call call) {
  static const char* const names[] = {"munmap", "mremap", "madvise", "mprotect", "brk",   "shmdt",
                                      "mmap_fixed", "fork", "uffd", "quiet", "shmat", "process_madvise"};
  static_assert(sizeof(names) / sizeof(names[0]) == UMN_CALL_COUNT);
  return static_cast<unsigned>(call) < UMN_CALL_COUNT ? names[call] : "?";
}

const char* umn_notifier_event_name(umn_notifier_event event) {
  static const char* const names[] = {"UNMAP",   "CLEAR",   "PROTECTION_VMA", "PROTECTION_PAGE",
                                      "SOFT_DIRTY", "RELEASE", "MIGRATE",     "EXCLUSIVE"};
  return static_cast<unsigned>(event) <= UMN_NOTIFY_EXCLUSIVE ? names[event] : "?";
}

}  // extern "C"
