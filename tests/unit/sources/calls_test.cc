// calls_test.cc - the class audit of issue 17 (docs/process.md, "Events"): calls beyond munmap & co.
// that take memory away in the kernel and must be announced before they do, and arguments read as the
// kernel reads them. Each test failed on the code before its fix (named in its comment).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "recorder.hpp"
#include "umn/process.h"

namespace umn::test {
namespace {

// Garbage in the upper half of a register that the kernel reads as an int: negative as a 64-bit value.
constexpr long kGarbage = static_cast<long>(0xa5a5a5a5UL << 32);
constexpr size_t kHuge = 2u << 20;           // the default huge page size on x86-64

class Calls : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(umn_process_hooks_install(), 0); }
};

// pkey_mprotect is mprotect with a protection key (mm/mprotect.c, do_mprotect_pkey): removing read or
// write access is PROTECTION_VMA like mprotect's, through libc's wrapper and the raw call, and with
// PROT_GROWSDOWN from the start of the mapping. It was not hooked at all (no event).
TEST_F(Calls, PkeyMprotectRemovingAccessNotifiesProtectionVma) {
  unsigned char* p = map_pages(2);
  Recorder rec;
  ASSERT_EQ(rec.watch(p, 2 * kPage), 0);
  ASSERT_EQ(pkey_mprotect(p, kPage, PROT_READ, -1), 0);  // pkey -1: the key is left as it is
  ASSERT_EQ(syscall(SYS_pkey_mprotect, p + kPage, kPage, PROT_NONE, -1), 0);
  ASSERT_EQ(rec.calls(), 2);
  EXPECT_TRUE(event_is(rec, 0, UMN_NOTIFY_PROTECTION_VMA, u(p), u(p + kPage)));
  EXPECT_TRUE(event_is(rec, 1, UMN_NOTIFY_PROTECTION_VMA, u(p + kPage), u(p + 2 * kPage)));
  ASSERT_EQ(pkey_mprotect(p, 2 * kPage, PROT_READ | PROT_WRITE, -1), 0);
  EXPECT_EQ(rec.calls(), 2);  // adding access: nothing
  rec.unwatch();
  munmap(p, 2 * kPage);

  auto* g = static_cast<unsigned char*>(
      mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0));
  ASSERT_NE(g, MAP_FAILED);
  std::memset(g, kPattern, 4 * kPage);
  Recorder rec_g;
  ASSERT_EQ(rec_g.watch(g, 4 * kPage), 0);
  ASSERT_EQ(pkey_mprotect(g + 2 * kPage, kPage, PROT_READ | PROT_GROWSDOWN, -1), 0);
  EXPECT_TRUE(one_event(rec_g, UMN_NOTIFY_PROTECTION_VMA, u(g), u(g + 3 * kPage)));
  rec_g.unwatch();
  munmap(g, 4 * kPage);
}

// A shared file mapping of n pages filled with kPattern: a memfd of exactly that size.
struct SharedFile {
  int fd = -1;
  unsigned char* p = nullptr;
  size_t pages = 0;
  explicit SharedFile(size_t n) : pages(n) {
    fd = memfd_create("umn-calls", 0);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(n * kPage)) != 0) return;
    void* m = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return;
    p = static_cast<unsigned char*>(m);
    std::memset(p, kPattern, n * kPage);
  }
  ~SharedFile() {
    if (p != nullptr) munmap(p, pages * kPage);
    if (fd >= 0) close(fd);
  }
};

// remap_file_pages (mm/mmap.c, emulated since 4.0) replaces [start, start + size), both rounded down to
// pages, with other pages of the file: a MAP_FIXED mmap inside, announced as one (UNMAP). It was not
// hooked (no event; `umn trace --verify` reported it as a miss).
TEST_F(Calls, RemapFilePagesNotifiesUnmapOfTheReplacedPages) {
  SharedFile f(4);
  ASSERT_NE(f.p, nullptr);
  Recorder rec;
  ASSERT_EQ(rec.watch(f.p, 4 * kPage), 0);
  ASSERT_EQ(remap_file_pages(f.p + kPage, 2 * kPage + 100, 0, 3, 0), 0);  // file page 3 at page 1
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_UNMAP, u(f.p + kPage), u(f.p + 3 * kPage)));
  ASSERT_EQ(syscall(SYS_remap_file_pages, f.p, 100, PROT_READ, 0, 0), -1);  // a nonzero prot: refused
  EXPECT_EQ(rec.calls(), 1);
}

// mmap(MAP_FIXED | MAP_HUGETLB) replaces len rounded up to the huge page size (mm/mmap.c,
// ksys_mmap_pgoff aligns len before the mapping is placed): the whole huge page is announced, also when
// the kernel then refuses the call for want of huge pages (the announcement comes first). Only len was.
// MAP_FIXED with MAP_FIXED_NOREPLACE never replaces (do_mmap fails with EEXIST): no event (there was one).
TEST_F(Calls, MmapFixedHugetlbAnnouncesTheWholeHugePage) {
  auto* reserve = static_cast<unsigned char*>(
      mmap(nullptr, 2 * kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(reserve, MAP_FAILED);
  auto* q = reinterpret_cast<unsigned char*>((u(reserve) + kHuge - 1) & ~(kHuge - 1));
  std::memset(q, kPattern, kHuge);
  Recorder rec;
  ASSERT_EQ(rec.watch(q, kHuge), 0);
  (void)mmap(q, kPage, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_UNMAP, u(q), u(q + kHuge)));
  rec.unwatch();
  munmap(reserve, 2 * kHuge);

  unsigned char* p = map_pages(1);
  Recorder rec_p;
  ASSERT_EQ(rec_p.watch(p, kPage), 0);
  EXPECT_EQ(mmap(p, kPage, PROT_READ, MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(rec_p.calls(), 0);
  rec_p.unwatch();
  munmap(p, kPage);
}

// mmap's fd is an int to the kernel (fget takes the low 32 bits): a file mapped with PROT_EXEC through
// a register with garbage in its upper half is new text like any other and is scanned for sites
// (dispatch.cc, discover_text tested the 64-bit value and took it for fd -1: not scanned).
TEST_F(Calls, ExecMappingWithUpperBitsInTheFdIsScanned) {
  int fd = open(UMN_TEST_LIB_PATH, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  umn_process_hooks_info before, after;
  umn_process_hooks_get_info(&before);
  long m = syscall(SYS_mmap, 0, st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd | kGarbage, 0);
  close(fd);
  ASSERT_NE(m, -1L) << std::strerror(errno);
  umn_process_hooks_get_info(&after);
  EXPECT_EQ(after.modules + after.text_unscanned, before.modules + before.text_unscanned + 1);
  munmap(reinterpret_cast<void*>(m), static_cast<size_t>(st.st_size));
}

}  // namespace
}  // namespace umn::test
