// regcache_reclaim_test.cc - hits on other threads while misses and invalidations replace the table
// and drop regions again and again: the old tables and regions must stay readable until no hit can
// reach them (under ASan a premature free is a heap-use-after-free here).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "device.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"

namespace {

using umn::test::FakeDevice;
using umn::test::kFakeOps;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 32;  // a simulated address
constexpr uint64_t kHot = 8;                   // regions the hitters use

int churn_rounds() {
  const char* value = std::getenv("UMN_STRESS_LONG");
  return value != nullptr && std::strcmp(value, "1") == 0 ? 200000 : 4000;
}

const void* at(uint64_t addr) { return reinterpret_cast<const void*>(addr); }

TEST(RegCacheReclaim, HitsDuringTableChurnNeverReadFreedMemory) {
  umn_mm* mm = umn_mm_create();
  FakeDevice device;
  umn_regcache* rc = nullptr;
  ASSERT_EQ(umn_regcache_create(mm, nullptr, &kFakeOps, &device, &rc), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> hitters;
  for (int t = 0; t < 2; ++t) {
    hitters.emplace_back([&, t] {
      for (uint64_t i = t; !stop.load(std::memory_order_relaxed); ++i) {
        const uint64_t addr = kBase + (i % kHot) * 2 * kPage;
        umn_regcache_region* region = nullptr;
        if (umn_regcache_get(rc, at(addr), kPage, &region) != 0) {
          errors.fetch_add(1);
          continue;
        }
        if (region->start > addr || region->end < addr + kPage) errors.fetch_add(1);
        umn_regcache_put(rc, region);
      }
    });
  }
  for (int round = 0; round < churn_rounds(); ++round) {
    umn_regcache_region* region = nullptr;
    // A miss far from the hot regions (a new table each time), and an invalidation of a hot one.
    ASSERT_EQ(umn_regcache_get(rc, at(kBase + (64 + round % 512) * 2 * kPage), kPage, &region), 0);
    umn_regcache_put(rc, region);
    const uint64_t hot = kBase + (round % kHot) * 2 * kPage;
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, UMN_NOTIFIER_RANGE_BLOCKABLE, mm, hot, hot + kPage);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
    if (round % 256 == 255) umn_regcache_flush(rc);
  }
  stop.store(true);
  for (std::thread& hitter : hitters) hitter.join();
  EXPECT_EQ(errors.load(), 0);
  umn_regcache_destroy(rc);
  umn_mm_destroy(mm);
}

}  // namespace
