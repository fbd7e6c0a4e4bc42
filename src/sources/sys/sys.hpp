// sys.hpp - the one boundary through which the event sources issue system calls.
//
// Every real munmap/mremap/madvise/mprotect/brk/shmdt/mmap/userfaultfd/open/read the hooks make goes
// through umn_sys_raw6(), an out-of-line assembly routine that does not go through libc. That keeps the
// hooks from calling themselves: the libc wrappers (and the loader's copies) are what the hooks patch,
// and umn_sys_raw6 loads the syscall number from a register, so its bytes never match the
// "mov $nr,%eax; syscall" pattern the patcher looks for (patch/x86_64.cc).
//
// Locking: none. Lifetime: a maps reader owns one file descriptor between open() and its destructor.
// Context: everything here is async-signal-safe: no malloc, no lock, no errno (results are raw kernel
//   returns: a value, or -errno in [-4095, -1]).
// Memory ordering: none beyond the system calls themselves.
#pragma once

#include <cstddef>
#include <cstdint>

namespace umn::sys {

// Issues system call nr with six arguments, bypassing libc. Return: the raw kernel result.
extern "C" long umn_sys_raw6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

inline long call(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0, long a6 = 0) noexcept {
  return umn_sys_raw6(nr, a1, a2, a3, a4, a5, a6);
}
// True when a raw result is an error (-4095 .. -1).
inline bool failed(long result) noexcept { return static_cast<unsigned long>(result) > -4096UL; }

// madvise advice values newer than glibc 2.36's headers (Linux 5.18, 6.1, 6.13).
constexpr int kMadvDontneedLocked = 24;
constexpr int kMadvCollapse = 25;
constexpr int kMadvGuardInstall = 102;
// The privileged testing advice (CONFIG_MEMORY_FAILURE): poison a page, or migrate it away and offline it.
constexpr int kMadvHwpoison = 100;
constexpr int kMadvSoftOffline = 101;
// pidfd values and flags newer than glibc 2.36's headers: the calling thread and process as pidfds
// (Linux 6.14), and pidfd_open's flag for a thread's pidfd (6.9, PIDFD_THREAD = O_EXCL).
constexpr long kPidfdSelfThread = -10000;
constexpr long kPidfdSelfThreadGroup = -20000;
constexpr unsigned kPidfdThread = 0200;

constexpr uint64_t kPageSize = 4096;
inline uint64_t page_down(uint64_t a) noexcept { return a & ~(kPageSize - 1); }
inline uint64_t page_up(uint64_t a) noexcept { return (a + kPageSize - 1) & ~(kPageSize - 1); }

long munmap(void* addr, size_t length) noexcept;
long mmap(void* addr, size_t length, int prot, int flags, int fd, long offset) noexcept;  // addr or -errno
long mprotect(void* addr, size_t length, int prot) noexcept;
long madvise(void* addr, size_t length, int advice) noexcept;
long brk(uintptr_t addr) noexcept;  // the new (or, for 0, current) break
long open_read(const char* path) noexcept;  // fd or -errno (O_RDONLY|O_CLOEXEC)
long open_append(const char* path) noexcept;  // fd or -errno (O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC)
long read(int fd, void* buf, size_t count) noexcept;
long write_all(int fd, const void* buf, size_t count) noexcept;  // 0 or -errno; retries short writes
long close(int fd) noexcept;
long getpid() noexcept;
long gettid() noexcept;

// Protection bits of a mapping as /proc/self/maps shows them.
enum MapProt : unsigned { kMapRead = 1, kMapWrite = 2, kMapExec = 4, kMapShared = 8 };

struct MapEntry {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  unsigned prot = 0;  // MapProt bits
  uint64_t offset = 0;
  uint64_t inode = 0;
  uint64_t device = 0;  // major << 32 | minor
  const char* path = "";  // NUL-terminated; valid until the next call to next()
};

// Streams /proc/self/maps line by line without allocating, through a buffer of kBuffer bytes that lives
// in the object (on the caller's stack, as a rule). A line longer than the buffer keeps its fields and
// the first kBuffer - 100 or so bytes of its path (NUL-terminated there); the rest of it is skipped.
// Context: async-signal-safe.
template <size_t kBuffer>
class MapsReaderOf {
 public:
  MapsReaderOf() noexcept;
  ~MapsReaderOf();
  MapsReaderOf(const MapsReaderOf&) = delete;
  MapsReaderOf& operator=(const MapsReaderOf&) = delete;
  bool ok() const noexcept { return fd_ >= 0; }
  // Parses the next mapping into *entry. Return: false at the end or on a read error.
  bool next(MapEntry* entry) noexcept;

 private:
  bool fill() noexcept;
  char* line() noexcept;
  bool skip_rest() noexcept;
  int fd_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  bool skipping_ = false;  // the current line was cut: drop the rest of it
  char buf_[kBuffer];
};

// Whole paths (up to PATH_MAX): the installer, which opens the files behind the mappings. 4 KiB: keep it
// off small signal stacks.
using MapsReader = MapsReaderOf<4096>;
// What the hooks use inside hooked calls and fork (paths cut past ~900 bytes; the hooks read only
// /SYSV names, devices, inodes and offsets): bounds their stack (docs/process.md, "Signal handlers").
using HookMapsReader = MapsReaderOf<1024>;

}  // namespace umn::sys
