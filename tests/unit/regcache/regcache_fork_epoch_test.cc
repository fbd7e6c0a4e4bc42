// regcache_fork_epoch_test.cc - the cache's epoch read side across fork(): a fork child only has the
// forking thread, so the reader records of the parent's other threads must not hold its reclamation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "device.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"
#include "users/regcache/epoch.hpp"

namespace {

using umn::test::FakeDevice;
using umn::test::kFakeOps;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 32;  // a simulated address

// The child's whole life: a cache on a simulated address space that misses (tables retired), flushes
// and is destroyed; destroy waits for every retired object to be unreachable. Exit 0 on success.
[[noreturn]] void child_uses_a_cache() {
  alarm(10);  // a hang ends as SIGALRM, which the parent reports
  umn_mm* mm = umn_mm_create();
  FakeDevice device;
  umn_regcache* rc = nullptr;
  if (umn_regcache_create(mm, nullptr, &kFakeOps, &device, &rc) != 0) _exit(2);
  for (uint64_t i = 0; i < 300; ++i) {  // over kRetireBatch retired tables
    umn_regcache_region* region = nullptr;
    if (umn_regcache_get(rc, reinterpret_cast<const void*>(kBase + 2 * i * kPage), kPage, &region) != 0) _exit(3);
    umn_regcache_put(rc, region);
  }
  umn_regcache_flush(rc);
  umn_regcache_destroy(rc);
  umn_mm_destroy(mm);
  _exit(0);
}

// A thread of the parent is inside a read-side section (as a hit is) when another thread forks: in
// the child that section never ends, since its thread does not exist there.
TEST(RegCacheForkEpoch, ChildOfAForkDuringAnotherThreadsHitCanDestroyItsCache) {
  std::atomic<int> step{0};
  std::thread reader([&] {
    umn::detail::regcache::epoch::read_lock();
    step.store(1);
    while (step.load() != 2) std::this_thread::yield();
    umn::detail::regcache::epoch::read_unlock();
  });
  while (step.load() != 1) std::this_thread::yield();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) child_uses_a_cache();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  step.store(2);
  reader.join();
  EXPECT_TRUE(WIFEXITED(status)) << "child killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                                 << " (SIGALRM: destroy waited forever for the parent's reader)";
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
}

}  // namespace
