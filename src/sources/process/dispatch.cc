// dispatch.cc - the dispatcher behind the patched syscall sites (algorithm in dispatch.hpp).
#include "sources/process/dispatch.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <cerrno>

#include "sources/process/delivery.hpp"
#include "sources/process/events.hpp"
#include "sources/process/pidfd.hpp"
#include "sources/patch/tsan_runtime.hpp"
#include "sources/patch/x86_64.hpp"
#include "sources/process/state.hpp"
#include "sources/process/thread_state.hpp"
#include "sources/sys/sys.hpp"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace umn::detail {
namespace {

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
long process_madvise_call(Level& level, const long* a, uintptr_t caller) noexcept {
  constexpr long kIovMax = 1024;  // UIO_MAXIOV
  const long vlen = a[2];
  // pidfd and advice are int, flags unsigned int: the kernel reads the low 32 bits of their registers.
  if (!discards(static_cast<int>(a[3])) || static_cast<unsigned>(a[4]) != 0 || vlen <= 0 || vlen > kIovMax ||
      !pidfd_is_self(static_cast<int>(a[0])))
    return quiet_call(level, SYS_process_madvise, a, caller);
  const auto* user = reinterpret_cast<const iovec*>(a[1]);
  Pending* pending = &level.pending[0];
  long done = 0;
  for (long i = 0; i < vlen; ++i) {
    iovec one;
    if (long err = read_iovec(user + i, &one); err != 0) return done > 0 ? done : err;
    const unsigned events = make_event(&pending->event, UMN_CALL_PROCESS_MADVISE, UMN_NOTIFY_CLEAR,
                                       reinterpret_cast<uint64_t>(one.iov_base), one.iov_len, caller);
    pending->event.nr = SYS_process_madvise;
    pending->event.args = a;
    level.started = events;
    if (events != 0) deliver_start(level, pending);
    long result = sys::call(SYS_process_madvise, a[0], reinterpret_cast<long>(&one), 1, a[3], 0);
    if (events != 0) deliver_end(level, pending, result);
    level.started = 0;
    if (sys::failed(result)) return done > 0 ? done : result;
    done += result;
  }
  return done;
}

// ThreadSanitizer tears a thread's runtime state down in a thread-specific-data destructor; glibc's
// start_thread then discards the dead thread's unused stack with madvise(MADV_DONTNEED) of
// [stack bottom, sp - PTHREAD_STACK_MIN). Delivering that event runs TSan-intercepted code (atomics,
// pthread_mutex_lock -- intercepted even when libumn itself is not instrumented) on the dead state:
// SIGSEGV in SyncClock/MutexPreLock, or a hang. When the TSan runtime is in the process (decided at run
// time: a TSan-built program may use an uninstrumented libumn), recognise that call (a discard of this
// thread's own stack ending just below the stack pointer) and pass it through unannounced before touching
// anything TSan intercepts. Without TSan it is delivered like any other madvise.
bool exiting_thread_stack_discard(long nr, const long* a) noexcept {
  if (nr != SYS_madvise || static_cast<int>(a[2]) != MADV_DONTNEED || !tsan_present()) return false;
  const auto sp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  const uint64_t start = static_cast<uint64_t>(a[0]), end = start + static_cast<uint64_t>(a[1]);
  return start < end && end <= sp && sp - end <= (64u << 10);
}

// Steps 3-5 of a call classified into events[0, n) (step 2's special cases done): its events started in
// the level's records -- for a nested call (step 1) with the observers added with
// UMN_PROCESS_OBSERVE_NESTED only, never the notifiers (the hooks do not recurse into the core) -- the
// call, the events ended in reverse; QUIET when it has none.
long announced_call(Level& level, long nr, const long* a, const umn_process_event* events, unsigned n,
                    uintptr_t caller, bool nested) noexcept {
  if (n == 0) {
    long result = sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    deliver_quiet(level, nr, a, result, caller,
                  UMN_PROCESS_OBSERVE_QUIET | (nested ? UMN_PROCESS_OBSERVE_NESTED : 0));
    return result;
  }
  Pending* pending = level.pending;
  for (unsigned i = 0; i < n; ++i) {
    pending[i].event = events[i];
    pending[i].event.nr = nr;
    pending[i].event.args = a;
    level.started = i + 1;  // before the start: a start left midway is ended too (thread_state.hpp)
    if (nested)
      deliver_nested_start(level, &pending[i]);
    else
      deliver_start(level, &pending[i]);
  }
  long result = sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  for (unsigned i = n; i-- > 0;) deliver_end(level, &pending[i], result);
  level.started = 0;
  return result;
}

// Steps 1-5 of a call that delivers something, on the calling thread's level.
long claimed_call(Level& level, bool nested, long nr, const long* a, const umn_process_event* events, unsigned n,
                  uintptr_t caller) noexcept {
  if (nested) {  // step 1
    g_nested.fetch_add(1, std::memory_order_relaxed);
    return announced_call(level, nr, a, events, n, caller, true);
  }
  if (nr == SYS_process_madvise) return process_madvise_call(level, a, caller);
  if (nr == SYS_mremap && (a[3] & MREMAP_MAYMOVE) != 0 && (a[3] & (MREMAP_FIXED | MREMAP_DONTUNMAP)) == 0 &&
      sys::page_up(static_cast<uint64_t>(a[2])) > sys::page_up(static_cast<uint64_t>(a[1])) && a[1] != 0) {
    long in_place = sys::call(SYS_mremap, a[0], a[1], a[2], 0);  // grow in place: nothing moves
    if (!sys::failed(in_place)) {
      deliver_quiet(level, nr, a, in_place, caller, UMN_PROCESS_OBSERVE_QUIET);
      return in_place;
    }
  }
  return announced_call(level, nr, a, events, n, caller, false);
}

// A call deeper than the thread state's levels (thread_state.hpp): its records on the stack, here only.
[[gnu::noinline]] long claimed_call_on_stack(Level& level, bool nested, long nr, const long* a,
                                             const umn_process_event* events, unsigned n, uintptr_t caller) noexcept {
  Pending pending[kMaxEvents];
  level.pending = pending;
  long result = claimed_call(level, nested, nr, a, events, n, caller);
  level.pending = nullptr;
  return result;
}

long hooked_call(long nr, const long* a, uintptr_t caller) noexcept {
  if (exiting_thread_stack_discard(nr, a)) return sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  umn_process_event events[kMaxEvents];  // step 2
  const unsigned n = events_of(nr, a, events, caller);
  // Nothing to deliver: no thread state needed (no gettid).
  if (n == 0 && nr != SYS_process_madvise && active_registry()->quiet.load(std::memory_order_relaxed) == 0)
    return sys::call(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  volatile uint64_t canary;  // lives in this frame as long as the claim (thread_state.hpp)
  ThreadClaim claim(&canary);
  Level& level = claim.level();
  if (level.pending == nullptr) return claimed_call_on_stack(level, claim.nested(), nr, a, events, n, caller);
  return claimed_call(level, claim.nested(), nr, a, events, n, caller);
}

// New text mapped from a file (the loader's dlopen, or anyone's mmap with PROT_EXEC): its sites are
// patched before the caller can run it (patch/x86_64.hpp, on_exec_mapping; the choice is argued in
// docs/process.md, "New text").
void discover_text(long nr, const long* a, long result) noexcept {
  if (nr != SYS_mmap || sys::failed(result) || (a[2] & PROT_EXEC) == 0 || (a[3] & MAP_ANONYMOUS) != 0 ||
      static_cast<int>(a[4]) < 0)  // the fd is an int (fget reads the low 32 bits)
    return;
  patch::on_exec_mapping(static_cast<int>(a[4]), static_cast<uintptr_t>(result), static_cast<uint64_t>(a[1]),
                         static_cast<uint64_t>(a[5]), static_cast<int>(a[2]));
}

}  // namespace

long announced_munmap(void* addr, size_t length) noexcept {
  const long args[6] = {static_cast<long>(reinterpret_cast<uintptr_t>(addr)), static_cast<long>(length), 0, 0, 0, 0};
  return hooked_call(SYS_munmap, args, 0);
}

// noinline: its address is baked into the stubs.
[[gnu::noinline]] long dispatch(long a1, long a2, long a3, long a4, long a5, long a6, long raw_nr,
                                uintptr_t site_rsp) {
  // The kernel reads only the low 32 bits of %rax (do_syscall_64 takes an int and compares it as
  // unsigned): syscall(SYS_munmap | 1L << 32, ...) is munmap, so it is classified as one.
  const long nr = static_cast<long>(static_cast<unsigned int>(raw_nr));
  const long args[6] = {a1, a2, a3, a4, a5, a6};
  uintptr_t caller = *reinterpret_cast<const uintptr_t*>(site_rsp);
  const long result = hooked_call(nr, args, caller);
  discover_text(nr, args, result);
  return result;
}

}  // namespace umn::detail
