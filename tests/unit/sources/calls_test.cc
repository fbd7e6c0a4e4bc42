// calls_test.cc - the class audit of issue 17 (docs/process.md, "Events"): calls beyond munmap & co.
// that take memory away in the kernel and must be announced before they do, and arguments read as the
// kernel reads them. Each test failed on the code before its fix (named in its comment).
#include <fcntl.h>
#include <linux/falloc.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "recorder.hpp"
#include "umn/process.h"

namespace umn::test {
namespace {

// Garbage in the upper half of a register that the kernel reads as an int: negative as a 64-bit value.
constexpr long kGarbage = static_cast<long>(0xa5a5a5a5UL << 32);
constexpr size_t kHuge = 2u << 20;           // the default huge page size on x86-64
constexpr int kMadvCollapse = 25;            // <asm-generic/mman-common.h>, Linux 6.1; glibc may lack it

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

// The path of f's descriptor, for the calls that take a path (the kernel follows the magic link).
std::string path_of(const SharedFile& f) { return "/proc/self/fd/" + std::to_string(f.fd); }

// A private mapping of the whole of f, every page read (so that each maps the file's page).
unsigned char* map_private(const SharedFile& f) {
  void* m = mmap(nullptr, f.pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.fd, 0);
  if (m == MAP_FAILED) return nullptr;
  auto* q = static_cast<unsigned char*>(m);
  for (size_t i = 0; i < f.pages; ++i) (void)*reinterpret_cast<volatile unsigned char*>(q + i * kPage);
  return q;
}

// glibc 2.36's fallocate issues the call from one of two sites: the single-threaded one straddles a cache
// line, so it is never patched (sites_unsafe; docs/process.md, "Not covered"); the other is used once the
// process has had a second thread (glibc never goes back). The fallocate tests take that path.
void leave_single_threaded_mode() { std::thread([] {}).join(); }

// Issue 17.6. Truncation (truncate_pagecache) zaps the pages past page_up(new size) in every mapping of
// the file, shared and private (copied-on-write pages included), with no call on the address space:
// CLEAR of those pages in each mapping, for ftruncate, truncate(path), creat and open(O_TRUNC) (the
// whole file); nothing for growth, for another file, or for O_CREAT | O_EXCL. No event was announced.
TEST_F(Calls, TruncationNotifiesClearPastTheNewSizeInEveryMapping) {
  SharedFile f(8), other(8);
  ASSERT_NE(f.p, nullptr);
  ASSERT_NE(other.p, nullptr);
  unsigned char* q = map_private(f);
  ASSERT_NE(q, nullptr);
  q[7 * kPage] = kPattern;  // a copied-on-write page: truncation zaps it too
  Recorder shared, priv, unrelated;
  ASSERT_EQ(shared.watch(f.p, 8 * kPage), 0);
  ASSERT_EQ(priv.watch(q, 8 * kPage), 0);
  ASSERT_EQ(unrelated.watch(other.p, 8 * kPage), 0);

  ASSERT_EQ(ftruncate(f.fd, 5 * kPage + 100), 0);
  EXPECT_TRUE(one_event(shared, UMN_NOTIFY_CLEAR, u(f.p + 6 * kPage), u(f.p + 8 * kPage)));
  EXPECT_TRUE(one_event(priv, UMN_NOTIFY_CLEAR, u(q + 6 * kPage), u(q + 8 * kPage)));
  ASSERT_EQ(ftruncate(f.fd, 8 * kPage), 0);  // growth takes nothing
  std::memset(f.p, kPattern, 8 * kPage);
  EXPECT_EQ(shared.calls(), 1);

  ASSERT_EQ(truncate(path_of(f).c_str(), 2 * kPage), 0);
  ASSERT_EQ(shared.calls(), 2);
  EXPECT_TRUE(event_is(shared, 1, UMN_NOTIFY_CLEAR, u(f.p + 2 * kPage), u(f.p + 8 * kPage)));
  ASSERT_EQ(ftruncate(f.fd, 8 * kPage), 0);
  std::memset(f.p, kPattern, 8 * kPage);

  errno = 0;
  EXPECT_EQ(open(path_of(f).c_str(), O_RDWR | O_CREAT | O_EXCL | O_TRUNC, 0600), -1);  // exists: EEXIST
  EXPECT_EQ(errno, EEXIST);
  int fd = open(path_of(f).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  close(fd);
  fd = open(path_of(f).c_str(), O_PATH | O_TRUNC);  // O_PATH drops O_TRUNC: nothing is truncated
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(f.p[0], kPattern);
  EXPECT_EQ(shared.calls(), 2);
  fd = open(path_of(f).c_str(), O_RDWR | O_TRUNC);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(shared.calls(), 3);
  EXPECT_TRUE(event_is(shared, 2, UMN_NOTIFY_CLEAR, u(f.p), u(f.p + 8 * kPage)));
  ASSERT_EQ(ftruncate(f.fd, 8 * kPage), 0);
  std::memset(f.p, kPattern, 8 * kPage);

  fd = creat(path_of(f).c_str(), 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(shared.calls(), 4);
  EXPECT_TRUE(event_is(shared, 3, UMN_NOTIFY_CLEAR, u(f.p), u(f.p + 8 * kPage)));
  EXPECT_EQ(unrelated.calls(), 0);
  shared.unwatch();
  priv.unwatch();
  unrelated.unwatch();
  munmap(q, 8 * kPage);
}

// Issue 17.6. fallocate(PUNCH_HOLE) zaps the pages of the hole in every mapping of the file (shmem_fallocate,
// truncate_pagecache_range): CLEAR of [offset, offset + len) rounded out to pages (xfs zaps the partial
// blocks too; elsewhere the two partial pages are an over-approximation). Allocation (mode 0) takes
// nothing. No event was announced, although MADV_REMOVE of the same pages is.
TEST_F(Calls, FallocatePunchHoleNotifiesClearOverTheHole) {
  leave_single_threaded_mode();
  SharedFile f(8);
  ASSERT_NE(f.p, nullptr);
  Recorder rec;
  ASSERT_EQ(rec.watch(f.p, 8 * kPage), 0);
  ASSERT_EQ(fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kPage + 100, 3 * kPage), 0);
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_CLEAR, u(f.p + kPage), u(f.p + 5 * kPage)));
  EXPECT_EQ(f.p[2 * kPage], 0);  // the kernel did punch
  ASSERT_EQ(fallocate(f.fd, 0, 0, 16 * kPage), 0);
  EXPECT_EQ(rec.calls(), 1);
  std::memset(f.p, kPattern, 8 * kPage);
  ASSERT_EQ(syscall(SYS_fallocate, f.fd | kGarbage, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE | kGarbage, 0, kPage), 0);
  ASSERT_EQ(rec.calls(), 2);  // the descriptor and the mode are ints: garbage in the upper halves changes nothing
  EXPECT_TRUE(event_is(rec, 1, UMN_NOTIFY_CLEAR, u(f.p), u(f.p + kPage)));
}

// The threads of this process, as the kernel lists them.
unsigned thread_count() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  unsigned n = 0;
  while (const dirent* entry = readdir(dir)) n += entry->d_name[0] != '.';
  closedir(dir);
  return n;
}

// The body of the test below, in a process that never had a second thread: installation patches every
// site, the cache-line-straddling ones included (patch/x86_64.hpp, "Sites straddling a cache line"), and
// glibc's single-threaded fallocate path is announced.
void single_threaded_fallocate() {
  ASSERT_EQ(thread_count(), 1u) << "the child must install with one thread";
  ASSERT_EQ(umn_process_hooks_install(), 0);
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  EXPECT_EQ(info.sites_unsafe, 0u);  // glibc 2.36: fallocate64's single-threaded site was 1
  SharedFile f(8);
  ASSERT_NE(f.p, nullptr);
  Recorder rec;
  ASSERT_EQ(rec.watch(f.p, 8 * kPage), 0);
  ASSERT_TRUE(__libc_single_threaded) << "glibc would take its multi-threaded (cancellable) path";
  ASSERT_EQ(fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kPage, 2 * kPage), 0);
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_CLEAR, u(f.p + kPage), u(f.p + 3 * kPage)));
  EXPECT_EQ(f.p[kPage], 0);  // the kernel did punch
  rec.unwatch();
}

// The body of the refusal test below: another thread is alive (asleep on a pipe) at installation, so a
// window straddling a cache line may be running on it and is left alone (glibc 2.36: fallocate64's
// single-threaded site, the one such site in libc and ld.so).
void straddling_site_with_a_second_thread() {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread sleeper([&] {
    char c;
    (void)read(fds[0], &c, 1);
  });
  ASSERT_GE(thread_count(), 2u);  // 3 under TSan: its background thread starts with the first pthread_create
  ASSERT_EQ(umn_process_hooks_install(), 0);
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  EXPECT_EQ(info.sites_unsafe, 1u);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  sleeper.join();
  close(fds[0]);
  close(fds[1]);
}

// Runs this test binary re-executed (a fresh process) with the filter test and the environment variable
// env set; expects it to pass.
void run_fresh(const char* test, const char* env) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv(env, "1", 1);
    execl("/proc/self/exe", "umn_sources_tests", (std::string("--gtest_filter=") + test).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's expectations failed: " << status;
}

// Issue 17.6's follow-up. glibc 2.36's fallocate() in a process that never had a second thread issues
// the call from a site whose patch window straddles a cache line: it was left unpatched (sites_unsafe 1)
// and the hole punched in a shared mapping was not announced (no event; both expectations failed on the
// code before the fix). The body runs in this binary re-executed (a fresh process, one thread).
TEST(CallsSingleThreaded, FallocatePunchHoleIsAnnouncedAndNoSiteIsUnsafeRegression) {
  if (std::getenv("UMN_TEST_SINGLE_THREADED") != nullptr) return single_threaded_fallocate();
  run_fresh("CallsSingleThreaded.FallocatePunchHoleIsAnnouncedAndNoSiteIsUnsafeRegression", "UMN_TEST_SINGLE_THREADED");
}

// The plain write is sound only with no other thread: with a second thread alive at installation the
// straddling site stays unpatched and counted (patch/sole_thread.hpp). Would fail if the patcher wrote
// straddling windows whatever the threads.
TEST(CallsSingleThreaded, StraddlingSiteIsLeftAloneWhenAnotherThreadExistsAtInstallation) {
  if (std::getenv("UMN_TEST_SECOND_THREAD") != nullptr) return straddling_site_with_a_second_thread();
  run_fresh("CallsSingleThreaded.StraddlingSiteIsLeftAloneWhenAnotherThreadExistsAtInstallation", "UMN_TEST_SECOND_THREAD");
}

// A file of n pages filled with kPattern on a disk filesystem (fallocate's COLLAPSE, INSERT and ZERO
// ranges are ext4's and xfs's, not tmpfs's): in $TMPDIR, else the working directory.
struct DiskFile {
  std::string path;
  int fd = -1;
  explicit DiskFile(size_t n) {
    for (const char* dir : {static_cast<const char*>(std::getenv("TMPDIR")), "/var/tmp", "."}) {
      if (dir == nullptr) continue;
      path = std::string(dir) + "/umn-calls-XXXXXX";
      fd = mkstemp(path.data());
      if (fd < 0) continue;
      unlink(path.c_str());
      std::string block(n * kPage, static_cast<char>(kPattern));
      if (write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()) && supports_collapse()) return;
      close(fd);
      fd = -1;
    }
  }
  // Probes COLLAPSE_RANGE with an invalid (zero) length: EINVAL where supported, EOPNOTSUPP elsewhere.
  bool supports_collapse() const { return fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 0) == -1 && errno == EINVAL; }
  ~DiskFile() {
    if (fd >= 0) close(fd);
  }
};

// Issue 17.6. COLLAPSE_RANGE and INSERT_RANGE shift the file from offset on: every mapped page from there
// is zapped (truncate_pagecache from offset, copied-on-write pages included); ZERO_RANGE zaps the pages of
// the range like PUNCH_HOLE. CLEAR of those, measured on this kernel with /proc/self/pagemap before the
// rule was written down. No event was announced.
TEST_F(Calls, FallocateCollapseInsertAndZeroRangeNotifyClear) {
  leave_single_threaded_mode();
  DiskFile f(8);
  if (f.fd < 0) GTEST_SKIP() << "no filesystem with FALLOC_FL_COLLAPSE_RANGE in $TMPDIR, /var/tmp or .";
  auto* p = static_cast<unsigned char*>(mmap(nullptr, 8 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0));
  ASSERT_NE(p, MAP_FAILED);
  Recorder rec;
  ASSERT_EQ(rec.watch(p, 8 * kPage), 0);
  ASSERT_EQ(fallocate(f.fd, FALLOC_FL_ZERO_RANGE, kPage + 100, 3 * kPage), 0);
  ASSERT_EQ(rec.calls(), 1);
  EXPECT_TRUE(event_is(rec, 0, UMN_NOTIFY_CLEAR, u(p + kPage), u(p + 5 * kPage)));
  std::memset(p, kPattern, 8 * kPage);
  ASSERT_EQ(fallocate(f.fd, FALLOC_FL_COLLAPSE_RANGE, 2 * kPage, kPage), 0);
  ASSERT_EQ(rec.calls(), 2);
  EXPECT_TRUE(event_is(rec, 1, UMN_NOTIFY_CLEAR, u(p + 2 * kPage), u(p + 8 * kPage)));
  std::memset(p, kPattern, 7 * kPage);
  ASSERT_EQ(fallocate(f.fd, FALLOC_FL_INSERT_RANGE, 3 * kPage, kPage), 0);
  ASSERT_EQ(rec.calls(), 3);
  EXPECT_TRUE(event_is(rec, 2, UMN_NOTIFY_CLEAR, u(p + 3 * kPage), u(p + 8 * kPage)));
  rec.unwatch();
  munmap(p, 8 * kPage);
}

// MADV_REMOVE punches a hole in the file behind a shared mapping (madvise_remove: vfs_fallocate with
// PUNCH_HOLE), so every mapping of those file pages loses them, not only the advised range: each other
// mapping of the file here gets CLEAR of the pages mapping the same file range. Only the advised range
// was announced (the second mapping lost its pages with no event).
TEST_F(Calls, MadviseRemoveNotifiesEveryMappingOfTheFile) {
  SharedFile f(4);
  ASSERT_NE(f.p, nullptr);
  auto* b = static_cast<unsigned char*>(mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0));
  ASSERT_NE(b, MAP_FAILED);
  Recorder rec_a, rec_b;
  ASSERT_EQ(rec_a.watch(f.p, 4 * kPage), 0);
  ASSERT_EQ(rec_b.watch(b, 4 * kPage), 0);
  ASSERT_EQ(madvise(f.p + kPage, 2 * kPage, MADV_REMOVE), 0);
  EXPECT_TRUE(one_event(rec_a, UMN_NOTIFY_CLEAR, u(f.p + kPage), u(f.p + 3 * kPage)));
  EXPECT_TRUE(one_event(rec_b, UMN_NOTIFY_CLEAR, u(b + kPage), u(b + 3 * kPage)));
  EXPECT_EQ(b[kPage], 0);  // the kernel did take the second mapping's pages
  EXPECT_EQ(b[0], kPattern);
  rec_a.unwatch();
  rec_b.unwatch();
  munmap(b, 4 * kPage);
}

// Regression (review of 4d7d33a): MADV_REMOVE over two adjacent mappings of one file at non-contiguous
// file offsets punches each mapping's own file range (madvise_remove per mapping). Mapping a holds file
// pages 0-1 and, right after it, page 3; c holds the whole file. The hook took the first mapping's
// offset plus the advised length (file pages 0-2), so c's page 3 was zeroed with no event.
TEST_F(Calls, MadviseRemoveOverTwoMappingsOfOneFileNotifiesEachMappingsFileRange) {
  SharedFile c(4);
  ASSERT_NE(c.p, nullptr);
  auto* a = static_cast<unsigned char*>(mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, c.fd, 0));
  ASSERT_NE(a, MAP_FAILED);
  ASSERT_EQ(mmap(a + 2 * kPage, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, c.fd, 3 * kPage),
            a + 2 * kPage);
  Recorder page3_of_c;
  page3_of_c.read_memory = false;
  ASSERT_EQ(page3_of_c.watch(c.p + 3 * kPage, kPage), 0);
  ASSERT_EQ(madvise(a, 3 * kPage, MADV_REMOVE), 0);
  EXPECT_EQ(c.p[3 * kPage], 0);  // the kernel punched file page 3 (through a's second mapping)
  EXPECT_EQ(c.p[2 * kPage], kPattern);  // file page 2 was not advised
  EXPECT_EQ(page3_of_c.calls(), 1);
  page3_of_c.unwatch();
  munmap(a, 3 * kPage);
}

// MADV_REMOVE over a shared mapping of one file and, right after it, one of another file punches a hole
// in both files (madvise_remove per mapping): the second file's other mapping gets CLEAR too. Only the
// file behind the first mapping was followed (the second file's other mapping lost its page unannounced).
TEST_F(Calls, MadviseRemoveOverMappingsOfTwoFilesNotifiesTheOtherMappingsOfBoth) {
  SharedFile x(2), y(2);
  ASSERT_NE(x.p, nullptr);
  ASSERT_NE(y.p, nullptr);
  auto* a = static_cast<unsigned char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, x.fd, 0));
  ASSERT_NE(a, MAP_FAILED);
  ASSERT_EQ(mmap(a + kPage, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, y.fd, kPage), a + kPage);
  Recorder rec_x, rec_y;
  rec_x.read_memory = false;
  rec_y.read_memory = false;
  ASSERT_EQ(rec_x.watch(x.p, kPage), 0);  // the punched pages (the events may span more: kMaxEvents)
  ASSERT_EQ(rec_y.watch(y.p + kPage, kPage), 0);
  ASSERT_EQ(madvise(a, 2 * kPage, MADV_REMOVE), 0);
  EXPECT_EQ(x.p[0], 0);
  EXPECT_EQ(y.p[kPage], 0);
  EXPECT_EQ(y.p[0], kPattern);
  EXPECT_EQ(rec_x.calls(), 1);
  EXPECT_EQ(rec_y.calls(), 1);
  EXPECT_EQ(rec_x.records[0].event, UMN_NOTIFY_CLEAR);
  EXPECT_EQ(rec_y.records[0].event, UMN_NOTIFY_CLEAR);
  rec_x.unwatch();
  rec_y.unwatch();
  munmap(a, 2 * kPage);
}

// MADV_REMOVE over adjacent shared mappings of nine files (more than the 8 file ranges file_events.cc
// keeps): the ninth file's other mapping still gets CLEAR (every file mapping here is announced whole).
TEST_F(Calls, MadviseRemoveOverMappingsOfNineFilesNotifiesTheLastFilesOtherMapping) {
  constexpr int kFiles = 9;
  void* m = mmap(nullptr, kFiles * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto* a = static_cast<unsigned char*>(m);
  int fds[kFiles];
  for (int i = 0; i < kFiles; ++i) {
    fds[i] = memfd_create("umn-calls", 0);
    ASSERT_GE(fds[i], 0);
    ASSERT_EQ(ftruncate(fds[i], kPage), 0);
    ASSERT_EQ(mmap(a + i * kPage, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fds[i], 0), a + i * kPage);
  }
  void* o = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fds[kFiles - 1], 0);
  ASSERT_NE(o, MAP_FAILED);
  auto* other = static_cast<unsigned char*>(o);
  other[0] = kPattern;
  Recorder rec;
  rec.read_memory = false;
  ASSERT_EQ(rec.watch(other, kPage), 0);
  ASSERT_EQ(madvise(a, kFiles * kPage, MADV_REMOVE), 0);
  EXPECT_EQ(other[0], 0);
  EXPECT_EQ(rec.calls(), 1);
  rec.unwatch();
  munmap(other, kPage);
  munmap(a, kFiles * kPage);
  for (int fd : fds) close(fd);
}

// MADV_COLLAPSE of a private file mapping (read-only file THP: madvise_collapse scans the file,
// collapse_file unmaps the old pages from every mapping of them) takes the file's pages from its other
// mappings too, private or shared: they get CLEAR before the call, whatever it then returns. Only a
// shared advised mapping was followed (no event for the other mapping).
TEST_F(Calls, MadviseCollapseOfAPrivateFileMappingNotifiesTheFilesOtherMappings) {
  SharedFile f(4);
  ASSERT_NE(f.p, nullptr);
  void* m = mmap(nullptr, 4 * kPage, PROT_READ, MAP_PRIVATE, f.fd, 0);
  ASSERT_NE(m, MAP_FAILED);
  auto* priv = static_cast<unsigned char*>(m);
  Recorder rec;
  rec.read_memory = false;
  ASSERT_EQ(rec.watch(f.p, 4 * kPage), 0);
  madvise(priv + kPage, 2 * kPage, kMadvCollapse);  // may fail (no THP here): announced all the same
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_CLEAR, u(f.p + kPage), u(f.p + 3 * kPage)));
  rec.unwatch();
  munmap(priv, 4 * kPage);
}

// shmat(SHM_REMAP) of a SHM_HUGETLB segment replaces its size rounded up to the huge page (a 4 KiB
// segment maps 2 MiB, measured), and such a segment can only be attached at a huge-page-aligned address;
// IPC_STAT does not say which segments are hugetlb, so at a 2 MiB-aligned address the announced range is
// rounded up to 2 MiB. Only shm_segsz (4 KiB) was announced. (Checked with a normal segment: the
// classification is what changes; the hugetlb one needs reserved huge pages.)
TEST_F(Calls, ShmatRemapAtAHugePageBoundaryAnnouncesTheWholeHugePage) {
  int id = shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600);
  if (id < 0) GTEST_SKIP() << "System V shared memory unavailable: " << std::strerror(errno);
  auto* reserve = static_cast<unsigned char*>(
      mmap(nullptr, 2 * kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(reserve, MAP_FAILED);
  auto* q = reinterpret_cast<unsigned char*>((u(reserve) + kHuge - 1) & ~(kHuge - 1));
  std::memset(q, kPattern, kHuge);
  Recorder rec;
  ASSERT_EQ(rec.watch(q, kHuge), 0);
  void* at = shmat(id, q, SHM_REMAP);
  shmctl(id, IPC_RMID, nullptr);
  ASSERT_EQ(at, q);
  EXPECT_TRUE(one_event(rec, UMN_NOTIFY_UNMAP, u(q), u(q + kHuge)));
  rec.unwatch();
  shmdt(q);
  munmap(reserve, 2 * kHuge);
}

// madvise(MADV_HWPOISON) and madvise(MADV_SOFT_OFFLINE) (privileged testing advice, mm/madvise.c,
// madvise_inject_error) take a page away from every mapping of it or migrate it to another frame: CLEAR,
// like the discards. Made here on a page without access and never touched (it stays reserved, so nothing
// else can be mapped there), which the kernel refuses (EFAULT: no page to get; EPERM without
// CAP_SYS_ADMIN) with no side effect: the announcement comes before the call. There was none.
TEST_F(Calls, HwpoisonAndSoftOfflineNotifyClear) {
  auto* p = static_cast<unsigned char*>(mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  Recorder rec;
  rec.read_memory = false;  // no access
  ASSERT_EQ(rec.watch(p, kPage), 0);
  EXPECT_EQ(madvise(p, kPage, 100 /* MADV_HWPOISON */), -1);
  EXPECT_EQ(madvise(p, kPage, 101 /* MADV_SOFT_OFFLINE */), -1);
  ASSERT_EQ(rec.calls(), 2);
  EXPECT_TRUE(event_is(rec, 0, UMN_NOTIFY_CLEAR, u(p), u(p + kPage)));
  EXPECT_TRUE(event_is(rec, 1, UMN_NOTIFY_CLEAR, u(p), u(p + kPage)));
  rec.unwatch();
  munmap(p, kPage);
}

}  // namespace
}  // namespace umn::test
