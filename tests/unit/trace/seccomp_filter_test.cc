// seccomp_filter_test.cc - tools/trace/seccomp_filter.hpp: which system calls the filter stops. With no
// tracer attached, SECCOMP_RET_TRACE makes a call fail with ENOSYS without running it (seccomp(2)), so
// a child that installs the filter and issues a call tells by its result whether the tracer would have
// stopped it: every memory-changing call, by its x86_64 and its i386 (`int $0x80`) number, whatever
// garbage the upper halves of its integer arguments hold, and nothing that takes no memory away.
#include "trace/seccomp_filter.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>

namespace umn::trace {
namespace {

constexpr long kAddr = 0x7e0000000000;  // nothing mapped there: a call let through takes nothing
constexpr long kAddr32 = 0x10000000;
constexpr long kHigh = 1L << 32;        // garbage above the 32 bits the kernel reads

long syscall64(long nr, long a0, long a1, long a2, long a3) {
  long ret;
  register long r10 __asm__("r10") = a3;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

long syscall32(long nr, long a0, long a1, long a2, long a3) {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3) : "memory");
  return ret;
}

// Return: whether the filter stops the call (it fails with ENOSYS in a child with the filter).
bool stopped(bool i386, long nr, std::initializer_list<long> args) {
  long a[4] = {};
  std::copy(args.begin(), args.end(), a);
  pid_t child = fork();
  if (child == 0) {
    if (install_seccomp_filter(true) != 0) _exit(2);
    const long ret = i386 ? syscall32(nr, a[0], a[1], a[2], a[3]) : syscall64(nr, a[0], a[1], a[2], a[3]);
    _exit(ret == -ENOSYS ? 1 : 0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 2) << "the filter could not be installed";
  return WIFEXITED(status) && WEXITSTATUS(status) == 1;
}

bool stopped64(long nr, std::initializer_list<long> args) { return stopped(false, nr, args); }
bool stopped32(long nr, std::initializer_list<long> args) { return stopped(true, nr, args); }

TEST(TraceSeccompFilter, StopsEveryCallThatAlwaysTakesMemory) {
  EXPECT_TRUE(stopped64(SYS_munmap, {kAddr, 4096}));
  EXPECT_TRUE(stopped64(SYS_mremap, {kAddr, 4096, 4096, 0}));
  EXPECT_TRUE(stopped64(SYS_brk, {0}));
  EXPECT_TRUE(stopped64(SYS_shmdt, {kAddr}));
  EXPECT_TRUE(stopped64(SYS_shmat, {-1, 0, 0}));
  EXPECT_TRUE(stopped64(SYS_process_madvise, {-1, 0, 0, MADV_DONTNEED}));
  EXPECT_TRUE(stopped64(SYS_remap_file_pages, {kAddr, 4096, 0, 0}));
  EXPECT_TRUE(stopped64(SYS_io_uring_setup, {0, 0}));
  EXPECT_TRUE(stopped64(SYS_seccomp, {1, 1 << 3, 0}));
}

TEST(TraceSeccompFilter, StopsMmapOnlyWithFixedWithoutNoreplace) {
  const long flags = MAP_PRIVATE | MAP_ANONYMOUS;
  EXPECT_TRUE(stopped64(SYS_mmap, {kAddr, 4096, PROT_READ, flags | MAP_FIXED}));
  EXPECT_TRUE(stopped64(SYS_mmap, {kAddr, 4096, PROT_READ, kHigh | flags | MAP_FIXED}));
  EXPECT_FALSE(stopped64(SYS_mmap, {0, 4096, PROT_READ, flags}));
  EXPECT_FALSE(stopped64(SYS_mmap, {kAddr, 4096, PROT_READ, flags | MAP_FIXED | MAP_FIXED_NOREPLACE}));
}

TEST(TraceSeccompFilter, StopsEveryDiscardingMadviseByTheLow32BitsOfAdvice) {
  for (long advice : {long{MADV_DONTNEED}, long{MADV_FREE}, long{MADV_REMOVE}, 24L /* DONTNEED_LOCKED */, 21L /* PAGEOUT */,
                      25L /* COLLAPSE */, 102L /* GUARD_INSTALL */}) {
    EXPECT_TRUE(stopped64(SYS_madvise, {kAddr, 4096, advice})) << advice;
    EXPECT_TRUE(stopped64(SYS_madvise, {kAddr, 4096, kHigh | advice})) << advice;
    EXPECT_TRUE(stopped32(219, {kAddr32, 4096, advice})) << advice;
  }
  EXPECT_FALSE(stopped64(SYS_madvise, {kAddr, 4096, MADV_WILLNEED}));
  EXPECT_FALSE(stopped64(SYS_madvise, {kAddr, 4096, (long{MADV_DONTNEED} << 32) | MADV_WILLNEED}));
}

TEST(TraceSeccompFilter, StopsMprotectThatLacksReadOrWrite) {
  for (long nr : {long{SYS_mprotect}, long{SYS_pkey_mprotect}}) {
    for (long prot : {PROT_NONE, PROT_READ, PROT_WRITE, PROT_READ | PROT_EXEC, PROT_READ | PROT_GROWSDOWN})
      EXPECT_TRUE(stopped64(nr, {kAddr, 4096, prot, 0})) << nr << " " << prot;
    EXPECT_FALSE(stopped64(nr, {kAddr, 4096, PROT_READ | PROT_WRITE, 0})) << nr;
    EXPECT_FALSE(stopped64(nr, {kAddr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, 0})) << nr;
  }
  EXPECT_TRUE(stopped32(125, {kAddr32, 4096, PROT_READ}));
  EXPECT_TRUE(stopped32(380, {kAddr32, 4096, PROT_READ, 0}));
  EXPECT_FALSE(stopped32(125, {kAddr32, 4096, PROT_READ | PROT_WRITE}));
}

// arch/x86/entry/syscalls/syscall_32.tbl: what `int $0x80` reaches from a 64-bit process.
TEST(TraceSeccompFilter, StopsTheI386NumbersToo) {
  for (long nr : {91L /* munmap */, 163L /* mremap */, 45L /* brk */, 398L /* shmdt */, 397L /* shmat */,
                  440L /* process_madvise */, 90L /* old_mmap */, 117L /* ipc */, 257L /* remap_file_pages */,
                  425L /* io_uring_setup */, 354L /* seccomp */, 11L /* execve */, 358L /* execveat */})
    EXPECT_TRUE(stopped32(nr, {kAddr32, 4096, 0, 0})) << nr;
  EXPECT_TRUE(stopped32(192 /* mmap2 */, {kAddr32, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED}));
  EXPECT_FALSE(stopped32(192 /* mmap2 */, {0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS}));
  EXPECT_FALSE(stopped32(20 /* getpid */, {}));
}

TEST(TraceSeccompFilter, LetsOtherCallsThrough) {
  EXPECT_FALSE(stopped64(SYS_getpid, {}));
  EXPECT_FALSE(stopped64(SYS_mlock, {kAddr, 0}));
}

}  // namespace
}  // namespace umn::trace
