// process.hpp - the process address space from C++: hook status, observers, the userfaultfd monitor.
//
// Use umn::AddressSpace::process() (address_space.hpp) to get this process's address space; inserting
// an interval notifier into it is all most users need:
//
//   auto mm = umn::AddressSpace::process();          // installs the hooks on first use
//   umn::FunctionNotifier watch([&](umn::IntervalNotifier& n, const umn::Range& r, unsigned long seq) {
//     device.unmap(r.start(), r.end());               // runs inside munmap/free/..., before the pages go
//     n.set_seq(seq);
//     return true;
//   });
//   watch.insert(mm, reinterpret_cast<uint64_t>(buf), len);
//
// Locking, Lifetime, Context and Memory ordering: as umn/process.h (the C API these wrap). In short:
// callbacks run inside the hooked call on its thread (maybe in a signal handler, inside fork or free),
// must not unmap memory or take locks the unmapping code may hold; observers must not allocate.
//
// Overheads (bench/hooks_bench.cc, docs/PERFORMANCE.md "Process hooks"): one-page munmap+mmap with the
// hooks installed and no overlapping notifier vs. unhooked, same run: see docs/PERFORMANCE.md.
#pragma once

#include <cerrno>
#include <cstddef>
#include <system_error>
#include <utility>

#include "umn/process.h"
#include "umn/result.hpp"

namespace umn {

// Installation status and counters of the process hooks.
struct ProcessHooks {
  // Installs the hooks (idempotent). Errors: EPERM (UMN_PROCESS_HOOKS=0), ENOSYS, ENOENT (see process.h).
  static std::error_code install() noexcept {
    int err = umn_process_hooks_install();
    return err == 0 ? std::error_code() : std::error_code(-err, std::generic_category());
  }
  static umn_process_hooks_info info() noexcept {
    umn_process_hooks_info info;
    umn_process_hooks_get_info(&info);
    return info;
  }
};

// An observer of every process-hook event (RAII). Fn: void(const umn_process_event&, int phase, void*
// scratch), called as umn_process_observer_fn. The object must outlive the process's last event or be
// destroyed only when no hooked call can be running (umn/process.h: removal does not wait).
template <class Fn>
class ProcessObserver {
 public:
  explicit ProcessObserver(Fn fn) : fn_(std::move(fn)) {}
  ProcessObserver(const ProcessObserver&) = delete;
  ProcessObserver& operator=(const ProcessObserver&) = delete;
  ~ProcessObserver() { stop(); }
  // Starts observing. Errors: ENOSPC (all slots taken) or the installation's error.
  std::error_code start() noexcept {
    int slot = umn_process_observer_add(&trampoline, this);
    if (slot < 0) return std::error_code(-slot, std::generic_category());
    slot_ = slot;
    return {};
  }
  void stop() noexcept {
    if (slot_ >= 0) umn_process_observer_remove(std::exchange(slot_, -1));
  }

 private:
  static void trampoline(void* ctx, const umn_process_event* event, int phase, void* scratch) {
    static_cast<ProcessObserver*>(ctx)->fn_(*event, phase, scratch);
  }
  Fn fn_;
  int slot_ = -1;
};

// A userfaultfd monitor feeding mm (RAII; see umn_uffd_monitor_* in process.h for the guarantees).
class UffdMonitor {
 public:
  // Errors: ENOSYS / EPERM (no userfaultfd here), ENOMEM.
  static Result<UffdMonitor> start(umn_mm* mm) noexcept {
    umn_uffd_monitor* monitor = umn_uffd_monitor_start(mm);
    if (monitor == nullptr) return std::error_code(errno, std::generic_category());
    return UffdMonitor(monitor);
  }
  UffdMonitor(UffdMonitor&& other) noexcept : monitor_(std::exchange(other.monitor_, nullptr)) {}
  UffdMonitor& operator=(UffdMonitor&& other) noexcept {
    std::swap(monitor_, other.monitor_);
    return *this;
  }
  ~UffdMonitor() {
    if (monitor_ != nullptr) umn_uffd_monitor_stop(monitor_);
  }
  // Watches [addr, addr + length). Errors: those of UFFDIO_REGISTER (EINVAL for file-backed ranges).
  std::error_code watch(void* addr, size_t length) noexcept {
    int err = umn_uffd_monitor_register(monitor_, addr, length);
    return err == 0 ? std::error_code() : std::error_code(-err, std::generic_category());
  }
  [[nodiscard]] unsigned long events() const noexcept { return umn_uffd_monitor_events(monitor_); }

 private:
  explicit UffdMonitor(umn_uffd_monitor* monitor) noexcept : monitor_(monitor) {}
  umn_uffd_monitor* monitor_;
};

}  // namespace umn
