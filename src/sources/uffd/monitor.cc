// monitor.cc - (in progress) the userfaultfd monitor.
#include <cerrno>

#include "umn/process.h"

extern "C" {
umn_uffd_monitor* umn_uffd_monitor_start(umn_mm*) {
  errno = ENOSYS;
  return nullptr;
}
int umn_uffd_monitor_register(umn_uffd_monitor*, void*, size_t) { return -ENOSYS; }
unsigned long umn_uffd_monitor_events(const umn_uffd_monitor*) { return 0; }
void umn_uffd_monitor_stop(umn_uffd_monitor*) {}
}
