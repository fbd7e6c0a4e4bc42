// regcache_table_test.cc - the cache with thousands of regions: its table is an array of leaves (each
// up to 64 regions, src/users/regcache/table.hpp) and a miss rebuilds only the leaves it touches, so
// insertion in any order, merges and invalidations spanning many leaves, and leaf splits must keep
// every region findable and every other region intact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "device.hpp"
#include "sim_cache.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"

namespace {


constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 32;  // a simulated address
constexpr size_t kRegions = 3000;              // ~47 full leaves, many more after random inserts

// Region i is the page at kBase + 2 i pages (a gap after each: no two are adjacent).
uint64_t page_of(size_t i) { return kBase + 2 * i * kPage; }

class RegCacheTable : public umn::test::SimCacheTest {
 protected:
  // Caches regions 0 .. kRegions-1 in a shuffled order (fixed seed).
  void cache_all_shuffled() {
    std::vector<size_t> order(kRegions);
    std::iota(order.begin(), order.end(), size_t{0});
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
    for (size_t i : order) get_put(page_of(i), kPage);
  }
  // Every region i in [first, last) is cached: its get is a hit with the right bounds.
  void expect_cached(size_t first, size_t last) {
    const size_t regs = device_.reg_count();
    for (size_t i = first; i < last; ++i) {
      umn_regcache_region* region = get(page_of(i), kPage);
      ASSERT_NE(region, nullptr);
      EXPECT_EQ(region->start, page_of(i)) << "region " << i;
      EXPECT_EQ(region->end, page_of(i) + kPage) << "region " << i;
      umn_regcache_put(rc_, region);
    }
    EXPECT_EQ(device_.reg_count(), regs) << "a cached region was registered again";
  }
};

// Inserted in random order (leaves split in the middle of the table), every region is found again.
TEST_F(RegCacheTable, RegionsInsertedInAnyOrderAllHit) {
  cache_all_shuffled();
  EXPECT_EQ(stats().regions, kRegions);
  EXPECT_EQ(stats().bytes, kRegions * kPage);
  expect_cached(0, kRegions);
  EXPECT_EQ(device_.reg_count(), kRegions);
  EXPECT_EQ(device_.dereg_count(), 0u);
}

// A request over regions 1000..1999 (many leaves) merges exactly them into one region; the others
// stay cached, on both sides.
TEST_F(RegCacheTable, MergeSpanningManyLeavesReplacesExactlyTheOverlappedRegions) {
  cache_all_shuffled();
  umn_regcache_region* merged = get(page_of(1000), page_of(1999) + kPage - page_of(1000));
  ASSERT_NE(merged, nullptr);
  EXPECT_EQ(merged->start, page_of(1000));
  EXPECT_EQ(merged->end, page_of(1999) + kPage);
  umn_regcache_put(rc_, merged);
  EXPECT_EQ(device_.dereg_count(), 1000u);
  EXPECT_EQ(stats().regions, kRegions - 1000 + 1);
  EXPECT_EQ(stats().bytes, (kRegions - 1000) * kPage + (page_of(1999) + kPage - page_of(1000)));
  expect_cached(0, 1000);
  expect_cached(2000, kRegions);
  const size_t regs = device_.reg_count();
  get_put(page_of(1500), kPage);  // inside the merged region: a hit
  EXPECT_EQ(device_.reg_count(), regs);
}

// An invalidation over regions 700..2299 (many leaves) removes exactly those; the next gets of them
// register again and the others still hit.
TEST_F(RegCacheTable, InvalidationSpanningManyLeavesRemovesExactlyThoseRegions) {
  cache_all_shuffled();
  invalidate(page_of(700), page_of(2299) + kPage);
  get_put(page_of(kRegions), kPage);  // a miss: it purges the invalidated regions first
  EXPECT_EQ(stats().invalidations, 1600u);
  EXPECT_EQ(device_.dereg_count(), 1600u);
  EXPECT_EQ(stats().regions, kRegions - 1600 + 1);
  expect_cached(0, 700);
  expect_cached(2300, kRegions + 1);
  const size_t regs = device_.reg_count();
  for (size_t i = 700; i < 2300; ++i) get_put(page_of(i), kPage);
  EXPECT_EQ(device_.reg_count(), regs + 1600);
  expect_cached(0, kRegions + 1);
}

}  // namespace
