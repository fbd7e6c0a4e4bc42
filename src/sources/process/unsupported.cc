// unsupported.cc - the process API where the process hooks are not built (every architecture but x86-64,
// or UMN_PROCESS_HOOKS=OFF): umn_mm_process() is an address space that nothing feeds, and every call
// that needs the hooks or userfaultfd monitoring returns -ENOSYS (or NULL with errno ENOSYS), as
// umn/process.h promises. tests/unit/nohooks checks each one in that configuration.
#include <cerrno>
#include <cstring>

#include "core/query.hpp"
#include "sources/process/observer_args.hpp"
#include "umn/process.h"

extern "C" {

umn_mm* umn_mm_process(void) { return umn::detail::process_address_space(); }

int umn_process_hooks_install(void) { return -ENOSYS; }

void umn_process_hooks_get_info(umn_process_hooks_info* info) {
  std::memset(info, 0, sizeof(*info));
  info->status = -ENOSYS;
}

int umn_process_observer_add_flags(umn_process_observer_fn fn, void* ctx, unsigned flags) {
  (void)ctx;
  const int status = umn::detail::check_observer_args(fn, flags);
  return status != 0 ? status : -ENOSYS;
}

int umn_process_observer_add(umn_process_observer_fn fn, void* ctx) {
  return umn_process_observer_add_flags(fn, ctx, 0);
}

void umn_process_observer_remove(int slot) { (void)slot; }

umn_uffd_monitor* umn_uffd_monitor_start(umn_mm* mm) {
  (void)mm;
  errno = ENOSYS;
  return nullptr;
}

int umn_uffd_monitor_register(umn_uffd_monitor* monitor, void* addr, size_t length) {
  (void)monitor, (void)addr, (void)length;
  return -ENOSYS;
}

unsigned long umn_uffd_monitor_events(const umn_uffd_monitor* monitor) {
  (void)monitor;
  return 0;
}

void umn_uffd_monitor_stop(umn_uffd_monitor* monitor) { (void)monitor; }

}  // extern "C"
