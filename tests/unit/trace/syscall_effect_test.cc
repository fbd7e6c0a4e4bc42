// syscall_effect_test.cc - tools/trace/syscall_effect.hpp: the tracer's own reading of the kernel's
// rules for what each memory-changing call takes away (mm/mmap.c, mm/mremap.c, mm/madvise.c,
// mm/mprotect.c, ipc/shm.c), independent of the hooks' classification.
#include "trace/syscall_effect.hpp"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace umn::trace {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x7f0000000000;

Syscall call(long nr, std::initializer_list<uint64_t> args, uint32_t arch = AUDIT_ARCH_X86_64) {
  Syscall c;
  c.arch = arch;
  c.nr = nr;
  std::copy(args.begin(), args.end(), c.args);
  c.tid = static_cast<pid_t>(syscall(SYS_gettid));
  c.tgid = getpid();
  return c;
}

void expect_ranges(const std::vector<Range>& got, std::vector<Range> want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].start, want[i].start) << i;
    EXPECT_EQ(got[i].end, want[i].end) << i;
  }
}

// munmap takes whole pages: a length of one byte takes the page; the kernel refuses a misaligned
// address, a zero length and an overflowing range, which take nothing.
TEST(TraceSyscallEffect, MunmapTakesWholePagesAndNothingWhenRefused) {
  Effect e = effect_of(call(SYS_munmap, {kBase, 1}));
  EXPECT_EQ(e.loss, Loss::kMapping);
  EXPECT_EQ(e.call, UMN_CALL_MUNMAP);
  expect_ranges(e.ranges, {{kBase, kBase + kPage}});
  EXPECT_TRUE(effect_of(call(SYS_munmap, {kBase + 1, kPage})).ranges.empty());
  EXPECT_TRUE(effect_of(call(SYS_munmap, {kBase, 0})).ranges.empty());
  EXPECT_TRUE(effect_of(call(SYS_munmap, {~uint64_t{0} - kPage + 1, 2 * kPage})).ranges.empty());
}

// mmap replaces memory only with MAP_FIXED, and never with MAP_FIXED_NOREPLACE (which fails instead).
TEST(TraceSyscallEffect, MmapTakesMemoryOnlyWithFixedWithoutNoreplace) {
  const uint64_t anon = MAP_PRIVATE | MAP_ANONYMOUS;
  EXPECT_EQ(effect_of(call(SYS_mmap, {kBase, kPage, PROT_READ, anon, ~uint64_t{0}, 0})).loss, Loss::kNone);
  expect_ranges(effect_of(call(SYS_mmap, {kBase, kPage, PROT_READ, anon | MAP_FIXED, ~uint64_t{0}, 0})).ranges,
                {{kBase, kBase + kPage}});
  EXPECT_EQ(effect_of(call(SYS_mmap, {kBase, kPage, PROT_READ, anon | MAP_FIXED | MAP_FIXED_NOREPLACE, ~uint64_t{0}, 0})).loss,
            Loss::kNone);
}

// madvise's advice is an int: garbage in the upper half of the register does not hide a discard
// (issue 17.2); advice that keeps the pages takes nothing.
TEST(TraceSyscallEffect, MadviseDiscardReadsOnlyTheLow32BitsOfAdvice) {
  EXPECT_EQ(effect_of(call(SYS_madvise, {kBase, kPage, MADV_DONTNEED | (uint64_t{1} << 32)})).loss, Loss::kMapping);
  EXPECT_EQ(effect_of(call(SYS_madvise, {kBase, kPage, MADV_FREE})).call, UMN_CALL_MADVISE);
  EXPECT_EQ(effect_of(call(SYS_madvise, {kBase, kPage, MADV_WILLNEED})).loss, Loss::kNone);
  EXPECT_EQ(effect_of(call(SYS_madvise, {kBase, kPage, MADV_HUGEPAGE})).loss, Loss::kNone);
}

// mprotect loses the access the new protection lacks; read+write (+exec) loses nothing.
TEST(TraceSyscallEffect, MprotectLosesTheAccessTheNewProtectionLacks) {
  EXPECT_EQ(effect_of(call(SYS_mprotect, {kBase, kPage, PROT_READ | PROT_WRITE | PROT_EXEC})).loss, Loss::kNone);
  Effect read_only = effect_of(call(SYS_mprotect, {kBase, kPage, PROT_READ}));
  EXPECT_EQ(read_only.loss, Loss::kAccess);
  EXPECT_FALSE(read_only.read_lost);
  EXPECT_TRUE(read_only.write_lost);
  Effect none = effect_of(call(SYS_pkey_mprotect, {kBase, kPage, PROT_NONE, 0}));
  EXPECT_TRUE(none.read_lost && none.write_lost);
}

// mremap: MREMAP_FIXED takes the destination and the old range; shrinking takes the tail; growing with
// MREMAP_MAYMOVE takes the old range only if the mapping moved; growing without it takes nothing.
TEST(TraceSyscallEffect, MremapTakesDestinationTailOrOldRangeByItsFlags) {
  constexpr uint64_t kMayMove = 1, kFixed = 2;
  const uint64_t dest = kBase + 64 * kPage;
  Effect fixed = effect_of(call(SYS_mremap, {kBase, 2 * kPage, 3 * kPage, kMayMove | kFixed, dest}));
  expect_ranges(fixed.ranges, {{dest, dest + 3 * kPage}, {kBase, kBase + 2 * kPage}});
  expect_ranges(effect_of(call(SYS_mremap, {kBase, 3 * kPage, kPage, 0})).ranges, {{kBase + kPage, kBase + 3 * kPage}});
  Effect grow = effect_of(call(SYS_mremap, {kBase, kPage, 2 * kPage, kMayMove}));
  EXPECT_TRUE(grow.ranges.empty());
  expect_ranges(grow.if_moved, {{kBase, kBase + kPage}});
  Effect in_place = effect_of(call(SYS_mremap, {kBase, kPage, 2 * kPage, 0}));
  EXPECT_TRUE(in_place.ranges.empty() && in_place.if_moved.empty());
}

// brk is settled at its exit, from the break it returns.
TEST(TraceSyscallEffect, BrkIsSettledAtItsExit) { EXPECT_EQ(effect_of(call(SYS_brk, {kBase})).loss, Loss::kBrkShrink); }

// process_madvise on this process: the iovecs are read from the caller's memory; on another process
// the call is unresolved (that process's hooks cannot announce it).
TEST(TraceSyscallEffect, ProcessMadviseOnSelfTakesEachIovec) {
  iovec iov[2] = {{reinterpret_cast<void*>(kBase), kPage}, {reinterpret_cast<void*>(kBase + 8 * kPage), 1}};
  Effect self = effect_of(call(SYS_process_madvise, {static_cast<uint64_t>(-20000) /* PIDFD_SELF_THREAD_GROUP */,
                                                     reinterpret_cast<uint64_t>(iov), 2, MADV_PAGEOUT, 0}));
  expect_ranges(self.ranges, {{kBase, kBase + kPage}, {kBase + 8 * kPage, kBase + 9 * kPage}});
  EXPECT_EQ(self.call, UMN_CALL_PROCESS_MADVISE);
  EXPECT_EQ(effect_of(call(SYS_process_madvise, {static_cast<uint64_t>(-20000), reinterpret_cast<uint64_t>(iov), 2,
                                                 MADV_WILLNEED, 0})).loss, Loss::kNone);
}

// process_madvise of another process cannot have been announced here: unresolved, so reported.
TEST(TraceSyscallEffect, ProcessMadviseOfAnotherProcessIsUnresolved) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getppid(), 0));
  ASSERT_GE(pidfd, 0);
  iovec iov = {reinterpret_cast<void*>(kBase), kPage};
  Effect other = effect_of(call(SYS_process_madvise, {static_cast<uint64_t>(pidfd), reinterpret_cast<uint64_t>(&iov), 1,
                                                      MADV_PAGEOUT, 0}));
  EXPECT_TRUE(other.unresolved);
  EXPECT_EQ(other.loss, Loss::kMapping);
  close(pidfd);
}

// shmdt detaches every fragment of the segment attached at addr, past a hole (ipc/shm.c ksys_shmdt),
// and nothing when addr is no attachment.
TEST(TraceSyscallEffect, ShmdtTakesEveryFragmentPastHoles) {
  int id = shmget(IPC_PRIVATE, 4 * kPage, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  auto* at = static_cast<char*>(shmat(id, nullptr, 0));
  shmctl(id, IPC_RMID, nullptr);
  ASSERT_NE(at, reinterpret_cast<char*>(-1));
  ASSERT_EQ(munmap(at + kPage, kPage), 0);  // a hole between two fragments
  const auto addr = reinterpret_cast<uint64_t>(at);
  Effect e = effect_of(call(SYS_shmdt, {addr}));
  expect_ranges(e.ranges, {{addr, addr + kPage}, {addr + 2 * kPage, addr + 4 * kPage}});
  EXPECT_TRUE(effect_of(call(SYS_shmdt, {addr + 2 * kPage})).ranges.empty());
  shmdt(at);
}

// int $0x80 from a 64-bit process: the i386 numbers follow the same rules.
TEST(TraceSyscallEffect, I386CallsFollowTheSameRules) {
  constexpr long kI386Munmap = 91, kI386Madvise = 219;
  Effect e = effect_of(call(kI386Munmap, {0x10000, kPage}, AUDIT_ARCH_I386));
  expect_ranges(e.ranges, {{0x10000, 0x10000 + kPage}});
  EXPECT_STREQ(e.name, "i386:munmap");
  EXPECT_EQ(effect_of(call(kI386Madvise, {0x10000, kPage, MADV_DONTNEED}, AUDIT_ARCH_I386)).loss, Loss::kMapping);
}

}  // namespace
}  // namespace umn::trace
