// device.hpp - a counting fake device for the registration cache tests: reg/dereg/invalidate are
// recorded; reg can be told to fail or to run a hook (e.g. an invalidation racing with it).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "umn/regcache.h"

namespace umn::test {

struct FakeDevice {
  std::mutex lock;  // reg/dereg run under the cache lock; the test thread reads the vectors
  std::vector<std::pair<uint64_t, uint64_t>> regs, deregs;
  std::atomic<int> invalidates{0};
  int fail_with = 0;                 // next reg fails with this while fail_times > 0
  int fail_times = 0;
  std::function<void(umn_regcache_region*)> during_reg;  // runs inside reg, before it succeeds
  uintptr_t next_handle = 0x1000;

  static int reg(void* ctx, umn_regcache_region* region) {
    auto* self = static_cast<FakeDevice*>(ctx);
    if (self->during_reg) self->during_reg(region);
    std::lock_guard guard(self->lock);
    if (self->fail_times > 0) {
      self->fail_times--;
      return self->fail_with;
    }
    region->handle = reinterpret_cast<void*>(self->next_handle++);
    self->regs.emplace_back(region->start, region->end);
    return 0;
  }
  static void dereg(void* ctx, umn_regcache_region* region) {
    auto* self = static_cast<FakeDevice*>(ctx);
    std::lock_guard guard(self->lock);
    self->deregs.emplace_back(region->start, region->end);
  }
  static void invalidate(void* ctx, umn_regcache_region*) {
    static_cast<FakeDevice*>(ctx)->invalidates.fetch_add(1, std::memory_order_relaxed);
  }
  size_t reg_count() {
    std::lock_guard guard(lock);
    return regs.size();
  }
  size_t dereg_count() {
    std::lock_guard guard(lock);
    return deregs.size();
  }
};

inline constexpr umn_regcache_ops kFakeOps = {&FakeDevice::reg, &FakeDevice::dereg, &FakeDevice::invalidate};

}  // namespace umn::test
