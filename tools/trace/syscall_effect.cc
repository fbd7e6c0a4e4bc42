// syscall_effect.cc - the kernel's rules for what each memory-changing call takes away
// (syscall_effect.hpp). Calls the kernel refuses for their arguments alone (a misaligned address, a zero
// or overflowing length, MAP_FIXED_NOREPLACE) take nothing; refusals the tracer cannot predict are
// settled at the call's exit by the tracer (tracer.cc, confirm_at_exit).
#include "trace/syscall_effect.hpp"

#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "trace/proc_maps.hpp"

namespace umn::trace {

namespace {

constexpr uint64_t kPage = 4096;
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

// The i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl): a 64-bit process can issue them with
// `int $0x80`, which no libc site patch sees.
enum I386 : long {
  k32Brk = 45,
  k32OldMmap = 90,
  k32Munmap = 91,
  k32Ipc = 117,
  k32Mprotect = 125,
  k32Mremap = 163,
  k32Mmap2 = 192,
  k32Madvise = 219,
  k32PkeyMprotect = 380,
  k32Shmat = 397,
  k32Shmdt = 398,
  k32ProcessMadvise = 440,
  k32Execve = 11,
  k32Execveat = 358,
  k32RemapFilePages = 257,
  k32IoUringSetup = 425,
  k32Seccomp = 354,
};

// The kinds of call, whatever the architecture's number.
enum class Call {
  kOther,
  kMunmap,
  kMmap,
  kMremap,
  kMadvise,
  kMprotect,
  kBrk,
  kShmat,
  kShmdt,
  kProcessMadvise,
  kExec,
  kUnresolved,
  kRemapFilePages,
  kIoUringSetup,
  kSeccomp,
  kFtruncate,
  kFallocate
};

Call call_of(uint32_t arch, long nr) {
  if (arch == AUDIT_ARCH_X86_64) {
    switch (nr) {
      case SYS_munmap:
        return Call::kMunmap;
      case SYS_mmap:
        return Call::kMmap;
      case SYS_mremap:
        return Call::kMremap;
      case SYS_madvise:
        return Call::kMadvise;
      case SYS_mprotect:
      case SYS_pkey_mprotect:
        return Call::kMprotect;
      case SYS_brk:
        return Call::kBrk;
      case SYS_shmat:
        return Call::kShmat;
      case SYS_shmdt:
        return Call::kShmdt;
      case SYS_process_madvise:
        return Call::kProcessMadvise;
      case SYS_execve:
      case SYS_execveat:
        return Call::kExec;
      case SYS_remap_file_pages:
        return Call::kRemapFilePages;
      case SYS_io_uring_setup:
        return Call::kIoUringSetup;
      case SYS_seccomp:
        return Call::kSeccomp;
      case SYS_ftruncate:
        return Call::kFtruncate;
      case SYS_fallocate:
        return Call::kFallocate;
      default:
        return Call::kOther;
    }
  }
  switch (nr) {
    case k32Munmap:
      return Call::kMunmap;
    case k32Mmap2:
      return Call::kMmap;
    case k32Mremap:
      return Call::kMremap;
    case k32Madvise:
      return Call::kMadvise;
    case k32Mprotect:
    case k32PkeyMprotect:
      return Call::kMprotect;
    case k32Brk:
      return Call::kBrk;
    case k32Shmat:
      return Call::kShmat;
    case k32Shmdt:
      return Call::kShmdt;
    case k32ProcessMadvise:
      return Call::kProcessMadvise;
    case k32Execve:
    case k32Execveat:
      return Call::kExec;
    case k32OldMmap:
    case k32Ipc:
      return Call::kUnresolved;  // arguments behind a pointer or multiplexed
    case k32RemapFilePages:
      return Call::kRemapFilePages;
    case k32IoUringSetup:
      return Call::kIoUringSetup;
    case k32Seccomp:
      return Call::kSeccomp;
    default:
      return Call::kOther;
  }
}

// [addr, addr + page_up(len)), or nothing when the kernel refuses the range (EINVAL).
std::vector<Range> page_range(uint64_t addr, uint64_t len) {
  const uint64_t end = addr + page_up(len);
  if ((addr & (kPage - 1)) != 0 || len == 0 || end <= addr) return {};
  return {{addr, end}};
}

Effect effect(umn_process_call call, Loss loss, std::vector<Range> ranges = {}) {
  Effect e;
  e.call = call;
  e.loss = loss;
  e.ranges = std::move(ranges);
  return e;
}

Effect unresolved(Effect e, const char* why) {
  e.unresolved = true;
  e.why = why;
  return e;
}

bool discards(int advice) {
  switch (advice) {
    case MADV_DONTNEED:
    case MADV_FREE:
    case MADV_REMOVE:
    case 24:   // MADV_DONTNEED_LOCKED
    case 21:   // MADV_PAGEOUT
    case 25:   // MADV_COLLAPSE
    case 102:  // MADV_GUARD_INSTALL
      return true;
    default:
      return false;
  }
}

Effect mmap_effect(const Syscall& c) {
  const int flags = static_cast<int>(c.args[3]);
  if ((flags & MAP_FIXED) == 0 || (flags & MAP_FIXED_NOREPLACE) != 0) return {};
  return effect(UMN_CALL_MMAP_FIXED, Loss::kMapping, page_range(c.args[0], c.args[1]));
}

Effect mremap_effect(const Syscall& c) {
  constexpr int kMayMove = 1, kFixed = 2, kDontUnmap = 4;
  const uint64_t old_addr = c.args[0], old_len = page_up(c.args[1]), new_len = page_up(c.args[2]);
  const int flags = static_cast<int>(c.args[3]);
  Effect e = effect(UMN_CALL_MREMAP, Loss::kMapping);
  if ((old_addr & (kPage - 1)) != 0 || new_len == 0) return e;
  if ((flags & kFixed) != 0) {
    for (const Range& r : page_range(c.args[4], new_len)) e.ranges.push_back(r);  // the destination first
    if (old_len != 0) e.ranges.push_back({old_addr, old_addr + old_len});
  } else if ((flags & kDontUnmap) != 0) {
    if (old_len != 0) e.ranges.push_back({old_addr, old_addr + old_len});
  } else if (new_len < old_len) {
    e.ranges.push_back({old_addr + new_len, old_addr + old_len});
  } else if (new_len > old_len && (flags & kMayMove) != 0 && old_len != 0) {
    e.if_moved.push_back({old_addr, old_addr + old_len});
  }
  return e;
}

Effect mprotect_effect(const Syscall& c) {
  const int prot = static_cast<int>(c.args[2]);
  Effect e = effect(UMN_CALL_MPROTECT, Loss::kAccess);
  e.read_lost = (prot & PROT_READ) == 0;
  e.write_lost = (prot & PROT_WRITE) == 0;
  if (!e.read_lost && !e.write_lost) return {};
  e.ranges = page_range(c.args[0], c.args[1]);
  if ((prot & PROT_GROWSDOWN) != 0 && !e.ranges.empty()) {
    // The kernel starts at the beginning of a VM_GROWSDOWN mapping (mm/mprotect.c).
    const std::vector<MapLine> maps = read_maps(c.tid);
    if (maps.empty()) return unresolved(e, "PROT_GROWSDOWN in a process whose mappings could not be read");
    for (const MapLine& line : maps)
      if (line.range.start <= e.ranges[0].start && e.ranges[0].start < line.range.end)
        e.ranges[0].start = line.range.start;
  }
  return e;
}

// The size of a System V segment (its id is the inode of its mapping), or 0.
uint64_t segment_size(uint64_t shmid) {
  shmid_ds ds{};
  if (shmctl(static_cast<int>(shmid), IPC_STAT, &ds) != 0) return 0;
  return page_up(ds.shm_segsz);
}

// ipc/shm.c ksys_shmdt: every mapping of the segment attached at addr, from addr to addr + its size,
// holes included; nothing when addr is no attachment.
Effect shmdt_effect(const Syscall& c) {
  const uint64_t addr = c.args[0];
  Effect e = effect(UMN_CALL_SHMDT, Loss::kMapping);
  uint64_t inode = 0, limit = 0;
  const std::vector<MapLine> maps = read_maps(c.tid);
  if (maps.empty()) return unresolved(e, "shmdt in a process whose mappings could not be read");
  for (const MapLine& line : maps) {
    const bool sysv = line.path.rfind("/SYSV", 0) == 0;
    if (!sysv || line.range.start < addr || line.offset != line.range.start - addr) continue;
    if (inode == 0) {
      inode = line.inode;
      limit = addr + segment_size(inode);
    }
    if (line.inode == inode && line.range.start < limit)
      e.ranges.push_back({line.range.start, std::min(line.range.end, limit)});
  }
  return e;
}

Effect shmat_effect(const Syscall& c) {
  constexpr int kRemap = 040000, kRnd = 020000;
  const int flags = static_cast<int>(c.args[2]);
  if ((flags & kRemap) == 0 || c.args[1] == 0) return {};
  const uint64_t addr = (flags & kRnd) != 0 ? c.args[1] & ~(static_cast<uint64_t>(SHMLBA) - 1) : c.args[1];
  Effect e = effect(UMN_CALL_SHMAT, Loss::kMapping);
  if (uint64_t size = segment_size(c.args[0]); size != 0) {
    e.ranges = page_range(addr, size);
    return e;
  }
  return unresolved(e, "shmat(SHM_REMAP) of a segment whose size could not be read");
}

// The thread group of the process a pidfd refers to, from /proc/TID/fdinfo/FD; 0 if unknown.
pid_t pidfd_target(const Syscall& c, int pidfd) {
  if (pidfd == -10000 || pidfd == -20000) return c.tgid;  // PIDFD_SELF_THREAD, PIDFD_SELF_THREAD_GROUP
  std::ifstream info(fmt::format("/proc/{}/fdinfo/{}", c.tid, pidfd));
  long pid = 0;
  for (std::string line; std::getline(info, line);)
    if (line.rfind("Pid:", 0) == 0) pid = std::stol(line.substr(4));
  if (pid <= 0) return 0;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Tgid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  return 0;
}

Effect process_madvise_effect(const Syscall& c) {
  if (!discards(static_cast<int>(c.args[3]))) return {};
  Effect e = effect(UMN_CALL_PROCESS_MADVISE, Loss::kMapping);
  const pid_t target = pidfd_target(c, static_cast<int>(c.args[0]));
  if (target == 0) return unresolved(e, "process_madvise through a pidfd that could not be resolved");
  // Another process's memory: its own hooks cannot announce a call made here.
  if (target != c.tgid) return unresolved(e, "process_madvise of another process");
  const size_t count = std::min<uint64_t>(c.args[2], 1024);  // UIO_MAXIOV
  const size_t width = c.arch == AUDIT_ARCH_X86_64 ? 16 : 8;
  std::vector<unsigned char> raw(count * width);
  iovec local{raw.data(), raw.size()}, remote{reinterpret_cast<void*>(c.args[1]), raw.size()};
  if (process_vm_readv(c.tid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(raw.size())) {
    if (errno == EFAULT) return {};  // the kernel refuses the call too
    return unresolved(e, "process_madvise whose iovecs could not be read");
  }
  for (size_t i = 0; i < count; ++i) {
    uint64_t base = 0, len = 0;
    std::memcpy(&base, &raw[i * width], width / 2);
    std::memcpy(&len, &raw[i * width + width / 2], width / 2);
    for (const Range& r : page_range(base, len)) e.ranges.push_back(r);
  }
  return e;
}

// mm/mmap.c remap_file_pages: a nonzero prot is refused; otherwise the pages of [start, start + size),
// both rounded down to pages, are replaced by other pages of the file (a MAP_FIXED mmap inside).
Effect remap_file_pages_effect(const Syscall& c) {
  if (c.args[2] != 0) return {};
  const uint64_t start = c.args[0] & ~(kPage - 1), size = c.args[1] & ~(kPage - 1);
  if (start + size <= start) return {};
  return effect(UMN_CALL_MMAP_FIXED, Loss::kMapping, {{start, start + size}});
}

// ftruncate and fallocate (mm/truncate.c, unmap_mapping_range): the kernel takes the pages mapping the
// file offsets [from, to) out of every mapping of the file, this process's included, which are found in
// its maps by the device and inode that stat of /proc/PID/fd/FD gives.
Effect file_effect(const Syscall& c, umn_process_call call, uint64_t fd, uint64_t size_above, uint64_t from,
                   uint64_t to) {
  Effect e = effect(call, Loss::kMapping);
  struct stat st;
  if (stat(fmt::format("/proc/{}/fd/{}", c.tgid, static_cast<unsigned>(fd)).c_str(), &st) != 0)
    return errno == ENOENT ? Effect{} : unresolved(e, "a file call on a descriptor that could not be resolved");
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) <= size_above || from >= to) return {};
  const std::string device = fmt::format("{:02x}:{:02x}", major(st.st_dev), minor(st.st_dev));
  const std::vector<MapLine> maps = read_maps(c.tid);
  if (maps.empty()) return unresolved(e, "a file call in a process whose mappings could not be read");
  for (const MapLine& line : maps) {
    if (line.inode != st.st_ino || line.device != device) continue;
    const uint64_t mapped_end = line.offset + (line.range.end - line.range.start);
    const uint64_t lo = std::max(from, line.offset), hi = std::min(to, mapped_end);
    if (lo < hi) e.ranges.push_back({line.range.start + (lo - line.offset), line.range.start + (hi - line.offset)});
  }
  return e;
}

// ftruncate(fd, length): truncate_pagecache zaps from page_up(length), when the file is longer.
Effect ftruncate_effect(const Syscall& c) {
  const auto length = static_cast<int64_t>(c.args[1]);
  if (length < 0) return {};
  return file_effect(c, UMN_CALL_TRUNCATE, c.args[0], static_cast<uint64_t>(length),
                     page_up(static_cast<uint64_t>(length)), UINT64_MAX);
}

// fallocate(fd, mode, offset, len): PUNCH_HOLE, ZERO_RANGE and WRITE_ZEROES zap the pages wholly inside
// [offset, offset + len) (truncate_pagecache_range); COLLAPSE_RANGE and INSERT_RANGE shift the file and
// zap from offset on (truncate_pagecache).
Effect fallocate_effect(const Syscall& c) {
  constexpr int kPunch = 0x02, kCollapse = 0x08, kZero = 0x10, kInsert = 0x20, kWriteZeroes = 0x80;
  const int mode = static_cast<int>(c.args[1]);
  const auto offset = static_cast<int64_t>(c.args[2]), len = static_cast<int64_t>(c.args[3]);
  if (offset < 0 || len <= 0 || offset > INT64_MAX - len) return {};
  const auto start = static_cast<uint64_t>(offset), end = start + static_cast<uint64_t>(len);
  if ((mode & (kCollapse | kInsert)) != 0)
    return file_effect(c, UMN_CALL_FALLOCATE, c.args[0], 0, start & ~(kPage - 1), UINT64_MAX);
  if ((mode & (kPunch | kZero | kWriteZeroes)) != 0)
    return file_effect(c, UMN_CALL_FALLOCATE, c.args[0], 0, page_up(start), end & ~(kPage - 1));
  return {};
}

Effect unverifiable(const char* why) {
  Effect e;
  e.loss = Loss::kUnverifiable;
  e.why = why;
  return e;
}

// seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, ...): the filter may answer
// SECCOMP_RET_USER_NOTIF, which takes precedence over the tracer's SECCOMP_RET_TRACE, and its listener
// may let the call continue: a munmap that never stops in the tracer.
Effect seccomp_effect(const Syscall& c) {
  constexpr uint64_t kSetModeFilter = 1, kNewListener = 1u << 3;
  if (c.args[0] != kSetModeFilter || (c.args[1] & kNewListener) == 0) return {};
  return unverifiable(
      "a seccomp filter with a user-notification listener: the calls it lets continue never stop in "
      "the tracer");
}

}  // namespace

Effect effect_of(const Syscall& c) {
  Effect e;
  switch (call_of(c.arch, c.nr)) {
    case Call::kMunmap:
      e = effect(UMN_CALL_MUNMAP, Loss::kMapping, page_range(c.args[0], c.args[1]));
      break;
    case Call::kMmap:
      e = mmap_effect(c);
      break;
    case Call::kMremap:
      e = mremap_effect(c);
      break;
    case Call::kMadvise:
      if (discards(static_cast<int>(c.args[2])))
        e = effect(UMN_CALL_MADVISE, Loss::kMapping, page_range(c.args[0], c.args[1]));
      break;
    case Call::kMprotect:
      e = mprotect_effect(c);
      break;
    case Call::kBrk:
      e = effect(UMN_CALL_BRK, Loss::kBrkShrink);
      break;
    case Call::kShmat:
      e = shmat_effect(c);
      break;
    case Call::kShmdt:
      e = shmdt_effect(c);
      break;
    case Call::kProcessMadvise:
      e = process_madvise_effect(c);
      break;
    case Call::kExec:
      e.loss = Loss::kExec;
      break;
    case Call::kRemapFilePages:
      e = remap_file_pages_effect(c);
      break;
    case Call::kIoUringSetup:
      e = unverifiable(
          "io_uring: the kernel discards memory for it (IORING_OP_MADVISE) without a system call the "
          "tracer can stop");
      break;
    case Call::kSeccomp:
      e = seccomp_effect(c);
      break;
    case Call::kFtruncate:
      e = ftruncate_effect(c);
      break;
    case Call::kFallocate:
      e = fallocate_effect(c);
      break;
    case Call::kUnresolved:
      e = effect(UMN_CALL_COUNT, Loss::kMapping);
      e.unresolved = true;
      e.why = "i386 call with indirect arguments: not resolved";
      break;
    case Call::kOther:
      break;
  }
  e.name = trapped_name(c.arch, c.nr);
  return e;
}

const char* trapped_name(uint32_t arch, long nr) {
  static const char* const kNames[] = {"other",
                                       "munmap",
                                       "mmap",
                                       "mremap",
                                       "madvise",
                                       "mprotect",
                                       "brk",
                                       "shmat",
                                       "shmdt",
                                       "process_madvise",
                                       "execve",
                                       "unresolved",
                                       "remap_file_pages",
                                       "io_uring_setup",
                                       "seccomp",
                                       "ftruncate",
                                       "fallocate"};
  static const char* const kI386Names[] = {"i386:other",
                                           "i386:munmap",
                                           "i386:mmap2",
                                           "i386:mremap",
                                           "i386:madvise",
                                           "i386:mprotect",
                                           "i386:brk",
                                           "i386:shmat",
                                           "i386:shmdt",
                                           "i386:process_madvise",
                                           "i386:execve",
                                           "i386:old_mmap/ipc",
                                           "i386:remap_file_pages",
                                           "i386:io_uring_setup",
                                           "i386:seccomp",
                                           "i386:ftruncate",
                                           "i386:fallocate"};
  const int kind = static_cast<int>(call_of(arch, nr));
  return arch == AUDIT_ARCH_X86_64 ? kNames[kind] : kI386Names[kind];
}

}  // namespace umn::trace
