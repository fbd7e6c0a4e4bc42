// events.cc - classification of the hooked system calls (contract in events.hpp): at most one
// page-aligned range per call, computed from the arguments as the kernel gets them.
#include "sources/process/events.hpp"

#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>

#include "sources/sys/sys.hpp"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

namespace umn::detail {

unsigned make_event(umn_process_event* event, umn_process_call call, umn_notifier_event kind, uint64_t addr,
                    uint64_t length, uintptr_t caller) noexcept {
  if ((addr & (sys::kPageSize - 1)) != 0 || length == 0) return 0;
  uint64_t end = sys::page_up(addr + length);
  if (end <= addr) return 0;  // overflow: the kernel refuses it
  *event = {call, kind, addr, end, caller, 0, -1, nullptr};  // nr, args: set by the dispatcher
  return 1;
}

namespace {

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
unsigned shmat_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  if ((a[2] & SHM_REMAP) == 0 || a[1] == 0) return 0;
  uint64_t addr = static_cast<uint64_t>(a[1]);
  if ((a[2] & SHM_RND) != 0) addr = sys::page_down(addr);  // SHMLBA is the page size on x86-64
  struct shmid_ds segment;
  if (sys::failed(sys::call(SYS_shmctl, a[0], IPC_STAT, reinterpret_cast<long>(&segment))))
    return 0;  // shmat fails as well (no such segment, or no read permission)
  return make_event(event, UMN_CALL_SHMAT, UMN_NOTIFY_UNMAP, addr, segment.shm_segsz, caller);
}

unsigned mremap_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  const uint64_t old = static_cast<uint64_t>(a[0]);
  const uint64_t old_len = sys::page_up(static_cast<uint64_t>(a[1]));
  const uint64_t new_len = sys::page_up(static_cast<uint64_t>(a[2]));
  const long flags = a[3];
  if (old_len == 0) return 0;  // duplicating a shared mapping takes nothing away
  const bool moves = (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0 ||
                     ((flags & MREMAP_MAYMOVE) != 0 && new_len > old_len);
  if (moves) return make_event(event, UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old, old_len, caller);
  if (new_len < old_len)
    return make_event(event, UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old + new_len, old_len - new_len, caller);
  return 0;
}

}  // namespace

// The advice values that take the pages behind a range away: the discards (the contents go), and those
// after which the range is backed by other pages or by none (PAGEOUT reclaims, COLLAPSE copies into a
// huge page, GUARD_INSTALL zaps and fences). The kernel notifies CLEAR for each.
bool discards(long advice) noexcept {
  return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
         advice == sys::kMadvDontneedLocked || advice == MADV_PAGEOUT || advice == sys::kMadvCollapse ||
         advice == sys::kMadvGuardInstall;
}

unsigned events_of(long nr, const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  const auto u = [a](int i) { return static_cast<uint64_t>(a[i]); };
  switch (nr) {
    case SYS_munmap:
      return make_event(event, UMN_CALL_MUNMAP, UMN_NOTIFY_UNMAP, u(0), u(1), caller);
    case SYS_mmap:
      if ((a[3] & MAP_FIXED) == 0) return 0;
      return make_event(event, UMN_CALL_MMAP_FIXED, UMN_NOTIFY_UNMAP, u(0), u(1), caller);
    case SYS_madvise:
      if (!discards(a[2])) return 0;
      return make_event(event, UMN_CALL_MADVISE, UMN_NOTIFY_CLEAR, u(0), u(1), caller);
    case SYS_mprotect:
      if ((a[2] & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE)) return 0;  // removes neither
      return make_event(event, UMN_CALL_MPROTECT, UMN_NOTIFY_PROTECTION_VMA, u(0), u(1), caller);
    case SYS_brk: {
      if (a[0] == 0) return 0;
      uint64_t current = sys::page_up(static_cast<uint64_t>(sys::brk(0)));
      uint64_t wanted = sys::page_up(u(0));
      if (wanted >= current) return 0;
      return make_event(event, UMN_CALL_BRK, UMN_NOTIFY_UNMAP, wanted, current - wanted, caller);
    }
    case SYS_shmdt:
      return make_event(event, UMN_CALL_SHMDT, UMN_NOTIFY_UNMAP, u(0), shm_extent(u(0)), caller);
    case SYS_mremap:
      return mremap_events(a, event, caller);
    case SYS_shmat:
      return shmat_events(a, event, caller);
    default:
      return 0;
  }
}

}  // namespace umn::detail
