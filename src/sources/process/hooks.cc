// hooks.cc - the dispatcher behind the patched syscall sites: which calls take memory away, and the
// delivery of invalidate_range_start before the real system call and invalidate_range_end after it.
//
// Algorithm, for each hooked system call (arguments as the kernel gets them):
//   1. If this thread is inside a delivery (a callback or observer called munmap, or a signal handler
//      interrupted one), issue the call unnotified and count it: no recursion, no self-deadlock.
//   2. Compute the events (table in umn/process.h): at most two page-aligned ranges. mremap growing with
//      MREMAP_MAYMOVE first tries to grow in place (no event); only if that fails is the old range
//      announced as UNMAP and the moving call made. process_madvise on this process is issued one iovec
//      at a time, each with its own event. Calls that cannot take memory away issue the raw call at once.
//   3. Start: umn_notifier_invalidate_range_start() on umn_mm_process(), then every registry observer.
//   4. The real system call through sources/sys.
//   5. End: observers in reverse, then umn_notifier_invalidate_range_end().
// Everything lives on the caller's stack or in static storage: no malloc, no lock besides the core's
// subscription lock (taken only when notifiers exist), so the path is async-signal-safe (umn/process.h).
#include "sources/process/hooks.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/subscriptions.hpp"
#include "sources/patch/x86_64.hpp"
#include "sources/process/registry.hpp"
#include "sources/sys/sys.hpp"
#include "umn/process.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace umn::detail {
namespace {

// ---- state ------------------------------------------------------------------------------------------

std::atomic<int> g_install_state{0};  // 0 not yet, 1 installing, 2 done; release on 2, pairs with loads
int g_status = 1;                     // written before g_install_state = 2
// Written before any site is patched and read by patched code on any thread. The patch itself is not a
// synchronising store (threads reach the hook by instruction fetch), so both are atomics: release stores
// by the installer, acquire loads by the dispatcher (plain loads on x86-64).
std::atomic<umn_mm*> g_mm{nullptr};
Registry g_registry;                  // ours; other copies and tracers join it if we own the sites
std::atomic<Registry*> g_active{&g_registry};  // the registry events flow through (another copy's when chained)

umn_mm* process_mm() noexcept { return g_mm.load(std::memory_order_acquire); }
Registry* active_registry() noexcept { return g_active.load(std::memory_order_acquire); }
patch::InstallResult g_install;
std::atomic<unsigned long> g_events{0};
std::atomic<unsigned long> g_nested{0};

[[gnu::tls_model("initial-exec")]] thread_local int t_delivering = 0;
[[gnu::tls_model("initial-exec")]] thread_local bool t_installing = false;

// ---- events -----------------------------------------------------------------------------------------

struct Pending {
  umn_process_event event;
  umn_notifier_range range;
  umn_process_observer_fn fns[kRegistrySlots];
  void* ctxs[kRegistrySlots];
  alignas(16) unsigned char scratch[kRegistrySlots][UMN_PROCESS_SCRATCH_SIZE];
};

// Fills *pending for [addr, addr + length) if it is a valid, non-empty, page-aligned range. Return: 1 or 0.
unsigned make_event(Pending* pending, umn_process_call call, umn_notifier_event event, uint64_t addr,
                    uint64_t length, uintptr_t caller) noexcept {
  if ((addr & (sys::kPageSize - 1)) != 0 || length == 0) return 0;
  uint64_t end = sys::page_up(addr + length);
  if (end <= addr) return 0;  // overflow: the kernel refuses it
  pending->event = {call, event, addr, end, caller, 0};
  return 1;
}

// The extent of the System V segment attached at addr: the mappings of one object starting there.
uint64_t shm_extent(uint64_t addr) noexcept {
  sys::MapsReader maps;
  sys::MapEntry entry;
  uint64_t end = 0, inode = 0, device = 0;
  while (maps.next(&entry)) {
    if (end == 0) {
      if (entry.start != addr) continue;
      end = entry.end;
      inode = entry.inode;
      device = entry.device;
    } else if (entry.start == end && entry.inode == inode && entry.device == device) {
      end = entry.end;
    } else {
      break;
    }
  }
  return end > addr ? end - addr : 0;
}

// shmat(id, addr, SHM_REMAP) replaces what is mapped at [addr, addr + segment size), like mmap(MAP_FIXED).
// Without SHM_REMAP an occupied range makes shmat fail, and without addr the kernel picks a free one.
unsigned shmat_events(const long* a, Pending* pending, uintptr_t caller) noexcept {
  if ((a[2] & SHM_REMAP) == 0 || a[1] == 0) return 0;
  uint64_t addr = static_cast<uint64_t>(a[1]);
  if ((a[2] & SHM_RND) != 0) addr = sys::page_down(addr);  // SHMLBA is the page size on x86-64
  struct shmid_ds segment;
  if (sys::failed(sys::call(SYS_shmctl, a[0], IPC_STAT, reinterpret_cast<long>(&segment))))
    return 0;  // shmat fails as well (no such segment, or no read permission)
  return make_event(pending, UMN_CALL_SHMAT, UMN_NOTIFY_UNMAP, addr, segment.shm_segsz, caller);
}

unsigned mremap_events(const long* a, Pending* pending, uintptr_t caller) noexcept {
  const uint64_t old = static_cast<uint64_t>(a[0]);
  const uint64_t old_len = sys::page_up(static_cast<uint64_t>(a[1]));
  const uint64_t new_len = sys::page_up(static_cast<uint64_t>(a[2]));
  const long flags = a[3];
  if (old_len == 0) return 0;  // duplicating a shared mapping takes nothing away
  const bool moves = (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0 ||
                     ((flags & MREMAP_MAYMOVE) != 0 && new_len > old_len);
  if (moves) return make_event(pending, UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old, old_len, caller);
  if (new_len < old_len)
    return make_event(pending, UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old + new_len, old_len - new_len, caller);
  return 0;
}

// The advice values that take the pages behind a range away: the discards (the contents go), and those
// after which the range is backed by other pages or by none (PAGEOUT reclaims, COLLAPSE copies into a
// huge page, GUARD_INSTALL zaps and fences). The kernel notifies CLEAR for each.
bool discards(long advice) noexcept {
  return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
         advice == sys::kMadvDontneedLocked || advice == MADV_PAGEOUT || advice == sys::kMadvCollapse ||
         advice == sys::kMadvGuardInstall;
}

// Step 2. Return: how many events (0 or 1) the call causes.
unsigned events_of(long nr, const long* a, Pending* pending, uintptr_t caller) noexcept {
  const auto u = [a](int i) { return static_cast<uint64_t>(a[i]); };
  switch (nr) {
    case SYS_munmap:
      return make_event(pending, UMN_CALL_MUNMAP, UMN_NOTIFY_UNMAP, u(0), u(1), caller);
    case SYS_mmap:
      if ((a[3] & MAP_FIXED) == 0) return 0;
      return make_event(pending, UMN_CALL_MMAP_FIXED, UMN_NOTIFY_UNMAP, u(0), u(1), caller);
    case SYS_madvise:
      if (!discards(a[2])) return 0;
      return make_event(pending, UMN_CALL_MADVISE, UMN_NOTIFY_CLEAR, u(0), u(1), caller);
    case SYS_mprotect:
      if ((a[2] & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE)) return 0;  // removes neither
      return make_event(pending, UMN_CALL_MPROTECT, UMN_NOTIFY_PROTECTION_VMA, u(0), u(1), caller);
    case SYS_brk: {
      if (a[0] == 0) return 0;
      uint64_t current = sys::page_up(static_cast<uint64_t>(sys::brk(0)));
      uint64_t wanted = sys::page_up(u(0));
      if (wanted >= current) return 0;
      return make_event(pending, UMN_CALL_BRK, UMN_NOTIFY_UNMAP, wanted, current - wanted, caller);
    }
    case SYS_shmdt:
      return make_event(pending, UMN_CALL_SHMDT, UMN_NOTIFY_UNMAP, u(0), shm_extent(u(0)), caller);
    case SYS_mremap:
      return mremap_events(a, pending, caller);
    case SYS_shmat:
      return shmat_events(a, pending, caller);
    default:
      return 0;
  }
}

// ---- delivery ---------------------------------------------------------------------------------------

// Around every call into notifiers and observers: marks the thread as delivering (step 1), and keeps
// errno as the interrupted libc code left it (libc sets errno itself from the raw result; a callback
// may change it).
struct DeliveryScope {
  DeliveryScope() noexcept : saved_errno(errno) { ++t_delivering; }
  ~DeliveryScope() {
    --t_delivering;
    errno = saved_errno;
  }
  int saved_errno;
};

void deliver_start(Pending* pending) noexcept {
  DeliveryScope scope;
  g_events.fetch_add(1, std::memory_order_relaxed);
  const umn_process_event& event = pending->event;
  umn_mm* mm = process_mm();
  umn_notifier_range_init(&pending->range, event.event, 0, mm, event.start, event.end);
  if (mm != nullptr) umn_notifier_invalidate_range_start(&pending->range);
  Registry* registry = active_registry();
  const unsigned used = registry->used.load(std::memory_order_acquire);
  for (unsigned i = 0; i < kRegistrySlots; ++i) {
    // Pairs with the release CAS in observer_add: ctx is visible once fn is.
    umn_process_observer_fn fn = i < used ? registry->slots[i].fn.load(std::memory_order_acquire) : nullptr;
    pending->fns[i] = fn;
    if (fn == nullptr) continue;
    pending->ctxs[i] = registry->slots[i].ctx.load(std::memory_order_relaxed);
    fn(pending->ctxs[i], &event, UMN_PROCESS_PHASE_START, pending->scratch[i]);
  }
}

void deliver_end(Pending* pending, long result) noexcept {
  DeliveryScope scope;
  pending->event.result = result;
  for (unsigned i = kRegistrySlots; i-- > 0;)
    if (pending->fns[i] != nullptr)
      pending->fns[i](pending->ctxs[i], &pending->event, UMN_PROCESS_PHASE_END, pending->scratch[i]);
  if (pending->range.mm != nullptr) umn_notifier_invalidate_range_end(&pending->range);
}

// After a hooked call that caused no event: tell the observers that asked for it (tracers following
// mappings as they are added). One relaxed load when nobody asked.
void deliver_quiet(long nr, const long* a, long result, uintptr_t caller) noexcept {
  Registry* registry = active_registry();
  if (registry->quiet.load(std::memory_order_relaxed) == 0) return;
  DeliveryScope scope;
  const bool returns_addr = nr == SYS_mmap || nr == SYS_mremap || nr == SYS_shmat;
  const uint64_t addr = static_cast<uint64_t>(returns_addr ? result : a[0]);
  umn_process_event event = {UMN_CALL_QUIET, UMN_NOTIFY_UNMAP, addr, addr, caller, result};
  alignas(16) unsigned char scratch[UMN_PROCESS_SCRATCH_SIZE];
  const unsigned used = registry->used.load(std::memory_order_acquire);
  for (unsigned i = 0; i < used && i < kRegistrySlots; ++i) {
    umn_process_observer_fn fn = registry->slots[i].fn.load(std::memory_order_acquire);
    if (fn == nullptr || (registry->slots[i].flags.load(std::memory_order_relaxed) & UMN_PROCESS_OBSERVE_QUIET) == 0)
      continue;
    fn(registry->slots[i].ctx.load(std::memory_order_relaxed), &event, UMN_PROCESS_PHASE_QUIET, scratch);
  }
}

long quiet_call(long nr, const long* a, uintptr_t caller) noexcept {
  long result = sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  deliver_quiet(nr, a, result, caller);
  return result;
}

// ---- process_madvise: one event per iovec ----------------------------------------------------------

// Writes the decimal digits of v at p, NUL-terminated.
void put_decimal(char* p, unsigned long v) noexcept {
  char digits[24];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0) *p++ = digits[--n];
  *p = '\0';
}

// Whether process_madvise's pidfd names this process: a PIDFD_SELF sentinel, or a pidfd whose
// /proc/self/fdinfo "Pid:" is our pid or one of our threads. When that cannot be read: yes (announcing
// is harmless, missing is not).
bool pidfd_is_self(long pidfd) noexcept {
  if (pidfd == sys::kPidfdSelfThread || pidfd == sys::kPidfdSelfThreadGroup) return true;
  if (pidfd < 0) return false;  // EBADF
  char path[64] = "/proc/self/fdinfo/";
  put_decimal(path + 18, static_cast<unsigned long>(pidfd));
  long fd = sys::open_read(path);
  if (sys::failed(fd)) return true;
  char buf[512];
  long n = sys::read(static_cast<int>(fd), buf, sizeof(buf) - 1);
  sys::close(static_cast<int>(fd));
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "\nPid:");
  if (at == nullptr) return true;  // not a pidfd: the kernel refuses it
  at += 5;
  while (*at == ' ' || *at == '\t') ++at;
  if (*at == '-') return false;  // the process is gone
  long pid = 0;
  for (; *at >= '0' && *at <= '9'; ++at) pid = pid * 10 + (*at - '0');
  if (pid == sys::getpid()) return true;
  char task[64] = "/proc/self/task/";
  put_decimal(task + 16, static_cast<unsigned long>(pid));
  return sys::call(SYS_faccessat, AT_FDCWD, reinterpret_cast<long>(task), F_OK) == 0;
}

// Copies one iovec of the caller's array: through process_vm_readv so that a bad pointer is -EFAULT,
// as the kernel reports it, not a crash in the hook. Return: 0 or -EFAULT.
long read_iovec(const iovec* user, iovec* out) noexcept {
  iovec local = {out, sizeof(*out)};
  iovec remote = {const_cast<iovec*>(user), sizeof(*out)};
  long n = sys::call(SYS_process_vm_readv, sys::getpid(), reinterpret_cast<long>(&local), 1,
                     reinterpret_cast<long>(&remote), 1, 0);
  if (n == static_cast<long>(sizeof(*out))) return 0;
  if (n == -EFAULT) return -EFAULT;
  *out = *user;  // process_vm_readv refused (seccomp, ENOSYS): the pointer is the caller's promise
  return 0;
}

// process_madvise(pidfd, iov, vlen, advice, flags) with discarding advice on this process: the kernel
// advises the iovecs in order and stops at the first failure, returning the bytes advised so far, or
// the error when there are none. Issued here one iovec per call so that each is announced before it.
long process_madvise_call(const long* a, uintptr_t caller) noexcept {
  constexpr long kIovMax = 1024;  // UIO_MAXIOV
  const long vlen = a[2];
  if (!discards(a[3]) || a[4] != 0 || vlen <= 0 || vlen > kIovMax || !pidfd_is_self(a[0]))
    return quiet_call(SYS_process_madvise, a, caller);
  const auto* user = reinterpret_cast<const iovec*>(a[1]);
  long done = 0;
  for (long i = 0; i < vlen; ++i) {
    iovec one;
    if (long err = read_iovec(user + i, &one); err != 0) return done > 0 ? done : err;
    Pending pending;
    const unsigned events = make_event(&pending, UMN_CALL_PROCESS_MADVISE, UMN_NOTIFY_CLEAR,
                                       reinterpret_cast<uint64_t>(one.iov_base), one.iov_len, caller);
    if (events != 0) deliver_start(&pending);
    long result = sys::call(SYS_process_madvise, a[0], reinterpret_cast<long>(&one), 1, a[3], 0);
    if (events != 0) deliver_end(&pending, result);
    if (sys::failed(result)) return done > 0 ? done : result;
    done += result;
  }
  return done;
}

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer tears a thread's runtime state down in a thread-specific-data destructor; glibc's
// start_thread then discards the dead thread's unused stack with madvise(MADV_DONTNEED) of
// [stack bottom, sp - PTHREAD_STACK_MIN). Delivering that event runs TSan-intercepted code (atomics,
// pthread_mutex_lock) on the dead state: SIGSEGV in SyncClock/MutexPreLock, or a hang. Recognise that
// call (a discard of this thread's own stack ending just below the stack pointer) and pass it through
// before touching anything TSan intercepts. Uninstrumented builds deliver it like any other madvise.
bool exiting_thread_stack_discard(long nr, const long* a) noexcept {
  if (nr != SYS_madvise || a[2] != MADV_DONTNEED) return false;
  const auto sp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  const uint64_t start = static_cast<uint64_t>(a[0]), end = start + static_cast<uint64_t>(a[1]);
  return start < end && end <= sp && sp - end <= (64u << 10);
}
#endif

long hooked_call(long nr, const long* a, uintptr_t caller) noexcept {
#if defined(__SANITIZE_THREAD__)
  if (exiting_thread_stack_discard(nr, a)) return sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
#endif
  if (t_delivering > 0) {  // step 1
    g_nested.fetch_add(1, std::memory_order_relaxed);
    return sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  if (nr == SYS_process_madvise) return process_madvise_call(a, caller);
  if (nr == SYS_mremap && (a[3] & MREMAP_MAYMOVE) != 0 && (a[3] & (MREMAP_FIXED | MREMAP_DONTUNMAP)) == 0 &&
      sys::page_up(static_cast<uint64_t>(a[2])) > sys::page_up(static_cast<uint64_t>(a[1])) && a[1] != 0) {
    long in_place = sys::call(SYS_mremap, a[0], a[1], a[2], 0);  // grow in place: nothing moves
    if (!sys::failed(in_place)) {
      deliver_quiet(nr, a, in_place, caller);
      return in_place;
    }
  }
  Pending pending;
  if (events_of(nr, a, &pending, caller) == 0) return quiet_call(nr, a, caller);
  deliver_start(&pending);
  long result = sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  deliver_end(&pending, result);
  return result;
}

// The stubs' entry (patch::DispatchFn). noinline: its address is baked into the stubs.
[[gnu::noinline]] long dispatch(long a1, long a2, long a3, long a4, long a5, long a6, long nr,
                                uintptr_t site_rsp) {
  const long args[6] = {a1, a2, a3, a4, a5, a6};
  uintptr_t caller = *reinterpret_cast<const uintptr_t*>(site_rsp);
  return hooked_call(nr, args, caller);
}

// ---- fork: PROTECTION_PAGE over private writable memory --------------------------------------------

constexpr unsigned kMaxForkRanges = 64;
Pending g_fork[kMaxForkRanges];  // guarded by g_fork_lock, held from prepare to parent/child
unsigned g_fork_count = 0;
std::atomic<bool> g_fork_lock{false};

bool anyone_listening() noexcept {
  umn_mm* mm = process_mm();
  if (mm != nullptr && subscriptions_of(mm) != nullptr) return true;
  return active_registry()->used.load(std::memory_order_acquire) > 0;
}

void fork_prepare() {
  while (g_fork_lock.exchange(true, std::memory_order_acquire)) sched_yield();
  g_fork_count = 0;
  if (t_delivering > 0 || !anyone_listening()) return;
  sys::MapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry)) {
    if ((entry.prot & sys::kMapWrite) == 0 || (entry.prot & sys::kMapShared) != 0) continue;
    if (g_fork_count > 0 && (g_fork[g_fork_count - 1].event.end == entry.start || g_fork_count == kMaxForkRanges)) {
      g_fork[g_fork_count - 1].event.end = entry.end;  // merge (or, when full, over-cover the gap)
      continue;
    }
    make_event(&g_fork[g_fork_count++], UMN_CALL_FORK, UMN_NOTIFY_PROTECTION_PAGE, entry.start,
               entry.end - entry.start, 0);
  }
  for (unsigned i = 0; i < g_fork_count; ++i) deliver_start(&g_fork[i]);
}

void fork_finish(long result) {
  for (unsigned i = g_fork_count; i-- > 0;) deliver_end(&g_fork[i], result);
  g_fork_count = 0;
  g_fork_lock.store(false, std::memory_order_release);
}

void fork_parent() { fork_finish(1); }
void fork_child() { fork_finish(0); }  // balances the copied start counts; the child's mm is a copy

// ---- another umn copy owns the sites: deliver to our own address space as its observer --------------

void chained_observer(void* ctx, const umn_process_event* event, int phase, void* scratch) {
  auto* range = static_cast<umn_notifier_range*>(scratch);
  static_assert(sizeof(umn_notifier_range) <= UMN_PROCESS_SCRATCH_SIZE);
  if (phase == UMN_PROCESS_PHASE_START) {
    umn_notifier_range_init(range, event->event, 0, static_cast<umn_mm*>(ctx), event->start, event->end);
    umn_notifier_invalidate_range_start(range);
  } else {
    umn_notifier_invalidate_range_end(range);
  }
}

int claim_slot(Registry* registry, umn_process_observer_fn fn, void* ctx, unsigned flags = 0) noexcept {
  for (unsigned i = 0; i < kRegistrySlots; ++i) {
    Registry::Slot& slot = registry->slots[i];
    umn_process_observer_fn expected = nullptr;
    if (slot.fn.load(std::memory_order_relaxed) != nullptr) continue;
    slot.ctx.store(ctx, std::memory_order_relaxed);
    slot.flags.store(flags, std::memory_order_relaxed);
    // Pairs with the acquire load in deliver_start.
    if (!slot.fn.compare_exchange_strong(expected, fn, std::memory_order_release)) continue;
    if ((flags & UMN_PROCESS_OBSERVE_QUIET) != 0) registry->quiet.fetch_add(1, std::memory_order_relaxed);
    unsigned used = registry->used.load(std::memory_order_relaxed);
    while (used < i + 1 && !registry->used.compare_exchange_weak(used, i + 1, std::memory_order_release)) {
    }
    return static_cast<int>(i);
  }
  return -ENOSPC;
}

bool env_disabled() noexcept {
  const char* value = std::getenv("UMN_PROCESS_HOOKS");
  return value != nullptr && std::strcmp(value, "0") == 0;
}

int do_install(umn_mm* mm) noexcept {
  if (env_disabled()) return -EPERM;
  g_mm.store(mm, std::memory_order_release);  // before the first patch: the dispatcher may run at once
  g_install = patch::install(&dispatch, &g_registry);
  if (g_install.existing != nullptr) {
    if (g_install.existing->abi != kRegistryAbi) return -EPROTO;
    g_active.store(g_install.existing, std::memory_order_release);
    g_mm.store(nullptr, std::memory_order_release);  // our address space is fed by the owner's observer
    int slot = claim_slot(g_install.existing, &chained_observer, mm);
    return slot < 0 ? slot : 0;
  }
  if (g_install.patched == 0) return g_install.error != 0 ? g_install.error : -ENOENT;
  pthread_atfork(&fork_prepare, &fork_parent, &fork_child);
  return 0;
}

// Process exit: the kernel's exit_mmap runs the release notifiers; ours run after every atexit handler
// and static destructor of the program (this is a late ELF destructor).
[[gnu::destructor(101)]] void release_at_exit() {
  umn_mm* mm = g_install_state.load(std::memory_order_acquire) == 2 && g_status == 0 ? umn_mm_process() : nullptr;
  if (mm != nullptr && subscriptions_of(mm) != nullptr) umn_notifier_release(mm);
}

}  // namespace
}  // namespace umn::detail

using namespace umn::detail;

extern "C" {

void umn_detail_process_autoinstall(umn_mm* mm) {
  if (g_install_state.load(std::memory_order_acquire) == 2 || t_installing) return;
  int expected = 0;
  if (g_install_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    t_installing = true;
    g_status = do_install(mm);
    t_installing = false;
    g_install_state.store(2, std::memory_order_release);  // pairs with the acquire loads above
    return;
  }
  while (g_install_state.load(std::memory_order_acquire) != 2) sched_yield();
}

int umn_process_hooks_install(void) {
  umn_mm_process();
  return g_status;
}

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

int umn_process_observer_add_flags(umn_process_observer_fn fn, void* ctx, unsigned flags) {
  if (fn == nullptr || (flags & ~UMN_PROCESS_OBSERVE_QUIET) != 0) return -EINVAL;
  int status = umn_process_hooks_install();
  if (status != 0) return status;
  return claim_slot(active_registry(), fn, ctx, flags);
}

int umn_process_observer_add(umn_process_observer_fn fn, void* ctx) { return umn_process_observer_add_flags(fn, ctx, 0); }

void umn_process_observer_remove(int slot) {
  if (slot < 0 || static_cast<unsigned>(slot) >= kRegistrySlots) return;
  active_registry()->slots[slot].fn.store(nullptr, std::memory_order_release);
}

}  // extern "C"
