// sim_cache.hpp - SimCacheTest: the fixture the registration-cache tests share. A cache over a fresh
// simulated address space and a FakeDevice, with the calls each test needs: get (expects success),
// get_put, an invalidation of a range, the statistics.
//
// Lifetime: the address space lives for the test; the cache from SetUp (default parameters) or from the
// last create() until TearDown. Context: the test's thread (other threads may call get/put on rc_).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "device.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"

namespace umn::test {

inline const void* at(uint64_t addr) { return reinterpret_cast<const void*>(addr); }

class SimCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { create({}); }
  void TearDown() override {
    if (rc_ != nullptr) umn_regcache_destroy(rc_);
    umn_mm_destroy(mm_);
  }
  // Replaces the cache with one made with params.
  void create(const umn_regcache_params& params) {
    if (rc_ != nullptr) umn_regcache_destroy(rc_);
    rc_ = nullptr;
    ASSERT_EQ(umn_regcache_create(mm_, &params, &kFakeOps, &device_, &rc_), 0);
  }
  umn_regcache_region* get(uint64_t addr, uint64_t len) {
    umn_regcache_region* region = nullptr;
    EXPECT_EQ(umn_regcache_get(rc_, at(addr), len, &region), 0);
    return region;
  }
  void get_put(uint64_t addr, uint64_t len) { umn_regcache_put(rc_, get(addr, len)); }
  void invalidate(uint64_t start, uint64_t end, umn_notifier_event event = UMN_NOTIFY_UNMAP) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, event, UMN_NOTIFIER_RANGE_BLOCKABLE, mm_, start, end);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
  }
  struct umn_regcache_stats stats() {
    struct umn_regcache_stats out {};
    umn_regcache_stats(rc_, &out);
    return out;
  }

  umn_mm* mm_ = umn_mm_create();
  FakeDevice device_;
  umn_regcache* rc_ = nullptr;
};

}  // namespace umn::test
