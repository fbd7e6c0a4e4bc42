// fork_rcu_test.cc - what a child inherits of the frees (call_rcu) queued before a fork.
//
// Documented behaviour (core/rcu.hpp "fork()", docs/get_put.md, docs/RELIABILITY.md):
//   - a fork outside read-side sections and call() callbacks: the child runs every free queued before it;
//   - a fork from inside a read-side section (a classic callback): the call_rcu thread may have taken a
//     batch off its queue and be waiting for this very section; that batch runs in the parent only and
//     is lost in the child (the notifier and its umn_mm reference leak there). Frees still in the queue
//     run in the child. Nothing runs twice, nothing hangs, the parent frees everything.
// Regression (issue 12 review of d810c91): rcu.cc and docs/get_put.md claimed the child inherits every
// pending free in both cases; this test pins what actually holds.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "umn/umn.h"

namespace {

std::atomic<int> g_live{0};
umn_notifier* counted_alloc(umn_mm*) {
  auto* n = new umn_notifier;
  std::memset(n, 0, sizeof(*n));
  g_live++;
  return n;
}
void counted_free(umn_notifier* n) {
  g_live--;
  delete n;
}
const umn_notifier_ops kGotten = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, counted_alloc, counted_free};

umn_mm* g_mm = nullptr;
umn_mm* g_other = nullptr;  // the gotten notifier's (get waits for ranges in flight on its own mm)
std::atomic<bool> g_armed{false};
pid_t g_child = -1;

int forking_start(umn_notifier*, const umn_notifier_range*) {
  if (!g_armed.exchange(false)) return 0;
  // Another thread puts a gotten notifier now: its free is queued (call_rcu) while this section runs.
  std::thread([] {
    umn_notifier* got = umn_notifier_get(&kGotten, g_other);
    if (!UMN_IS_ERR_OR_NULL(got)) umn_notifier_put(got);
  }).join();
  // Let the call_rcu thread take the batch and block in synchronize_rcu (waiting for this section).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  g_child = fork();
  return 0;
}

// The free is queued while this thread's callback runs, the call_rcu thread given 200 ms to take it
// (then it waits for this section): the child sees it freed once or not at all (never twice, no hang).
TEST(ForkRcu, FreeQueuedBeforeAForkFromAClassicCallbackRunsAtMostOnceInTheChildRegression) {
  static const umn_notifier_ops forking = {nullptr, nullptr, nullptr, nullptr, &forking_start,
                                           nullptr, nullptr, nullptr, nullptr};
  g_mm = umn_mm_create();
  g_other = umn_mm_create();
  ASSERT_NE(g_mm, nullptr);
  umn_notifier sub;
  std::memset(&sub, 0, sizeof(sub));
  sub.ops = &forking;
  ASSERT_EQ(umn_notifier_register(&sub, g_mm), 0);
  g_armed = true;
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, g_mm, 0, 4096);
  umn_notifier_invalidate_range_start(&range);  // forks in forking_start
  umn_notifier_invalidate_range_end(&range);
  if (g_child == 0) {
    // The get/put happened before the fork: one notifier live, its free queued.
    umn_notifier_synchronize();  // waits for every free queued before it that the child inherited
    const int live = g_live.load();
    syscall(SYS_exit_group, live == 0 || live == 1 ? live : 10);
  }
  ASSERT_GT(g_child, 0);
  int status = 0;
  for (int i = 0; i < 2000 && waitpid(g_child, &status, WNOHANG) != g_child; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!WIFEXITED(status) && !WIFSIGNALED(status)) {
    kill(g_child, SIGKILL);
    waitpid(g_child, &status, 0);
    FAIL() << "the child hung";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_LE(WEXITSTATUS(status), 1) << "child: the notifier put before the fork freed more than once";
  if (WEXITSTATUS(status) == 1) std::printf("child: the taken batch was lost (documented)\n");
  umn_notifier_synchronize();
  EXPECT_EQ(g_live.load(), 0);  // the parent frees it
  umn_notifier_unregister(&sub, g_mm);
  umn_mm_destroy(g_mm);
  umn_mm_destroy(g_other);
}

// The same put while another thread sits in a classic callback, but the fork made outside any section:
// prepare pauses the call_rcu thread once its batch ran, and the child frees what is still queued.
std::atomic<int> g_sleeper_in{0};
int sleepy_start(umn_notifier*, const umn_notifier_range*) {
  g_sleeper_in = 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return 0;
}

TEST(ForkRcu, FreeQueuedBeforeAForkOutsideCallbacksRunsInTheChild) {
  static const umn_notifier_ops sleepy = {nullptr, nullptr, nullptr, nullptr, &sleepy_start,
                                          nullptr, nullptr, nullptr, nullptr};
  umn_mm* mm = umn_mm_create();
  umn_mm* other = umn_mm_create();
  umn_notifier sub;
  std::memset(&sub, 0, sizeof(sub));
  sub.ops = &sleepy;
  ASSERT_EQ(umn_notifier_register(&sub, mm), 0);
  std::thread sleeper([&] {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, 4096);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
  });
  while (g_sleeper_in == 0) std::this_thread::yield();
  umn_notifier* got = umn_notifier_get(&kGotten, other);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  umn_notifier_put(got);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the call_rcu thread waits for the sleeper
  pid_t child = fork();
  if (child == 0) {
    umn_notifier_synchronize();
    syscall(SYS_exit_group, g_live.load() == 0 ? 0 : 10 + g_live.load());
  }
  sleeper.join();
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  umn_notifier_synchronize();
  umn_notifier_unregister(&sub, mm);
  umn_mm_destroy(mm);
  umn_mm_destroy(other);
}

}  // namespace
