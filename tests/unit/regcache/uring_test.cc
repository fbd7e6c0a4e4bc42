// uring_test.cc - io_uring fixed buffers on the cache, end to end with the kernel as the device:
// rounds of get -> write_fixed -> munmap -> remap the same address with new contents -> get ->
// write_fixed -> read the file back: 0 stale writes. The same rounds through raw fixed buffers (no cache)
// are the negative control: they must see stale writes, so the test is shown able to fail.
// io_uring must work here: if it does not, the test fails (it is never skipped).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "umn/process.h"
#include "umn/uring_buffers.h"

namespace {

constexpr size_t kLength = 16 * 1024;

int rounds() {
  const char* value = std::getenv("UMN_STRESS_LONG");
  return value != nullptr && std::strcmp(value, "1") == 0 ? 100000 : 10000;
}

class UringFile {
 public:
  UringFile() {
    fd_ = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    EXPECT_GE(fd_, 0);
    ring_ok_ = io_uring_queue_init(8, &ring_, 0) == 0;
  }
  ~UringFile() {
    if (ring_ok_) io_uring_queue_exit(&ring_);
    close(fd_);
  }
  bool ok() const { return fd_ >= 0 && ring_ok_; }
  io_uring* ring() { return &ring_; }
  // write_fixed of [buf, buf + kLength) from slot `index` at offset 0; returns the completion result.
  int write_fixed(const char* buf, unsigned index) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_write_fixed(sqe, fd_, buf, kLength, 0, static_cast<int>(index));
    io_uring_submit(&ring_);
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(&ring_, &cqe) != 0) return -EIO;
    int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res;
  }
  // The first byte written to the file.
  char first_byte() {
    char byte = 0;
    EXPECT_EQ(pread(fd_, &byte, 1, 0), 1);
    return byte;
  }

 private:
  int fd_ = -1;
  bool ring_ok_ = false;
  io_uring ring_{};
};

char* map_at(void* at) {
  void* p = mmap(at, kLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED : 0), -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

// Remaps buf (munmap, then a new mapping at the same address) and fills it with `fill`.
void remap_with(char* buf, char fill) {
  ASSERT_EQ(munmap(buf, kLength), 0);
  ASSERT_EQ(map_at(buf), buf);
  std::memset(buf, fill, kLength);
}

char fill_of(int round) { return static_cast<char>('a' + round % 26); }

// 10^4 rounds through the cache: every write carries the current contents; the raw control (same
// rounds, one registration made up front) carries the old, freed pages.
TEST(UringBuffers, CachedFixedBuffersNeverWriteStalePagesRawOnesDo) {
  ASSERT_EQ(umn_process_hooks_install(), 0) << "the process hooks must work on this machine";
  UringFile cached, raw;
  ASSERT_TRUE(cached.ok() && raw.ok()) << "io_uring must work on this machine (not skipped: failed)";
  umn_uring_buffers* bufs = nullptr;
  ASSERT_EQ(umn_uring_buffers_create(cached.ring(), 4, nullptr, &bufs), 0);
  char* buf = map_at(nullptr);
  ASSERT_NE(buf, nullptr);
  std::memset(buf, fill_of(0), kLength);
  iovec iov = {buf, kLength};
  ASSERT_EQ(io_uring_register_buffers(raw.ring(), &iov, 1), 0);
  int stale_cached = 0, stale_raw = 0;
  for (int round = 0; round < rounds(); ++round) {
    umn_uring_buffer fixed{};
    ASSERT_EQ(umn_uring_buffers_get(bufs, buf, kLength, &fixed), 0);
    ASSERT_EQ(cached.write_fixed(buf, fixed.index), static_cast<int>(kLength));
    umn_uring_buffers_put(bufs, &fixed);
    remap_with(buf, fill_of(round + 1));
    ASSERT_EQ(umn_uring_buffers_get(bufs, buf, kLength, &fixed), 0);
    ASSERT_EQ(cached.write_fixed(buf, fixed.index), static_cast<int>(kLength));
    umn_uring_buffers_put(bufs, &fixed);
    stale_cached += cached.first_byte() != fill_of(round + 1) ? 1 : 0;
    ASSERT_EQ(raw.write_fixed(buf, 0), static_cast<int>(kLength));
    stale_raw += raw.first_byte() != fill_of(round + 1) ? 1 : 0;
  }
  struct umn_regcache_stats stats {};
  umn_regcache_stats(umn_uring_buffers_cache(bufs), &stats);
  std::printf("rounds %d: stale through the cache %d, through raw fixed buffers %d; cache misses %llu\n", rounds(),
              stale_cached, stale_raw, static_cast<unsigned long long>(stats.misses));
  EXPECT_EQ(stale_cached, 0);
  EXPECT_GT(stale_raw, rounds() / 2) << "negative control: raw fixed buffers must write the old pages";
  umn_uring_buffers_destroy(bufs);
  munmap(buf, kLength);
}

// More buffers than slots: unused slots are evicted and reused (reg's -ENOMEM path); a buffer over
// unmapped memory fails with the kernel's -EFAULT and caches nothing.
TEST(UringBuffers, SlotsAreRecycledAndUnmappedMemoryFails) {
  ASSERT_EQ(umn_process_hooks_install(), 0);
  UringFile file;
  ASSERT_TRUE(file.ok()) << "io_uring must work on this machine (not skipped: failed)";
  umn_uring_buffers* bufs = nullptr;
  ASSERT_EQ(umn_uring_buffers_create(file.ring(), 2, nullptr, &bufs), 0);
  char* area = static_cast<char*>(mmap(nullptr, 8 * kLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (int i = 0; i < 8; ++i) {
    char* buf = area + i * kLength;
    std::memset(buf, fill_of(i), kLength);
    umn_uring_buffer fixed{};
    ASSERT_EQ(umn_uring_buffers_get(bufs, buf, kLength, &fixed), 0);
    EXPECT_LT(fixed.index, 2u);
    ASSERT_EQ(file.write_fixed(buf, fixed.index), static_cast<int>(kLength));
    EXPECT_EQ(file.first_byte(), fill_of(i));
    umn_uring_buffers_put(bufs, &fixed);
  }
  struct umn_regcache_stats stats {};
  umn_regcache_stats(umn_uring_buffers_cache(bufs), &stats);
  EXPECT_GE(stats.evictions, 6u);
  munmap(area, 8 * kLength);
  umn_uring_buffer fixed{};
  EXPECT_EQ(umn_uring_buffers_get(bufs, area, kLength, &fixed), -EFAULT);
  umn_uring_buffers_destroy(bufs);
}

}  // namespace
