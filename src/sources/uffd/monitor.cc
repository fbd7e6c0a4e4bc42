// monitor.cc - the userfaultfd monitor: an optional second event source for registered ranges.
//
// What it guarantees (the kernel's fs/userfaultfd.c, userfaultfd_event_wait_completion: the thread that
// caused an event sleeps until the monitor read() it; checked on Linux 6.18 by
// tests/unit/sources/uffd_test.cc):
//   - UFFD_EVENT_UNMAP (munmap, mremap's old range, MAP_FIXED over, brk shrink) and UFFD_EVENT_REMAP
//     (delivered here as UNMAP of the old range) arrive AFTER the pages are gone: the callbacks cannot
//     read the old contents; a device may have used stale translations in between.
//   - UFFD_EVENT_REMOVE (madvise DONTNEED/REMOVE/FREE) is queued before the zap, but the madvising thread
//     resumes as soon as this thread read() the event, so the zap runs concurrently with the delivery.
//   - In every case the unmapping call does not return before this thread has read the event; it does
//     not wait for the delivery. It sees every path (libc, raw syscalls, other libraries, static code),
//     unlike the hooks, but only for ranges registered here (anonymous, shmem, hugetlbfs).
//   - Registration is MISSING mode: a first touch of an unpopulated registered page faults into this
//     thread, which answers with a zero page (UFFDIO_ZEROPAGE), so touching never hangs while it runs.
//     After stop(), the ranges stay registered to a closed descriptor: the kernel then maps zero pages
//     itself (a released userfaultfd resolves faults), so nothing hangs afterwards either.
// Rules: this thread never frees or unmaps memory (libfabric #5554: a monitor that unmaps waits for
// itself). Callbacks run on this thread and must not unmap registered memory either.
//
// Locking: Monitor::lock serialises register/stop; the thread owns the descriptor's read side.
// Lifetime: start() allocates the Monitor (never from a hook); stop() joins the thread and frees it.
// Memory ordering: events_ is a relaxed counter; the thread's deliveries follow the kernel's ordering.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "base/check.hpp"
#include "base/lock.hpp"
#include "sources/sys/sys.hpp"
#include "umn/process.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

struct umn_uffd_monitor {
  umn_mm* mm = nullptr;
  int uffd = -1;
  int stop_fd = -1;
  pthread_t thread{};
  umn::detail::Mutex lock;  // serialises register and stop; guards no field (the thread reads the fds)
  std::atomic<unsigned long> events{0};
};

namespace {

long ioctl_raw(int fd, unsigned long request, void* arg) {
  return umn::sys::call(SYS_ioctl, fd, static_cast<long>(request), reinterpret_cast<long>(arg));
}

void deliver(umn_uffd_monitor* monitor, umn_notifier_event event, uint64_t start, uint64_t end) {
  if (start >= end) return;
  umn_notifier_range range;
  umn_notifier_range_init(&range, event, 0, monitor->mm, start, end);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  monitor->events.fetch_add(1, std::memory_order_relaxed);
}

void handle(umn_uffd_monitor* monitor, const uffd_msg& msg) {
  switch (msg.event) {
    case UFFD_EVENT_PAGEFAULT: {
      uffdio_zeropage zero = {};
      zero.range.start = umn::sys::page_down(msg.arg.pagefault.address);
      zero.range.len = umn::sys::kPageSize;
      ioctl_raw(monitor->uffd, UFFDIO_ZEROPAGE, &zero);  // EEXIST when another fault won: fine
      break;
    }
    case UFFD_EVENT_REMOVE:
      deliver(monitor, UMN_NOTIFY_CLEAR, msg.arg.remove.start, msg.arg.remove.end);
      break;
    case UFFD_EVENT_UNMAP:
      deliver(monitor, UMN_NOTIFY_UNMAP, msg.arg.remove.start, msg.arg.remove.end);
      break;
    case UFFD_EVENT_REMAP:
      deliver(monitor, UMN_NOTIFY_UNMAP, msg.arg.remap.from, msg.arg.remap.from + msg.arg.remap.len);
      break;
    default:
      break;
  }
}

void* monitor_thread(void* arg) {
  auto* monitor = static_cast<umn_uffd_monitor*>(arg);
  pollfd fds[2] = {{monitor->uffd, POLLIN, 0}, {monitor->stop_fd, POLLIN, 0}};
  for (;;) {
    long n = umn::sys::call(SYS_ppoll, reinterpret_cast<long>(fds), 2, 0, 0, 0);
    if (n == -EINTR) continue;
    if (umn::sys::failed(n) || (fds[1].revents & POLLIN) != 0) break;
    uffd_msg msgs[16];
    long got = umn::sys::read(monitor->uffd, msgs, sizeof(msgs));
    if (got == -EAGAIN || got == -EINTR) continue;
    if (umn::sys::failed(got)) break;
    for (long i = 0; i < got / static_cast<long>(sizeof(uffd_msg)); ++i) handle(monitor, msgs[i]);
  }
  return nullptr;
}

int open_uffd() {
  long fd = umn::sys::call(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd == -EINVAL) fd = umn::sys::call(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);  // kernel < 5.11
  if (umn::sys::failed(fd)) return static_cast<int>(fd);
  uffdio_api api = {};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_UNMAP | UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_REMAP;
  long err = ioctl_raw(static_cast<int>(fd), UFFDIO_API, &api);
  if (umn::sys::failed(err)) {
    umn::sys::close(static_cast<int>(fd));
    return static_cast<int>(err);
  }
  return static_cast<int>(fd);
}

}  // namespace

extern "C" {

umn_uffd_monitor* umn_uffd_monitor_start(umn_mm* mm) {
  if (!UMN_CHECK(mm != nullptr, "umn_uffd_monitor_start", "NULL address space")) {
    errno = EINVAL;
    return nullptr;
  }
  auto* monitor = new (std::nothrow) umn_uffd_monitor;
  if (monitor == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  monitor->mm = mm;
  monitor->uffd = open_uffd();
  monitor->stop_fd = eventfd(0, EFD_CLOEXEC);
  int err = monitor->uffd < 0 ? -monitor->uffd : monitor->stop_fd < 0 ? errno : 0;
  if (err == 0) err = pthread_create(&monitor->thread, nullptr, &monitor_thread, monitor);
  if (err != 0) {
    if (monitor->uffd >= 0) umn::sys::close(monitor->uffd);
    if (monitor->stop_fd >= 0) umn::sys::close(monitor->stop_fd);
    delete monitor;
    errno = err;
    return nullptr;
  }
  return monitor;
}

int umn_uffd_monitor_register(umn_uffd_monitor* monitor, void* addr, size_t length) {
  if (!UMN_CHECK(monitor != nullptr, "umn_uffd_monitor_register", "NULL monitor")) return -EINVAL;
  umn::detail::MutexLock guard(monitor->lock);
  uffdio_register reg = {};
  reg.range.start = reinterpret_cast<uint64_t>(addr);
  reg.range.len = length;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  long err = ioctl_raw(monitor->uffd, UFFDIO_REGISTER, &reg);
  return umn::sys::failed(err) ? static_cast<int>(err) : 0;
}

unsigned long umn_uffd_monitor_events(const umn_uffd_monitor* monitor) {
  if (!UMN_CHECK(monitor != nullptr, "umn_uffd_monitor_events", "NULL monitor")) return 0;
  return monitor->events.load(std::memory_order_relaxed);
}

void umn_uffd_monitor_stop(umn_uffd_monitor* monitor) {
  if (monitor == nullptr) return;
  {
    umn::detail::MutexLock guard(monitor->lock);
    uint64_t one = 1;
    umn::sys::write_all(monitor->stop_fd, &one, sizeof(one));
  }
  pthread_join(monitor->thread, nullptr);
  umn::sys::close(monitor->uffd);  // releases the registrations: pending and future faults resolve
  umn::sys::close(monitor->stop_fd);
  delete monitor;
}

}  // extern "C"
