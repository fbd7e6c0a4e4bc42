// uring_limits_test.cc - io_uring fixed buffers at their limits: every slot held, a buffer over the
// kernel's 1 GiB per-buffer limit (io_uring refuses it; the slot must not leak).
#include <gtest/gtest.h>
#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>

#include "umn/process.h"
#include "umn/uring_buffers.h"

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kGiB = size_t{1} << 30;

class UringLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(umn_process_hooks_install(), 0);
    ASSERT_EQ(io_uring_queue_init(4, &ring_, 0), 0) << "io_uring must work on this machine";
    ring_ok_ = true;
  }
  void TearDown() override {
    if (bufs_ != nullptr) umn_uring_buffers_destroy(bufs_);
    if (ring_ok_) io_uring_queue_exit(&ring_);
  }
  static char* map(size_t length) {
    void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  io_uring ring_{};
  bool ring_ok_ = false;
  umn_uring_buffers* bufs_ = nullptr;
};

// Every slot held: get is -ENOMEM (nothing to evict); after one put its slot serves the next get.
TEST_F(UringLimits, EverySlotHeldIsEnomemUntilAPut) {
  ASSERT_EQ(umn_uring_buffers_create(&ring_, 2, nullptr, &bufs_), 0);
  char* area = map(3 * 2 * kPage);
  ASSERT_NE(area, nullptr);
  umn_uring_buffer a{}, b{}, c{};
  ASSERT_EQ(umn_uring_buffers_get(bufs_, area, kPage, &a), 0);
  ASSERT_EQ(umn_uring_buffers_get(bufs_, area + 2 * kPage, kPage, &b), 0);
  EXPECT_NE(a.index, b.index);
  EXPECT_EQ(umn_uring_buffers_get(bufs_, area + 4 * kPage, kPage, &c), -ENOMEM);
  const unsigned freed = a.index;
  umn_uring_buffers_put(bufs_, &a);
  ASSERT_EQ(umn_uring_buffers_get(bufs_, area + 4 * kPage, kPage, &c), 0);
  EXPECT_EQ(c.index, freed);
  umn_uring_buffers_put(bufs_, &b);
  umn_uring_buffers_put(bufs_, &c);
  munmap(area, 3 * 2 * kPage);
}

// A buffer over io_uring's 1 GiB per-buffer limit fails with the kernel's error, caches nothing and
// keeps its slot free (the table has one: the next get needs it).
TEST_F(UringLimits, BufferOverOneGiBFailsAndKeepsTheSlotFree) {
  ASSERT_EQ(umn_uring_buffers_create(&ring_, 1, nullptr, &bufs_), 0);
  char* big = map(kGiB + kPage);  // never touched: the kernel refuses the length before pinning
  ASSERT_NE(big, nullptr);
  umn_uring_buffer fixed{};
  EXPECT_EQ(umn_uring_buffers_get(bufs_, big, kGiB + kPage, &fixed), -EFAULT);
  struct umn_regcache_stats stats {};
  umn_regcache_stats(umn_uring_buffers_cache(bufs_), &stats);
  EXPECT_EQ(stats.regions, 0u);
  ASSERT_EQ(umn_uring_buffers_get(bufs_, big, kPage, &fixed), 0);
  EXPECT_EQ(fixed.index, 0u);
  umn_uring_buffers_put(bufs_, &fixed);
  munmap(big, kGiB + kPage);
}

}  // namespace
