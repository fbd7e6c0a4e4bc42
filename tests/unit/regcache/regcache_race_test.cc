// regcache_race_test.cc - W8 as a stress test: one thread gets a range of umn_mm_process() while
// another replaces that range with mmap(MAP_FIXED) in a loop. A get must never return a registration of
// memory that had already been replaced when the get began. CI-sized (a time budget and a replacement
// count); UMN_STRESS_LONG=1 runs 20x longer. Runs under TSan in the tsan build.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "umn/process.h"
#include "umn/regcache.h"

namespace {

constexpr size_t kLength = 4 * 4096;

// The replacer: `started` = k before its k-th mmap(MAP_FIXED), `replaced` = k once it returned.
std::atomic<unsigned long> g_started{0};
std::atomic<unsigned long> g_replaced{0};

// reg takes a few microseconds, like a real registration (pinning), so invalidations land inside it;
// it records the newest mapping it could have registered: `started` read at its end.
int race_reg(void*, umn_regcache_region* region) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(3);
  while (std::chrono::steady_clock::now() < until) {
  }
  region->handle = reinterpret_cast<void*>(g_started.load(std::memory_order_seq_cst));
  return 0;
}
void race_dereg(void*, umn_regcache_region*) {}
const umn_regcache_ops kRaceOps = {&race_reg, &race_dereg, nullptr};

bool long_run() {
  const char* value = std::getenv("UMN_STRESS_LONG");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

TEST(RegCacheRace, GetNeverReturnsMemoryReplacedBeforeIt) {
  ASSERT_EQ(umn_process_hooks_install(), 0);
  umn_regcache* rc = nullptr;
  ASSERT_EQ(umn_regcache_create(umn_mm_process(), nullptr, &kRaceOps, nullptr, &rc), 0);
  void* range = mmap(nullptr, kLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(range, MAP_FAILED);
  const unsigned long replacements = long_run() ? 400000 : 20000;
  std::atomic<bool> stop{false};
  std::thread replacer([&] {
    for (unsigned long k = 1; k <= replacements && !stop.load(); ++k) {
      g_started.store(k, std::memory_order_seq_cst);
      void* again = mmap(range, kLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (again != range) std::abort();
      g_replaced.store(k, std::memory_order_seq_cst);
    }
    stop = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(long_run() ? 600 : 60);
  unsigned long gets = 0, stale = 0, busy = 0;
  while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
    const unsigned long replaced_before = g_replaced.load(std::memory_order_seq_cst);
    umn_regcache_region* region = nullptr;
    int err = umn_regcache_get(rc, range, kLength, &region);
    if (err == -EBUSY) {
      busy++;
      continue;
    }
    ASSERT_EQ(err, 0);
    gets++;
    // The registered mapping is at most the handle's; stale if that was replaced before the get.
    stale += reinterpret_cast<uintptr_t>(region->handle) < replaced_before ? 1 : 0;
    umn_regcache_put(rc, region);
  }
  stop = true;
  replacer.join();
  struct umn_regcache_stats stats {};
  umn_regcache_stats(rc, &stats);
  std::printf("gets %lu, replacements %lu, stale %lu, -EBUSY %lu, retries %llu, invalidations %llu\n", gets,
              g_replaced.load(), stale, busy, static_cast<unsigned long long>(stats.retries),
              static_cast<unsigned long long>(stats.invalidations));
  EXPECT_EQ(stale, 0u);
  EXPECT_GT(gets, 0u);
  EXPECT_GT(stats.invalidations, 0u) << "the race must actually have happened";
  umn_regcache_destroy(rc);
  munmap(range, kLength);
}

}  // namespace
