// uffd_test.cc - the userfaultfd monitor: what it delivers, and when (after the pages are gone for
// UNMAP). The unmaps here bypass libc (their own syscall instruction) so that only the monitor sees them.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "recorder.hpp"
#include "umn/process.h"

namespace umn::test {
namespace {

long unhooked(long nr, const void* addr, long length, long arg = 0) {
  long ret;
  register long r10 asm("r10") = 0;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(addr), "S"(length), "d"(arg), "r"(r10) : "rcx", "r11", "memory");
  return ret;
}

bool wait_for(const std::atomic<int>& count, int want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (count.load() < want)
    if (std::chrono::steady_clock::now() > deadline) return false;
    else std::this_thread::yield();
  return true;
}

bool page_mapped(const void* p) {
  unsigned char vec;
  return mincore(const_cast<void*>(p), kPage, &vec) == 0;
}

class Uffd : public ::testing::Test {
 protected:
  void SetUp() override {
    monitor_ = umn_uffd_monitor_start(umn_mm_process());
    if (monitor_ == nullptr) GTEST_SKIP() << "userfaultfd unavailable here: " << std::strerror(errno);
  }
  void TearDown() override { umn_uffd_monitor_stop(monitor_); }
  umn_uffd_monitor* monitor_ = nullptr;
};

std::atomic<int> g_mapped_in_callback{-1};

// UNMAP arrives after the pages are gone: the callback, on the monitor thread, finds them unmapped.
TEST_F(Uffd, UnmapIsDeliveredAfterThePagesAreGone) {
  unsigned char* p = map_pages(2);
  ASSERT_EQ(umn_uffd_monitor_register(monitor_, p, 2 * kPage), 0);
  Recorder rec;
  rec.read_memory = false;
  // "Still there" = mapped with our pattern: the address may already be reused by another mapping (a
  // sanitizer runtime maps memory on its own), which is fresh zeroed memory, not the old contents.
  rec.extra = [](Recorder* self) {
    auto* page = reinterpret_cast<volatile unsigned char*>(self->start);
    g_mapped_in_callback = page_mapped(const_cast<unsigned char*>(page)) && page[0] == kPattern;
  };
  ASSERT_EQ(rec.watch(p, 2 * kPage), 0);
  ASSERT_EQ(unhooked(SYS_munmap, p, 2 * kPage), 0);
  ASSERT_TRUE(wait_for(rec.count, 1));
  EXPECT_EQ(rec.records[0].event, UMN_NOTIFY_UNMAP);
  EXPECT_EQ(rec.records[0].start, u(p));
  EXPECT_EQ(rec.records[0].end, u(p + 2 * kPage));
  EXPECT_EQ(g_mapped_in_callback.load(), 0);
  // The monitor counts an event after its range ends, so after the callback has published its record.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (umn_uffd_monitor_events(monitor_) < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_GE(umn_uffd_monitor_events(monitor_), 1u);
}

// madvise(DONTNEED) arrives as CLEAR.
TEST_F(Uffd, RemoveIsDeliveredAsClear) {
  unsigned char* p = map_pages(2);
  ASSERT_EQ(umn_uffd_monitor_register(monitor_, p, 2 * kPage), 0);
  Recorder rec;
  rec.read_memory = false;
  ASSERT_EQ(rec.watch(p, 2 * kPage), 0);
  ASSERT_EQ(unhooked(SYS_madvise, p, kPage, MADV_DONTNEED), 0);
  ASSERT_TRUE(wait_for(rec.count, 1));
  EXPECT_EQ(rec.records[0].event, UMN_NOTIFY_CLEAR);
  EXPECT_EQ(rec.records[0].start, u(p));
  EXPECT_EQ(rec.records[0].end, u(p + kPage));
  rec.unwatch();
  unhooked(SYS_munmap, p, 2 * kPage);
}

// A first touch of an unpopulated registered page is answered with a zero page: it does not hang.
TEST_F(Uffd, FirstTouchIsAnsweredWithZeroPage) {
  auto* p = static_cast<unsigned char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_EQ(umn_uffd_monitor_register(monitor_, p, kPage), 0);
  EXPECT_EQ(p[100], 0);
  unhooked(SYS_munmap, p, kPage);
}

// File-backed memory cannot be registered (the documented limit of this source).
TEST_F(Uffd, FileBackedRangesAreRefused) {
  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(ftruncate(fileno(f), kPage), 0);
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fileno(f), 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_EQ(umn_uffd_monitor_register(monitor_, p, kPage), -EINVAL);
  munmap(p, kPage);
  fclose(f);
}

}  // namespace
}  // namespace umn::test
