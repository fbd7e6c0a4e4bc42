// forward.cc - umn process events to UCM_EVENT_VM_UNMAPPED, with UCM's own semantics.
//
// UCM announces (ucm/event/event.c, v1.13.1 to master): munmap, mmap(MAP_FIXED) and shmat(SHM_REMAP) over
// their target, shmdt of the segment, brk/sbrk shrinking, madvise(DONTNEED | REMOVE | FREE), and for
// every mremap its whole old range -- whether it moves, shrinks, grows in place or fails. umn announces
// the same calls (and more discarding advice, process_madvise, raw syscall()), but an mremap only for
// what it takes away: the tail of a shrink, the old range of a move, nothing when the kernel grows it
// in place. So an mremap is forwarded from its raw arguments: before the call when umn has an event for
// it, after the call (phase QUIET) when it has none -- no page moved then, so after is as good as before.
// With MREMAP_FIXED, what the call replaces at its target, [new_address, new_address + new_size), is
// forwarded too (UCM announces nothing there): umn announces it as an event of its own, before the call,
// forwarded as it is; only an mremap that umn reports as QUIET gets it from the arguments, after the call.
// mprotect and fork events are not forwarded (UCM does not announce them; UCX purges on fork itself).
#include <sys/mman.h>
#include <sys/syscall.h>

#include "bridges/ucx/bridge.hpp"

namespace umn::ucx {

std::atomic<unsigned long> g_forwarded{0};

namespace {

void vm_unmapped(uint64_t start, uint64_t length) noexcept {
  if (length == 0) return;
  g_forwarded.fetch_add(1, std::memory_order_relaxed);
  ucm_vm_munmap(reinterpret_cast<void*>(start), length);
}

// The old range of an mremap that umn reports as QUIET, as its caller gave it, and with MREMAP_FIXED the
// target range it replaces (UCM misses the target).
void mremap_old_range(const umn_process_event* event) noexcept {
  vm_unmapped(static_cast<uint64_t>(event->args[0]), static_cast<uint64_t>(event->args[1]));
  if ((event->args[3] & MREMAP_FIXED) != 0)
    vm_unmapped(static_cast<uint64_t>(event->args[4]), static_cast<uint64_t>(event->args[2]));
}

// An mremap event of umn: inside the old range (a move or a shrink) it stands for the whole old range;
// elsewhere (the target range of MREMAP_FIXED, umn's first event) it is forwarded as it is.
void mremap_event(const umn_process_event* event) noexcept {
  const auto old = static_cast<uint64_t>(event->args[0]);
  if (event->start >= old && event->start < old + static_cast<uint64_t>(event->args[1]))
    vm_unmapped(old, static_cast<uint64_t>(event->args[1]));
  else
    vm_unmapped(event->start, event->end - event->start);
}

}  // namespace

void forward(void*, const umn_process_event* event, int phase, void*) noexcept {
  if (phase == UMN_PROCESS_PHASE_QUIET) {
    if (event->nr == SYS_mremap && event->args != nullptr) mremap_old_range(event);
    return;
  }
  if (phase != UMN_PROCESS_PHASE_START) return;
  switch (event->call) {
    case UMN_CALL_MREMAP:
      if (event->args != nullptr) {
        mremap_event(event);
        return;
      }
      [[fallthrough]];  // not from a syscall site (cannot happen with this umn): its range
    case UMN_CALL_MUNMAP:
    case UMN_CALL_MMAP_FIXED:
    case UMN_CALL_SHMAT:
    case UMN_CALL_SHMDT:
    case UMN_CALL_BRK:
    case UMN_CALL_MADVISE:
    case UMN_CALL_PROCESS_MADVISE:
    case UMN_CALL_TRUNCATE:
    case UMN_CALL_FALLOCATE:
      vm_unmapped(event->start, event->end - event->start);
      return;
    default:  // mprotect, fork, userfaultfd, quiet: not UCM events
      return;
  }
}

}  // namespace umn::ucx
