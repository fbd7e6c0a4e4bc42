// regcache_paused_hit_test.cc - a hit stopped at a random point of its path while the region is
// invalidated and reclaimed under it. The hit thread is stopped by a signal whose handler waits until the
// main thread has invalidated the region and flushed the cache (its last reference goes: dereg). A hit
// stopped after its first state check and before its hold is published must see, at its second check,
// that the region is no longer valid (src/users/regcache/regcache.cc, park()): else it returns a region
// that was deregistered while it was stopped. The pause is what makes the few-instruction window wide;
// with a thousand pauses, some land in it (the mutant that skips the second check fails here on
// every run, see docs/regcache.md "Checks of the hit protocol").
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "umn/regcache.h"
#include "umn/umn.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 33;  // a simulated address
constexpr unsigned kHandles = 1u << 20;

const void* at(uint64_t addr) { return reinterpret_cast<const void*>(addr); }

// A device whose registrations are numbered handles with a lock-free "registered" flag, so that the hit
// thread checks its region with one load (a lock there would make most pauses land in the check).
struct FlagDevice {
  std::atomic<bool> live[kHandles] = {};
  std::atomic<uint32_t> next{1};
  std::atomic<unsigned long> bad_deregs{0};

  static int reg(void* ctx, umn_regcache_region* region) {
    auto* self = static_cast<FlagDevice*>(ctx);
    const uint32_t handle = self->next.fetch_add(1, std::memory_order_relaxed) % kHandles;
    self->live[handle].store(true, std::memory_order_release);  // pairs with registered()
    region->handle = reinterpret_cast<void*>(uintptr_t{handle});
    return 0;
  }
  static void dereg(void* ctx, umn_regcache_region* region) {
    auto* self = static_cast<FlagDevice*>(ctx);
    if (!self->live[reinterpret_cast<uintptr_t>(region->handle)].exchange(false, std::memory_order_acq_rel))
      self->bad_deregs.fetch_add(1, std::memory_order_relaxed);
  }
  bool registered(const void* handle) const {
    return live[reinterpret_cast<uintptr_t>(handle)].load(std::memory_order_acquire);
  }
};
const umn_regcache_ops kFlagOps = {&FlagDevice::reg, &FlagDevice::dereg, nullptr};

// The pause: the handler announces round r (`g_paused`) and waits until the main thread has released
// round r (`g_released`), at most kPauseLimit (the hit thread may be stopped holding a lock the main
// thread's invalidation or flush needs: then the main thread finishes after the handler gave up).
std::atomic<unsigned long> g_round{0}, g_paused{0}, g_released{0};
constexpr long kPauseLimitNs = 500'000;

long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1'000'000'000L + t.tv_nsec;
}

void pause_handler(int) {
  const int saved = errno;
  const unsigned long round = g_round.load(std::memory_order_acquire);
  g_paused.store(round, std::memory_order_release);
  for (const long until = now_ns() + kPauseLimitNs;
       g_released.load(std::memory_order_acquire) < round && now_ns() < until;) {
    sched_yield();  // the machine may have fewer free CPUs than the test has threads
  }
  errno = saved;
}

bool long_run() {
  const char* value = std::getenv("UMN_STRESS_LONG");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

TEST(RegCachePausedHit, HitStoppedBeforeItsHoldNeverReturnsADeregisteredRegion) {
  umn_mm* mm = umn_mm_create();
  auto* device = new FlagDevice;
  umn_regcache* rc = nullptr;
  ASSERT_EQ(umn_regcache_create(mm, nullptr, &kFlagOps, device, &rc), 0);
  struct sigaction action {};
  action.sa_handler = &pause_handler;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &action, nullptr), 0);

  std::atomic<bool> stop{false}, started{false};
  std::atomic<unsigned long> dereg_under_holder{0}, failed{0}, gets{0};
  std::thread hitter([&] {
    started.store(true);
    while (!stop.load(std::memory_order_relaxed)) {
      umn_regcache_region* region = nullptr;
      if (umn_regcache_get(rc, at(kBase), kPage, &region) != 0) {
        failed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (!device->registered(region->handle)) dereg_under_holder.fetch_add(1, std::memory_order_relaxed);
      umn_regcache_put(rc, region);
      gets.fetch_add(1, std::memory_order_relaxed);
    }
  });
  while (!started.load()) std::this_thread::yield();

  // CI-sized: this many pauses (about 3% land in the window on the development VM), or 30 s; at least
  // min_pauses, or the race was not exercised.
  const unsigned long pauses = long_run() ? 60000 : 1000, min_pauses = 300;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(long_run() ? 600 : 30);
  unsigned long paused = 0;
  for (unsigned long round = 1; paused < pauses && std::chrono::steady_clock::now() < deadline; ++round) {
    // Let the hit thread miss (register the region again) and hit a few times: the signal then lands
    // at a varying point of its hit loop.
    const unsigned long until_gets = gets.load() + 2 + round % 32;
    for (const long until = now_ns() + 100'000'000; gets.load() < until_gets && now_ns() < until;) sched_yield();
    g_round.store(round, std::memory_order_release);
    pthread_kill(hitter.native_handle(), SIGUSR2);
    const long until = now_ns() + 100'000'000;
    while (g_paused.load(std::memory_order_acquire) < round && now_ns() < until) sched_yield();
    paused += g_paused.load(std::memory_order_acquire) >= round ? 1 : 0;
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, UMN_NOTIFIER_RANGE_BLOCKABLE, mm, kBase, kBase + kPage);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
    umn_regcache_flush(rc);  // the region's last reference goes (dereg) unless a hold parks it
    g_released.store(round, std::memory_order_release);
  }
  stop.store(true);
  hitter.join();
  signal(SIGUSR2, SIG_DFL);
  umn_regcache_destroy(rc);
  umn_mm_destroy(mm);

  EXPECT_EQ(dereg_under_holder.load(), 0u) << "gets that returned a region deregistered before they returned";
  EXPECT_EQ(failed.load(), 0u);
  EXPECT_EQ(device->bad_deregs.load(), 0u);
  EXPECT_GE(paused, min_pauses) << "the hit thread was rarely stopped: the race was not exercised";
  EXPECT_GT(gets.load(), 0u);
  delete device;
}

}  // namespace
