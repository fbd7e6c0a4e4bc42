// file_events.cc - the calls that take a file's pages away from its mappings (contract and the kernel's
// rules in file_events.hpp).
#include "sources/process/file_events.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "sources/process/events.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail {
namespace {

// <linux/falloc.h>; WRITE_ZEROES is Linux 6.17's.
constexpr int kPunchHole = 0x02, kCollapseRange = 0x08, kZeroRange = 0x10, kInsertRange = 0x20, kWriteZeroes = 0x80;
constexpr uint64_t kToTheEnd = ~uint64_t{0};

// The file offsets [from, to) whose pages a call takes away, of the file device:inode.
struct Zap {
  uint64_t device = 0;  // as /proc/self/maps prints it (sys::MapEntry::device)
  uint64_t inode = 0;
  uint64_t from = 0, to = 0;
};

// The file behind st, if a regular file (the only kind these calls truncate or punch).
bool regular_file(const struct stat& st, Zap* zap) noexcept {
  if (!S_ISREG(st.st_mode)) return false;
  zap->device = uint64_t{major(st.st_dev)} << 32 | minor(st.st_dev);
  zap->inode = st.st_ino;
  return true;
}

bool stat_fd(long fd, struct stat* st) noexcept {
  return !sys::failed(sys::call(SYS_fstat, static_cast<unsigned>(fd), reinterpret_cast<long>(st)));
}

bool stat_path(int dirfd, long path, int flags, struct stat* st) noexcept {
  return !sys::failed(sys::call(SYS_newfstatat, dirfd, path, reinterpret_cast<long>(st), flags));
}

// Truncation to length: the pages from page_up(length) on, when the file is longer (truncate_pagecache).
bool truncation(const struct stat& st, long length, Zap* zap) noexcept {
  if (length < 0 || st.st_size <= length || !regular_file(st, zap)) return false;  // negative: EINVAL
  zap->from = sys::page_up(static_cast<uint64_t>(length));
  zap->to = kToTheEnd;
  return true;
}

// An open with O_TRUNC (flags as the kernel reads them: an int) of the regular file at dirfd/path: the
// whole file, when it has contents. O_CREAT | O_EXCL fails on an existing file and truncates nothing;
// O_PATH drops O_TRUNC (build_open_flags).
bool open_truncation(int dirfd, long path, int flags, Zap* zap) noexcept {
  if ((flags & O_TRUNC) == 0 || (flags & O_PATH) != 0 || (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
    return false;
  struct stat st;
  if (!stat_path(dirfd, path, (flags & O_NOFOLLOW) != 0 ? AT_SYMLINK_NOFOLLOW : 0, &st)) return false;
  return truncation(st, 0, zap);
}

// fallocate(fd, mode, offset, len): see file_events.hpp. mode is an int; offset and len are loff_t.
bool fallocation(long fd, int mode, long offset, long len, Zap* zap) noexcept {
  if ((mode & (kPunchHole | kZeroRange | kWriteZeroes | kCollapseRange | kInsertRange)) == 0) return false;
  if (offset < 0 || len <= 0) return false;  // EINVAL
  struct stat st;
  if (!stat_fd(fd, &st) || !regular_file(st, zap)) return false;
  const auto blksize = static_cast<uint64_t>(st.st_blksize);
  const uint64_t block = blksize > sys::kPageSize && (blksize & (blksize - 1)) == 0 ? blksize : sys::kPageSize;
  const auto start = static_cast<uint64_t>(offset), end = start + static_cast<uint64_t>(len);
  zap->from = start & ~(block - 1);
  zap->to = (mode & (kCollapseRange | kInsertRange)) != 0 || end > ~block ? kToTheEnd : (end + block - 1) & ~(block - 1);
  return true;
}

// The zapped file range of call nr, if it zaps one.
bool zap_of(long nr, const long* a, Zap* zap, umn_process_call* call) noexcept {
  struct stat st;
  *call = UMN_CALL_TRUNCATE;
  switch (nr) {
    case SYS_ftruncate:  // (unsigned int fd, off_t length)
      return stat_fd(a[0], &st) && truncation(st, a[1], zap);
    case SYS_truncate:  // (const char *path, long length)
      return stat_path(AT_FDCWD, a[0], 0, &st) && truncation(st, a[1], zap);
    case SYS_openat:  // (int dirfd, const char *path, int flags, umode_t mode)
      return open_truncation(static_cast<int>(a[0]), a[1], static_cast<int>(a[2]), zap);
    case SYS_creat:  // (const char *path, umode_t mode): O_CREAT | O_WRONLY | O_TRUNC
      return open_truncation(AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, zap);
    case SYS_fallocate:  // (int fd, int mode, loff_t offset, loff_t len)
      *call = UMN_CALL_FALLOCATE;
      return fallocation(static_cast<int>(a[0]), static_cast<int>(a[1]), a[2], a[3], zap);
    default:
      return false;
  }
}

// Adds [start, end) to events[0, *n) (at most max): appended to the last event when contiguous with it,
// a new event while there is room, else the last event is widened over it.
void add_range(umn_process_event* events, unsigned* n, unsigned max, umn_process_call call, uint64_t start,
               uint64_t end, uintptr_t caller) noexcept {
  umn_process_event* last = *n > 0 ? &events[*n - 1] : nullptr;
  if (last != nullptr && *n == max) {
    if (start < last->start) last->start = start;
    if (end > last->end) last->end = end;
    return;
  }
  if (last != nullptr && last->end == start) {
    last->end = end;
    return;
  }
  *n += make_event(&events[*n], call, UMN_NOTIFY_CLEAR, start, end - start, caller);
}

// The file ranges one call zaps: up to kMaxZaps; beyond, a range joins one of the same file (the span of
// both), or, of a further file, every file mapping is taken as zapped whole (spurious, never missing).
struct Zaps {
  static constexpr unsigned kMaxZaps = 8;
  Zap zap[kMaxZaps];
  unsigned n = 0;
  bool every_file = false;

  void add(const Zap& z) noexcept {
    for (unsigned i = 0; i < n; ++i) {
      Zap& o = zap[i];
      if (o.device != z.device || o.inode != z.inode) continue;
      if (n < kMaxZaps && (z.to < o.from || o.to < z.from)) continue;  // disjoint: its own while there is room
      if (z.from < o.from) o.from = z.from;
      if (z.to > o.to) o.to = z.to;
      return;
    }
    if (n < kMaxZaps)
      zap[n++] = z;
    else
      every_file = true;
  }
};

// The events (at most max) over this process's mappings of zaps' file ranges, leaving out what lies
// inside [skip_start, skip_end) (already announced). Maps come in address order.
unsigned mappings_of(const Zaps& zaps, umn_process_call call, umn_process_event* events, unsigned max,
                     uint64_t skip_start, uint64_t skip_end, uintptr_t caller) noexcept {
  sys::HookMapsReader maps;
  sys::MapEntry entry;
  unsigned n = 0;
  const auto add_part = [&](const sys::MapEntry& e, uint64_t zap_from, uint64_t zap_to) {
    const uint64_t mapped_end = e.offset + (e.end - e.start);  // file offsets it maps
    const uint64_t from = zap_from > e.offset ? zap_from : e.offset, to = zap_to < mapped_end ? zap_to : mapped_end;
    const uint64_t start = e.start + (from - e.offset), end = e.start + (to - e.offset);
    if (from < to && !(skip_start <= start && end <= skip_end)) add_range(events, &n, max, call, start, end, caller);
  };
  while (maps.next(&entry)) {
    for (unsigned i = 0; i < zaps.n; ++i)
      if (entry.inode == zaps.zap[i].inode && entry.device == zaps.zap[i].device)
        add_part(entry, zaps.zap[i].from, zaps.zap[i].to);
    if (zaps.every_file && entry.inode != 0) add_part(entry, 0, kToTheEnd);
  }
  return n;
}

// The file ranges that madvise(addr, end - addr, advice) takes away: each mapping of a file inside the
// range gives the file range it maps there. REMOVE punches them mapping by mapping and stops at the
// first mapping that is not a shared file mapping (madvise_remove fails there: EACCES, and the walk of
// the mappings ends); COLLAPSE takes the file's pages behind any file mapping, private ones too
// (madvise_collapse: hpage_collapse_scan_file, collapse_file unmaps the old pages everywhere), and
// leaves anonymous memory to the advised range.
void files_behind(uint64_t addr, uint64_t end, int advice, Zaps* zaps) noexcept {
  sys::HookMapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry) && entry.start < end) {
    if (entry.end <= addr) continue;
    const bool file = entry.inode != 0;
    if (advice == MADV_REMOVE && (!file || (entry.prot & sys::kMapShared) == 0)) return;
    if (!file) continue;
    const uint64_t start = entry.start > addr ? entry.start : addr, stop = entry.end < end ? entry.end : end;
    Zap zap;
    zap.device = entry.device;
    zap.inode = entry.inode;
    zap.from = entry.offset + (start - entry.start);
    zap.to = zap.from + (stop - start);
    zaps->add(zap);
  }
}

}  // namespace

unsigned file_events(long nr, const long* a, umn_process_event* events, uintptr_t caller) noexcept {
  Zaps zaps;
  umn_process_call call;
  if (!zap_of(nr, a, &zaps.zap[0], &call) || zaps.zap[0].from >= zaps.zap[0].to) return 0;
  zaps.n = 1;
  return mappings_of(zaps, call, events, kMaxEvents, 0, 0, caller);
}

unsigned madvise_file_events(uint64_t addr, uint64_t length, int advice, umn_process_event* events,
                             uintptr_t caller) noexcept {
  if (make_event(&events[0], UMN_CALL_MADVISE, UMN_NOTIFY_CLEAR, addr, length, caller) == 0) return 0;
  Zaps zaps;
  files_behind(addr, events[0].end, advice, &zaps);
  if (zaps.n == 0) return 1;
  return 1 + mappings_of(zaps, UMN_CALL_MADVISE, events + 1, kMaxEvents - 1, events[0].start, events[0].end, caller);
}

}  // namespace umn::detail
