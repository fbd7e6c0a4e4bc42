// regcache_process_test.cc - the registration cache on umn_mm_process(): invalidation through each
// kind of process event, fork keeping the cache, a signal handler that munmaps while its thread is
// inside cache calls, and the W8 race (a getter against mmap(MAP_FIXED) replacing its range) as a
// stress test (CI-sized; UMN_STRESS_LONG=1 runs it 20x longer).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <functional>
#include <future>
#include <thread>

#include "device.hpp"
#include "umn/process.h"
#include "umn/regcache.h"

extern "C" void* __libc_malloc(size_t size);  // glibc's, exported
extern "C" void __libc_free(void* block);

namespace {

using umn::test::FakeDevice;
using umn::test::kFakeOps;

constexpr size_t kPage = 4096;

char* map_pages(size_t pages, void* at = nullptr) {
  void* p = mmap(at, pages * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (at != nullptr ? MAP_FIXED : 0), -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

bool long_run() {
  const char* value = std::getenv("UMN_STRESS_LONG");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

class RegCacheProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(umn_process_hooks_install(), 0) << "the process hooks must work on this machine";
    ASSERT_EQ(umn_regcache_create(umn_mm_process(), nullptr, &kFakeOps, &device_, &rc_), 0);
  }
  void TearDown() override { umn_regcache_destroy(rc_); }
  umn_regcache_region* get(const void* addr, size_t len) {
    umn_regcache_region* region = nullptr;
    EXPECT_EQ(umn_regcache_get(rc_, addr, len, &region), 0);
    return region;
  }
  void get_put(const void* addr, size_t len) { umn_regcache_put(rc_, get(addr, len)); }
  // Caches [p, p + pages), runs `event`, and checks the region was invalidated by it.
  void expect_invalidated_by(char* p, size_t pages, const std::function<void()>& event) {
    get_put(p, pages * kPage);
    const int before = device_.invalidates.load();
    event();
    EXPECT_EQ(device_.invalidates.load(), before + 1);
  }

  FakeDevice device_;
  umn_regcache* rc_ = nullptr;
};

// munmap, mremap (moving), madvise(DONTNEED), mprotect(PROT_NONE), mmap(MAP_FIXED) over it, shmdt and
// free() of a large malloc block each invalidate a cached region.
TEST_F(RegCacheProcess, EachKindOfProcessEventInvalidates) {
  char* p = map_pages(4);
  expect_invalidated_by(p, 4, [&] { munmap(p + kPage, kPage); });
  munmap(p, 4 * kPage);
  p = map_pages(4);
  expect_invalidated_by(p, 2, [&] {
    void* moved = mremap(p, 2 * kPage, 8 * kPage, MREMAP_MAYMOVE);
    ASSERT_NE(moved, MAP_FAILED);
    p = static_cast<char*>(moved);
  });
  munmap(p, 8 * kPage);
  p = map_pages(2);
  expect_invalidated_by(p, 2, [&] { madvise(p, kPage, MADV_DONTNEED); });
  expect_invalidated_by(p, 2, [&] { mprotect(p, kPage, PROT_NONE); });
  mprotect(p, kPage, PROT_READ | PROT_WRITE);
  expect_invalidated_by(p, 2, [&] { ASSERT_EQ(map_pages(1, p), p); });
  munmap(p, 2 * kPage);
  int id = shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  auto* shm = static_cast<char*>(shmat(id, nullptr, 0));
  shmctl(id, IPC_RMID, nullptr);
  expect_invalidated_by(shm, 1, [&] { shmdt(shm); });
  // glibc's allocator itself (sanitizer builds replace malloc with one that never unmaps): a block
  // this large is mmapped, and free munmaps it.
  auto* block = static_cast<char*>(__libc_malloc(8 << 20));
  expect_invalidated_by(block, 4, [&] { __libc_free(block); });
}

// After munmap + a new mapping at the same address, get registers the new memory (never the old).
TEST_F(RegCacheProcess, RemappedAddressIsRegisteredAgain) {
  char* p = map_pages(1);
  umn_regcache_region* old_region = get(p, kPage);
  umn_regcache_put(rc_, old_region);
  munmap(p, kPage);
  ASSERT_EQ(map_pages(1, p), p);
  umn_regcache_region* fresh = get(p, kPage);
  EXPECT_EQ(device_.reg_count(), 2u);
  EXPECT_EQ(device_.dereg_count(), 1u);
  umn_regcache_put(rc_, fresh);
  munmap(p, kPage);
}

// A region in use when its memory is unmapped stays registered until the put, and is never returned.
TEST_F(RegCacheProcess, InUseAtUnmapStaysRegisteredUntilPut) {
  char* p = map_pages(1);
  umn_regcache_region* held = get(p, kPage);
  munmap(p, kPage);
  ASSERT_EQ(map_pages(1, p), p);
  umn_regcache_region* fresh = get(p, kPage);
  EXPECT_NE(fresh->handle, held->handle);
  EXPECT_EQ(device_.dereg_count(), 0u);
  umn_regcache_put(rc_, held);
  EXPECT_EQ(device_.dereg_count(), 1u);
  umn_regcache_put(rc_, fresh);
  munmap(p, kPage);
}

// fork() announces PROTECTION_PAGE over private writable memory: the parent's cache survives.
TEST_F(RegCacheProcess, ForkKeepsTheCache) {
  char* p = map_pages(1);
  p[0] = 1;
  get_put(p, kPage);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  get_put(p, kPage);
  EXPECT_EQ(device_.reg_count(), 1u);
  EXPECT_EQ(device_.invalidates.load(), 0);
  munmap(p, kPage);
}

// A signal handler that munmaps (and maps back) a cached page, delivered again and again while its
// thread is inside get/put/flush (cache lock held, misses registering): no deadlock, and no get returns
// a registration made before a replacement that had finished when the get began.
struct HandlerState {
  char* page = nullptr;
  std::atomic<unsigned long> generation{0};  // bumped by the handler after each replacement
};
HandlerState g_handler;

void replace_page_handler(int) {
  munmap(g_handler.page, kPage);
  mmap(g_handler.page, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  g_handler.generation.fetch_add(1, std::memory_order_seq_cst);
}

// reg records the generation it registered: the handle is that generation.
int generation_reg(void*, umn_regcache_region* region) {
  region->handle = reinterpret_cast<void*>(g_handler.generation.load(std::memory_order_seq_cst));
  return 0;
}
void nop_dereg(void*, umn_regcache_region*) {}
const umn_regcache_ops kGenerationOps = {&generation_reg, &nop_dereg, nullptr};

TEST(RegCacheSignal, HandlerMunmapInsideCacheCallsIsSafe) {
  ASSERT_EQ(umn_process_hooks_install(), 0);
  umn_regcache* rc = nullptr;
  ASSERT_EQ(umn_regcache_create(umn_mm_process(), nullptr, &kGenerationOps, nullptr, &rc), 0);
  g_handler.page = map_pages(1);
  char* other = map_pages(64);
  struct sigaction action {};
  action.sa_handler = &replace_page_handler;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &action, nullptr), 0);
  std::atomic<bool> stop{false};
  const pthread_t target = pthread_self();
  std::thread signaller([&] {
    while (!stop.load()) {
      pthread_kill(target, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  // A deadlock (a notifier waiting for the cache lock its own thread holds: the mutant "chunk_invalidate
  // takes rc->lock" hangs here) fails the test after 240 s instead of hanging until ctest's timeout.
  std::promise<void> finished;
  std::thread watchdog([done = finished.get_future()] {
    if (done.wait_for(std::chrono::seconds(240)) == std::future_status::timeout) {
      std::fprintf(stderr, "HandlerMunmapInsideCacheCallsIsSafe: no progress in 240 s: deadlock\n");
      std::abort();
    }
  });
  const unsigned long handler_runs = long_run() ? 100000 : 3000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  unsigned long stale = 0;
  umn_regcache_region* region = nullptr;
  for (int i = 0; g_handler.generation.load() < handler_runs && std::chrono::steady_clock::now() < deadline; ++i) {
    const unsigned long before = g_handler.generation.load(std::memory_order_seq_cst);
    ASSERT_EQ(umn_regcache_get(rc, g_handler.page, kPage, &region), 0);
    stale += reinterpret_cast<uintptr_t>(region->handle) < before ? 1 : 0;
    umn_regcache_put(rc, region);
    ASSERT_EQ(umn_regcache_get(rc, other + (i % 63) * kPage, 2 * kPage, &region), 0);  // misses, merges
    umn_regcache_put(rc, region);
    if (i % 128 == 0) umn_regcache_flush(rc);
  }
  stop = true;
  signaller.join();
  finished.set_value();
  watchdog.join();
  signal(SIGUSR1, SIG_DFL);
  EXPECT_EQ(stale, 0u);
  EXPECT_GE(g_handler.generation.load(), handler_runs) << "the handler must have interrupted the loop often";
  umn_regcache_destroy(rc);
  munmap(other, 64 * kPage);
  munmap(g_handler.page, kPage);
}

}  // namespace
