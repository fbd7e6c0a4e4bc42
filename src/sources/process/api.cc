// api.cc - the public C call of umn/process.h that reports the hooks' state (installation is in
// install.cc, observers in observers.cc, umn_process_call_name in call_name.cc, umn_mm_process in
// process_mm.cc; umn_notifier_event_name belongs to the core: src/core/event_name.cc).
#include <cstring>

#include "sources/patch/x86_64.hpp"
#include "sources/process/state.hpp"
#include "umn/process.h"

using namespace umn::detail;

extern "C" {

void umn_process_hooks_get_info(umn_process_hooks_info* info) {
  const bool done = g_install_state.load(std::memory_order_acquire) == 2;
  std::memset(info, 0, sizeof(*info));
  info->status = done ? g_status : 1;
  if (!done) return;
  const patch::InstallResult totals = patch::totals();  // the installation and every dlopen since
  info->sites_patched = totals.patched;
  info->sites_shared = totals.shared;
  info->sites_foreign = totals.foreign;
  info->sites_unsafe = totals.unsafe;
  info->sites_unknown = totals.unknown;
  info->sites_undecoded = totals.undecoded;
  info->sites_failed = totals.failed;
  info->text_unscanned = totals.unscanned;
  info->modules = totals.modules;
  info->raw_syscall_covered = totals.syscall_fn ? 1 : 0;
  info->events = g_events.load(std::memory_order_relaxed);
  info->nested = g_nested.load(std::memory_order_relaxed);
}

}  // extern "C"
