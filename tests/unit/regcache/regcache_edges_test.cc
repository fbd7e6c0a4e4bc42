// regcache_edges_test.cc - the chunked notifiers at their edges (simulated address space): regions
// over two or more 1 GiB chunks, at the top of the address space, wider than a chunk by alignment, and
// a chunk's first use while an invalidation of it is running.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <future>

#include "device.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"

namespace {

using umn::test::FakeDevice;
using umn::test::kFakeOps;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kGiB = uint64_t{1} << 30;

const void* at(uint64_t addr) { return reinterpret_cast<const void*>(addr); }

class RegCacheEdges : public ::testing::Test {
 protected:
  void TearDown() override {
    if (rc_ != nullptr) umn_regcache_destroy(rc_);
    umn_mm_destroy(mm_);
  }
  void create(uint64_t alignment = 0) {
    umn_regcache_params params{};
    params.alignment = alignment;
    ASSERT_EQ(umn_regcache_create(mm_, &params, &kFakeOps, &device_, &rc_), 0);
  }
  void get_put(uint64_t addr, uint64_t len) {
    umn_regcache_region* region = nullptr;
    ASSERT_EQ(umn_regcache_get(rc_, at(addr), len, &region), 0);
    umn_regcache_put(rc_, region);
  }
  void start(umn_notifier_range* range, uint64_t from, uint64_t to) {
    umn_notifier_range_init(range, UMN_NOTIFY_UNMAP, UMN_NOTIFIER_RANGE_BLOCKABLE, mm_, from, to);
    umn_notifier_invalidate_range_start(range);
  }
  void invalidate(uint64_t from, uint64_t to) {
    umn_notifier_range range;
    start(&range, from, to);
    umn_notifier_invalidate_range_end(&range);
  }

  umn_mm* mm_ = umn_mm_create();
  FakeDevice device_;
  umn_regcache* rc_ = nullptr;
};

// A region over the boundary of two chunks is invalidated by a byte in either of them.
TEST_F(RegCacheEdges, RegionOverTwoChunksIsInvalidatedThroughEither) {
  create();
  const uint64_t boundary = 5 * kGiB;
  get_put(boundary - kPage, 2 * kPage);
  invalidate(boundary, boundary + 1);  // the second chunk only
  get_put(boundary - kPage, 2 * kPage);
  EXPECT_EQ(device_.reg_count(), 2u);
  invalidate(boundary - 1, boundary);  // the first chunk only
  get_put(boundary - kPage, 2 * kPage);
  EXPECT_EQ(device_.reg_count(), 3u);
  EXPECT_EQ(device_.invalidates.load(), 2);
}

// The highest page whose aligned end does not wrap is cached and invalidated like any other; the last
// page (its end would be 2^64) is refused.
TEST_F(RegCacheEdges, TopOfTheAddressSpace) {
  create();
  const uint64_t top = ~uint64_t{0} - 2 * kPage + 1;  // 2^64 - 2 pages
  get_put(top, kPage);
  get_put(top, kPage);
  EXPECT_EQ(device_.reg_count(), 1u);
  invalidate(top + kPage - 1, top + kPage);
  get_put(top, kPage);
  EXPECT_EQ(device_.reg_count(), 2u);
  umn_regcache_region* region = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(top + kPage), 1, &region), -EINVAL);
  EXPECT_EQ(umn_regcache_get(rc_, at(top), 2 * kPage, &region), -EINVAL);
}

// An alignment of 4 GiB makes one region over four chunks: a byte of the third invalidates it.
TEST_F(RegCacheEdges, AlignmentWiderThanAChunk) {
  create(4 * kGiB);
  get_put(8 * kGiB + 5, 1);
  invalidate(10 * kGiB + kPage, 10 * kGiB + 2 * kPage);
  get_put(8 * kGiB + 5, 1);
  EXPECT_EQ(device_.reg_count(), 2u);
  ASSERT_EQ(device_.regs.back(), std::make_pair(8 * kGiB, 12 * kGiB));
}

// A chunk used for the first time while an invalidation of it runs: the miss waits for its end (it
// must not register the memory as it is before the invalidation ends).
TEST_F(RegCacheEdges, FirstUseOfAChunkDuringAnInvalidationWaitsForItsEnd) {
  create();
  umn_notifier_range range;
  start(&range, 3 * kGiB, 3 * kGiB + kPage);
  auto miss = std::async(std::launch::async, [&] { get_put(3 * kGiB, kPage); });
  EXPECT_EQ(miss.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(device_.reg_count(), 0u);
  umn_notifier_invalidate_range_end(&range);
  miss.get();
  EXPECT_EQ(device_.reg_count(), 1u);
}

// The same on a chunk already in use: the invalidation's callback found nothing to mark (the range
// was not cached yet), so only the miss's wait keeps it from registering the memory mid-invalidation.
TEST_F(RegCacheEdges, MissDuringAnInvalidationOfItsRangeWaitsForItsEnd) {
  create();
  get_put(3 * kGiB, kPage);  // the chunk's notifier is in place
  umn_notifier_range range;
  start(&range, 3 * kGiB + 8 * kPage, 3 * kGiB + 9 * kPage);
  auto miss = std::async(std::launch::async, [&] { get_put(3 * kGiB + 8 * kPage, kPage); });
  EXPECT_EQ(miss.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(device_.reg_count(), 1u);
  umn_notifier_invalidate_range_end(&range);
  miss.get();
  EXPECT_EQ(device_.reg_count(), 2u);
}

// flush drops the last region of a chunk and with it the chunk's notifier; the next miss inserts it
// again and an invalidation then reaches the new region.
TEST_F(RegCacheEdges, ChunkRemovedByFlushIsInsertedAgain) {
  create();
  get_put(7 * kGiB, kPage);
  umn_regcache_flush(rc_);
  get_put(7 * kGiB, kPage);
  invalidate(7 * kGiB, 7 * kGiB + 1);
  get_put(7 * kGiB, kPage);
  EXPECT_EQ(device_.reg_count(), 3u);
  EXPECT_EQ(device_.invalidates.load(), 1);
}

}  // namespace
