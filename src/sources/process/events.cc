// events.cc - classification of the hooked system calls that act on address ranges (contract in
// events.hpp): page-aligned ranges computed from the arguments as the kernel gets them.
#include "sources/process/events.hpp"

#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <cstring>

#include "sources/process/file_events.hpp"
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

// Whether a mapping is a fragment of a System V segment attached at addr: a SysV shm file ("/SYSV...")
// mapped at the file offset that its distance from addr gives (the kernel's vm_pgoff test).
bool shm_fragment_of(const sys::MapEntry& entry, uint64_t addr) noexcept {
  return entry.start >= addr && entry.offset == entry.start - addr && std::strncmp(entry.path, "/SYSV", 5) == 0;
}

// shmdt(addr), as ipc/shm.c's ksys_shmdt does it: the first mapping at or after addr that is a fragment
// of a segment attached at addr names the segment; every fragment of that segment (same file) is
// detached, holes in between included. Return: the span [first fragment, end of the last), or 0 when
// there is none (shmdt fails with EINVAL and takes nothing).
unsigned shmdt_events(uint64_t addr, umn_process_event* event, uintptr_t caller) noexcept {
  if ((addr & (sys::kPageSize - 1)) != 0) return 0;  // EINVAL
  sys::HookMapsReader maps;
  sys::MapEntry entry;
  uint64_t start = 0, end = 0, inode = 0, device = 0;
  while (maps.next(&entry)) {
    if (entry.end <= addr || !shm_fragment_of(entry, addr)) continue;
    if (end == 0) {
      start = entry.start;
      inode = entry.inode;
      device = entry.device;
    } else if (entry.inode != inode || entry.device != device) {
      continue;
    }
    end = entry.end;
  }
  return end == 0 ? 0 : make_event(event, UMN_CALL_SHMDT, UMN_NOTIFY_UNMAP, start, end - start, caller);
}

// mprotect(addr, len, prot | PROT_GROWSDOWN) changes the protection from the start of the mapping that
// holds addr (mm/mprotect.c): the range starts there. Return: that start, or addr if none holds it.
uint64_t growsdown_start(uint64_t addr) noexcept {
  sys::HookMapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry))
    if (entry.start <= addr && addr < entry.end) return entry.start;
  return addr;
}

unsigned mprotect_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  const unsigned long prot = static_cast<unsigned long>(a[2]);  // the kernel's prot is unsigned long
  if ((prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE)) return 0;  // removes neither
  uint64_t start = static_cast<uint64_t>(a[0]);
  const uint64_t end = start + static_cast<uint64_t>(a[1]);
  if ((prot & PROT_GROWSDOWN) != 0 && (start & (sys::kPageSize - 1)) == 0 && end > start) start = growsdown_start(start);
  return make_event(event, UMN_CALL_MPROTECT, UMN_NOTIFY_PROTECTION_VMA, start, end - start, caller);
}

constexpr long kHugetlbfsMagic = 0x958458f6;  // <linux/magic.h>

// The size of the huge pages an mmap with these flags and descriptor maps, or 0 if it maps none: a
// hugetlbfs file's (fstatfs: f_bsize), or MAP_HUGETLB's (log2 in the MAP_HUGE_SHIFT bits; 0 is the
// default size, 2 MiB on x86-64 unless the kernel was booted with default_hugepagesz=1G).
uint64_t huge_page_size(unsigned long flags, int fd) noexcept {
  if ((flags & MAP_ANONYMOUS) != 0) {
    if ((flags & MAP_HUGETLB) == 0) return 0;
    const unsigned log2 = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    return log2 != 0 ? uint64_t{1} << log2 : uint64_t{2} << 20;
  }
  struct statfs fs;
  if (sys::failed(sys::call(SYS_fstatfs, fd, reinterpret_cast<long>(&fs))) || fs.f_type != kHugetlbfsMagic) return 0;
  return static_cast<uint64_t>(fs.f_bsize);
}

// mmap(MAP_FIXED) replaces [addr, addr + len): len rounded up to pages, or to the huge page size when
// it maps huge pages (ksys_mmap_pgoff aligns len first). MAP_FIXED_NOREPLACE, with or without
// MAP_FIXED, never replaces anything (do_mmap fails with EEXIST).
unsigned mmap_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  const unsigned long flags = static_cast<unsigned long>(a[3]);  // the kernel's flags are unsigned long
  if ((flags & MAP_FIXED) == 0 || (flags & MAP_FIXED_NOREPLACE) != 0) return 0;
  uint64_t length = static_cast<uint64_t>(a[1]);
  // The fd is an int (fget reads the low 32 bits).
  if (const uint64_t huge = huge_page_size(flags, static_cast<int>(a[4])); huge > sys::kPageSize && length != 0)
    length = (length + huge - 1) & ~(huge - 1);
  return make_event(event, UMN_CALL_MMAP_FIXED, UMN_NOTIFY_UNMAP, static_cast<uint64_t>(a[0]), length, caller);
}

// remap_file_pages(start, size, prot, pgoff, flags) (mm/mmap.c; emulated since Linux 4.0): a nonzero
// prot is refused; otherwise [start, start + size), both rounded down to pages, gets other pages of the
// file through a MAP_FIXED mmap: announced as one.
unsigned remap_file_pages_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  if (a[2] != 0) return 0;  // prot is unsigned long
  return make_event(event, UMN_CALL_MMAP_FIXED, UMN_NOTIFY_UNMAP, sys::page_down(static_cast<uint64_t>(a[0])),
                    sys::page_down(static_cast<uint64_t>(a[1])), caller);
}

// shmat(id, addr, SHM_REMAP) replaces what is mapped at [addr, addr + segment size), like mmap(MAP_FIXED).
// Without SHM_REMAP an occupied range makes shmat fail, and without addr the kernel picks a free one.
// A SHM_HUGETLB segment maps its size rounded up to the huge page (newseg sizes its file so; measured: a
// 4 KiB segment maps 2 MiB), at a huge-page-aligned address only; IPC_STAT does not tell such segments
// apart, so at a 2 MiB-aligned address the range is rounded up to 2 MiB (a normal segment attached there
// gets a spurious tail).
unsigned shmat_events(const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  constexpr uint64_t kHugePage = uint64_t{2} << 20;
  const int shmflg = static_cast<int>(a[2]);  // the kernel's shmid and shmflg are int: low 32 bits
  if ((shmflg & SHM_REMAP) == 0 || a[1] == 0) return 0;
  uint64_t addr = static_cast<uint64_t>(a[1]);
  if ((shmflg & SHM_RND) != 0) addr = sys::page_down(addr);  // SHMLBA is the page size on x86-64
  struct shmid_ds segment;
  if (sys::failed(sys::call(SYS_shmctl, static_cast<int>(a[0]), IPC_STAT, reinterpret_cast<long>(&segment))))
    return 0;  // shmat fails as well (no such segment, or no read permission)
  uint64_t size = segment.shm_segsz;
  if ((addr & (kHugePage - 1)) == 0 && size != 0) size = (size + kHugePage - 1) & ~(kHugePage - 1);
  return make_event(event, UMN_CALL_SHMAT, UMN_NOTIFY_UNMAP, addr, size, caller);
}

// mremap (mm/mremap.c). With MREMAP_FIXED the kernel first unmaps whatever lies at [new_addr, new_addr +
// new_len) (also with MREMAP_DONTUNMAP, and with old_len 0), announced first; then the old range goes
// (moved, or with a smaller new_len partly unmapped) unless old_len is 0 (a shared mapping duplicated).
// Without FIXED, a move (DONTUNMAP, or MAYMOVE growing) takes the old range, a shrink its tail.
unsigned mremap_events(const long* a, umn_process_event* events, uintptr_t caller) noexcept {
  const uint64_t old = static_cast<uint64_t>(a[0]);
  const uint64_t old_len = sys::page_up(static_cast<uint64_t>(a[1]));
  const uint64_t new_len = sys::page_up(static_cast<uint64_t>(a[2]));
  const unsigned long flags = static_cast<unsigned long>(a[3]);
  unsigned n = 0;
  if ((flags & MREMAP_FIXED) != 0)
    n += make_event(&events[n], UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, static_cast<uint64_t>(a[4]), new_len, caller);
  if (old_len == 0) return n;  // duplicating a shared mapping takes nothing away at the old address
  const bool moves = (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) != 0 ||
                     ((flags & MREMAP_MAYMOVE) != 0 && new_len > old_len);
  if (moves) return n + make_event(&events[n], UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old, old_len, caller);
  if (new_len < old_len)
    return n + make_event(&events[n], UMN_CALL_MREMAP, UMN_NOTIFY_UNMAP, old + new_len, old_len - new_len, caller);
  return n;
}

}  // namespace

// The advice values that take the pages behind a range away: the discards (the contents go), and those
// after which the range is backed by other pages or by none (PAGEOUT reclaims, COLLAPSE copies into a
// huge page, GUARD_INSTALL zaps and fences, HWPOISON unmaps a page everywhere, SOFT_OFFLINE migrates it).
// The kernel notifies CLEAR for each.
bool discards(long advice) noexcept {
  return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
         advice == sys::kMadvDontneedLocked || advice == MADV_PAGEOUT || advice == sys::kMadvCollapse ||
         advice == sys::kMadvGuardInstall || advice == sys::kMadvHwpoison || advice == sys::kMadvSoftOffline;
}

unsigned events_of(long nr, const long* a, umn_process_event* event, uintptr_t caller) noexcept {
  const auto u = [a](int i) { return static_cast<uint64_t>(a[i]); };
  switch (nr) {
    case SYS_munmap:
      return make_event(event, UMN_CALL_MUNMAP, UMN_NOTIFY_UNMAP, u(0), u(1), caller);
    case SYS_mmap:
      return mmap_events(a, event, caller);
    case SYS_remap_file_pages:
      return remap_file_pages_events(a, event, caller);
    case SYS_madvise: {
      const int advice = static_cast<int>(a[2]);  // the kernel's advice is int: low 32 bits
      if (advice == MADV_REMOVE || advice == sys::kMadvCollapse)
        return madvise_file_events(u(0), u(1), advice, event, caller);
      if (!discards(advice)) return 0;
      return make_event(event, UMN_CALL_MADVISE, UMN_NOTIFY_CLEAR, u(0), u(1), caller);
    }
    case SYS_mprotect:
    case SYS_pkey_mprotect:  // mprotect with a protection key (do_mprotect_pkey): the same rules
      return mprotect_events(a, event, caller);
    case SYS_brk: {
      if (a[0] == 0) return 0;
      uint64_t current = sys::page_up(static_cast<uint64_t>(sys::brk(0)));
      uint64_t wanted = sys::page_up(u(0));
      if (wanted >= current) return 0;
      return make_event(event, UMN_CALL_BRK, UMN_NOTIFY_UNMAP, wanted, current - wanted, caller);
    }
    case SYS_shmdt:
      return shmdt_events(u(0), event, caller);
    case SYS_mremap:
      return mremap_events(a, event, caller);
    case SYS_shmat:
      return shmat_events(a, event, caller);
    case SYS_ftruncate:
    case SYS_truncate:
    case SYS_fallocate:
    case SYS_openat:
    case SYS_creat:
      return file_events(nr, a, event, caller);
    default:
      return 0;
  }
}

}  // namespace umn::detail
