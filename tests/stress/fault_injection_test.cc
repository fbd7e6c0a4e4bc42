// fault_injection_test.cc - faults injected at the test level (ops callbacks, a failing allocator,
// signals, fork) while umn runs; each test asserts that nothing leaks (ASan), hangs (a watchdog aborts
// after 60 s) or goes stale (a version-checking mirror of the pages).
#define UMN_FAULT_INJECTION_DEFINE_ALLOCATOR
#include "support/fault_injection.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <memory>
#include <functional>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "umn/umn.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr unsigned kWatchdogSeconds = 60;

bool LongRun() { return std::getenv("UMN_STRESS_LONG") != nullptr; }

// ---------------------------------------------------------------------------------------------------
// A device whose first pass can be told to fail and whose finish records come from a tiny pool.
struct Device {
  umn_interval_notifier notifier;  // first member
  std::mutex lock;
  int index = 0;
  int fail_when_nonblock = 0;               // 1: the first pass fails on non-blockable ranges
  umn_interval_notifier_finish pool[1];     // one record: concurrent invalidations run out
  bool pool_busy = false;
  std::atomic<int> first_passes{0}, finishes{0}, fallbacks{0}, handed{0};
  std::vector<int>* order = nullptr;        // call log (single-threaded tests)
  uint64_t mapped_version = 0;              // 0: nothing mapped, else page version + 1
  Device() { std::memset(&notifier, 0, sizeof(notifier)); }
};
Device* dev_of(umn_interval_notifier* sub) { return reinterpret_cast<Device*>(sub); }

bool two_pass_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                    umn_interval_notifier_finish** finish) {
  Device* dev = dev_of(sub);
  dev->first_passes++;
  if (dev->order != nullptr) dev->order->push_back(dev->index);
  if (!umn_notifier_range_blockable(range) && dev->fail_when_nonblock) return false;
  std::lock_guard guard(dev->lock);
  umn_interval_set_seq(sub, cur_seq);
  if (dev->pool_busy) {
    dev->fallbacks++;          // out of finish records: do everything now
    dev->mapped_version = 0;
    return true;
  }
  dev->pool_busy = true;
  dev->handed++;
  *finish = &dev->pool[0];
  return true;
}
void two_pass_finish(umn_interval_notifier_finish* finish) {
  Device* dev = dev_of(finish->notifier);
  std::lock_guard guard(dev->lock);
  dev->mapped_version = 0;
  dev->pool_busy = false;
  dev->finishes++;
  if (dev->order != nullptr) dev->order->push_back(100 + dev->index);
}
const umn_interval_notifier_ops kTwoPass = {nullptr, two_pass_start, two_pass_finish};

// ---------------------------------------------------------------------------------------------------
// Allocation failures: every nothrow allocation umn makes fails in turn; each call reports -ENOMEM /
// NULL, leaks nothing (ASan) and leaves the address space usable once the allocator recovers.
TEST(FaultInjection, EveryNothrowAllocationFailureIsReportedAndRecovered) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  long injected = 0;
  for (long k = 0; k < 8; ++k) {
    umn_test::fail_nothrow_allocations(k, 1);
    umn_mm* mm = umn_mm_create();
    Device dev;
    int err = mm == nullptr ? -ENOMEM : umn_interval_notifier_insert(&dev.notifier, mm, 0, kPage, &kTwoPass);
    umn_test::disarm_allocator();
    injected += umn_test::nothrow_failed().load();
    if (mm == nullptr) {
      EXPECT_EQ(errno, ENOMEM);
      continue;
    }
    EXPECT_TRUE(err == 0 || err == -ENOMEM) << err;
    if (err != 0) {
      EXPECT_GE(umn_test::nothrow_failed().load(), 1);
      ASSERT_EQ(umn_interval_notifier_insert(&dev.notifier, mm, 0, kPage, &kTwoPass), 0);  // recovers
    }
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
    EXPECT_EQ(dev.first_passes.load(), 1);
    EXPECT_EQ(dev.finishes.load(), 1);
    umn_interval_notifier_remove(&dev.notifier);
    umn_mm_destroy(mm);
  }
  EXPECT_GE(injected, 2) << "the failing allocator never fired: umn allocates differently now";
}

// get() whose alloc_notifier fails (returns NULL): the error pointer -ENOMEM, nothing registered, a later
// get works.
std::atomic<int> g_allocs_to_fail{0};
std::atomic<int> g_live_classic{0};
umn_notifier* failing_alloc(umn_mm*) {
  if (g_allocs_to_fail.fetch_sub(1) > 0) return nullptr;
  auto* n = new umn_notifier;
  std::memset(n, 0, sizeof(*n));
  g_live_classic++;
  return n;
}
void counted_free(umn_notifier* n) {
  g_live_classic--;
  delete n;
}
const umn_notifier_ops kGetOps = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                  failing_alloc, counted_free};

TEST(FaultInjection, AllocNotifierFailureLeavesNothingRegistered) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  umn_mm* mm = umn_mm_create();
  umn_notifier probe;
  std::memset(&probe, 0, sizeof(probe));
  probe.ops = &kGetOps;
  ASSERT_EQ(umn_notifier_register(&probe, mm), 0);
  umn_notifier_unregister(&probe, mm);
  g_allocs_to_fail = 2;
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kGetOps, mm)), -ENOMEM);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kGetOps, mm)), -ENOMEM);
  umn_notifier* sub = umn_notifier_get(&kGetOps, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  EXPECT_EQ(umn_notifier_get(&kGetOps, mm), sub);
  umn_notifier_put(sub);
  umn_notifier_put(sub);
  umn_notifier_synchronize();
  EXPECT_EQ(g_live_classic.load(), 0) << "free_notifier did not run: leak";
  umn_mm_destroy(mm);
}

// ---------------------------------------------------------------------------------------------------
// Non-blockable first pass failing at position k of N: -EAGAIN, finishes of positions < k ran (after
// all first passes), nothing after k was called, and the address space is idle again (no hang).
TEST(FaultInjection, NonblockFailureAtEveryPositionUnwindsCompletely) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  constexpr int kN = 5;
  for (int k = 0; k < kN; ++k) {
    umn_mm* mm = umn_mm_create();
    std::vector<int> order;
    Device devs[kN];
    for (int i = 0; i < kN; ++i) {
      devs[i].index = i;
      devs[i].order = &order;
      devs[i].fail_when_nonblock = i == k;
      ASSERT_EQ(umn_interval_notifier_insert(&devs[i].notifier, mm, i * kPage, kPage, &kTwoPass), 0);
    }
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, 0, kN * kPage);
    EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EAGAIN);
    std::vector<int> expected;
    for (int i = 0; i <= k; ++i) expected.push_back(i);
    for (int i = 0; i < k; ++i) expected.push_back(100 + i);
    EXPECT_EQ(order, expected) << "k = " << k;
    for (int i = 0; i < kN; ++i) {
      // No epoch left open: read_begin returns at once, remove does not wait.
      (void)umn_interval_read_begin(&devs[i].notifier);
      EXPECT_FALSE(devs[i].pool_busy) << "record of position " << i << " never finished";
    }
    for (Device& d : devs) umn_interval_notifier_remove(&d.notifier);
    umn_mm_destroy(mm);
  }
}

// ---------------------------------------------------------------------------------------------------
// Many threads invalidate one two-pass notifier whose pool has a single finish record: most calls run
// out and take the synchronous fallback. Every record handed out is finished exactly once, and a
// faulting thread never keeps a translation of a page version an ended invalidation replaced.
TEST(FaultInjection, TwoPassDriverOutOfFinishRecordsStaysCorrect) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  umn_mm* mm = umn_mm_create();
  Device dev;
  ASSERT_EQ(umn_interval_notifier_insert(&dev.notifier, mm, 0, kPage, &kTwoPass), 0);
  std::atomic<uint64_t> page_version{1};
  std::atomic<bool> stop{false};
  std::atomic<long> stale{0};
  const int rounds = LongRun() ? 200000 : 5000;
  std::thread faulter([&] {
    while (!stop) {
      const unsigned long seq = umn_interval_read_begin(&dev.notifier);
      const uint64_t version = page_version.load();
      std::lock_guard guard(dev.lock);
      if (!umn_interval_read_retry(&dev.notifier, seq)) dev.mapped_version = version + 1;
    }
  });
  std::vector<std::thread> invalidators;
  for (int t = 0; t < 3; ++t) {
    invalidators.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        umn_notifier_range range;
        umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
        umn_notifier_invalidate_range_start(&range);
        const uint64_t written = page_version.fetch_add(1) + 1;
        umn_notifier_invalidate_range_end(&range);
        std::lock_guard guard(dev.lock);
        if (dev.mapped_version != 0 && dev.mapped_version - 1 < written) stale++;
      }
    });
  }
  for (std::thread& t : invalidators) t.join();
  stop = true;
  faulter.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_EQ(dev.handed.load(), dev.finishes.load()) << "a finish record was lost or finished twice";
  EXPECT_EQ(dev.first_passes.load(), 3 * rounds);
  EXPECT_EQ(dev.handed.load() + dev.fallbacks.load(), dev.first_passes.load());
  umn_interval_notifier_remove(&dev.notifier);
  umn_mm_destroy(mm);
}

// ---------------------------------------------------------------------------------------------------
// Signals delivered to the invalidating thread, to waiting readers and to a waiting remove while
// callbacks run (and sleep): no wait is cut short (no stale), none hangs.
std::atomic<long> g_signals{0};
void on_signal(int) { g_signals++; }

TEST(FaultInjection, SignalsDuringCallbacksAndWaitsAreHarmless) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: interrupted sleeps return EINTR
  struct sigaction old {};
  sigaction(SIGUSR1, &sa, &old);
  umn_mm* mm = umn_mm_create();
  struct Sleepy {
    umn_interval_notifier notifier;
    std::mutex lock;
    uint64_t mapped_version = 0;
  } dev;
  std::memset(&dev.notifier, 0, sizeof(dev.notifier));
  static const umn_interval_notifier_ops ops = {
      [](umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
        auto* d = reinterpret_cast<Sleepy*>(sub);
        {
          std::lock_guard guard(d->lock);
          umn_interval_set_seq(sub, cur_seq);
          d->mapped_version = 0;
        }
        struct timespec t = {0, 200 * 1000};
        nanosleep(&t, nullptr);  // interrupted by the signals: the callback must cope, umn too
        return true;
      },
      nullptr, nullptr};
  ASSERT_EQ(umn_interval_notifier_insert(&dev.notifier, mm, 0, kPage, &ops), 0);
  std::atomic<uint64_t> page_version{1};
  std::atomic<bool> stop{false};
  std::atomic<long> stale{0};
  const int rounds = LongRun() ? 20000 : 1000;
  std::vector<pthread_t> targets;
  std::mutex targets_lock;
  auto enlist = [&] {
    std::lock_guard guard(targets_lock);
    targets.push_back(pthread_self());
  };
  std::thread reader([&] {
    enlist();
    while (!stop) {
      const unsigned long seq = umn_interval_read_begin(&dev.notifier);
      const uint64_t version = page_version.load();
      std::lock_guard guard(dev.lock);
      if (!umn_interval_read_retry(&dev.notifier, seq)) dev.mapped_version = version + 1;
    }
  });
  std::thread churn([&] {  // insert/remove a second notifier over the same page: removes wait for epochs
    enlist();
    struct Other { umn_interval_notifier notifier; } other;
    static const umn_interval_notifier_ops other_ops = {
        [](umn_interval_notifier* s, const umn_notifier_range*, unsigned long seq) {
          umn_interval_set_seq(s, seq);
          return true;
        },
        nullptr, nullptr};
    while (!stop) {
      std::memset(&other, 0, sizeof(other));
      if (umn_interval_notifier_insert(&other.notifier, mm, 0, kPage, &other_ops) == 0)
        umn_interval_notifier_remove(&other.notifier);
    }
  });
  std::thread invalidator([&] {
    enlist();
    for (int i = 0; i < rounds; ++i) {
      umn_notifier_range range;
      umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
      umn_notifier_invalidate_range_start(&range);
      const uint64_t written = page_version.fetch_add(1) + 1;
      umn_notifier_invalidate_range_end(&range);
      std::lock_guard guard(dev.lock);
      if (dev.mapped_version != 0 && dev.mapped_version - 1 < written) stale++;
    }
    stop = true;
  });
  std::thread signaller([&] {
    while (!stop) {
      {
        std::lock_guard guard(targets_lock);
        for (pthread_t t : targets) pthread_kill(t, SIGUSR1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  invalidator.join();
  signaller.join();
  reader.join();
  churn.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GT(g_signals.load(), 0);
  umn_interval_notifier_remove(&dev.notifier);
  umn_mm_destroy(mm);
  sigaction(SIGUSR1, &old, nullptr);
}

// ---------------------------------------------------------------------------------------------------
// fork() from inside an invalidation callback, with the epoch open and other threads possibly holding
// umn's locks: the child (which only has this thread) creates and uses its own address space and exits
// without hanging; the parent finishes the invalidation and continues.
TEST(FaultInjection, ForkDuringInvalidationNeitherHangsChildNorParent) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  umn_mm* mm = umn_mm_create();
  struct Forking {
    umn_interval_notifier notifier;
    pid_t child = -1;
  } dev;
  std::memset(&dev.notifier, 0, sizeof(dev.notifier));
  static const umn_interval_notifier_ops ops = {
      [](umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
        umn_interval_set_seq(sub, cur_seq);
        auto* d = reinterpret_cast<Forking*>(sub);
        d->child = fork();
        if (d->child == 0) {
          alarm(20);  // a hang in the child kills it with SIGALRM: the parent sees it
          umn_mm* fresh = umn_mm_create();
          struct { umn_interval_notifier notifier; } n;
          std::memset(&n, 0, sizeof(n));
          static const umn_interval_notifier_ops child_ops = {
              [](umn_interval_notifier* s, const umn_notifier_range*, unsigned long seq) {
                umn_interval_set_seq(s, seq);
                return true;
              },
              nullptr, nullptr};
          int ok = fresh != nullptr && umn_interval_notifier_insert(&n.notifier, fresh, 0, kPage, &child_ops) == 0;
          if (ok) {
            umn_notifier_range r;
            umn_notifier_range_init(&r, UMN_NOTIFY_UNMAP, 0, fresh, 0, kPage);
            umn_notifier_invalidate_range_start(&r);
            umn_notifier_invalidate_range_end(&r);
            (void)umn_interval_read_begin(&n.notifier);
            umn_interval_notifier_remove(&n.notifier);
            umn_mm_destroy(fresh);
          }
          _exit(ok ? 0 : 3);
        }
        return true;
      },
      nullptr, nullptr};
  ASSERT_EQ(umn_interval_notifier_insert(&dev.notifier, mm, 0, kPage, &ops), 0);
  // Another thread keeps umn busy on a second address space meanwhile (its locks may be held at fork).
  std::atomic<bool> stop{false};
  umn_mm* busy = umn_mm_create();
  std::thread noise([&] {
    struct { umn_interval_notifier notifier; } n;
    static const umn_interval_notifier_ops noise_ops = {
        [](umn_interval_notifier* s, const umn_notifier_range*, unsigned long seq) {
          umn_interval_set_seq(s, seq);
          return true;
        },
        nullptr, nullptr};
    while (!stop) {
      std::memset(&n, 0, sizeof(n));
      if (umn_interval_notifier_insert(&n.notifier, busy, 0, kPage, &noise_ops) != 0) continue;
      umn_notifier_range r;
      umn_notifier_range_init(&r, UMN_NOTIFY_UNMAP, 0, busy, 0, kPage);
      umn_notifier_invalidate_range_start(&r);
      umn_notifier_invalidate_range_end(&r);
      umn_interval_notifier_remove(&n.notifier);
    }
  });
  const int forks = LongRun() ? 200 : 20;
  for (int i = 0; i < forks; ++i) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_PROTECTION_PAGE, 0, mm, 0, kPage);
    umn_notifier_invalidate_range_start(&range);
    ASSERT_GT(dev.child, 0);
    umn_notifier_invalidate_range_end(&range);
    int status = 0;
    ASSERT_EQ(waitpid(dev.child, &status, 0), dev.child);
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status) << " (14 = hung)";
    EXPECT_EQ(WEXITSTATUS(status), 0);
    (void)umn_interval_read_begin(&dev.notifier);  // the parent's epoch closed: no wait
  }
  stop = true;
  noise.join();
  umn_interval_notifier_remove(&dev.notifier);
  umn_mm_destroy(mm);
  umn_mm_destroy(busy);
}

// ---------------------------------------------------------------------------------------------------
// fork() while another thread sleeps inside a classic callback (an RCU read-side section) and a free is
// queued for liburcu's call_rcu thread: the child registers, unregisters (a grace period), gets, puts
// and synchronizes (queued frees, the parent's included: the child owns copies) on its own address
// space without hanging or leaking; the parent's ranges, registration and frees carry on.
umn_notifier* fork_alloc(umn_mm*) {
  auto* n = new umn_notifier;
  std::memset(n, 0, sizeof(*n));
  g_live_classic++;
  return n;
}

// Waits up to `seconds` for the child; kills it if it hangs. Return: its wait status, or -1 if it hung.
int wait_or_kill(pid_t child, int seconds) {
  int status = 0;
  for (int i = 0; i < seconds * 100; ++i) {
    if (waitpid(child, &status, WNOHANG) == child) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(child, SIGKILL);  // it may block every signal (liburcu does in synchronize_rcu): no alarm()
  waitpid(child, &status, 0);
  return -1;
}

TEST(FaultInjection, ForkWhileClassicCallbackRunsLeavesChildRcuUsable) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  static std::atomic<bool> in_callback{false};
  static const umn_notifier_ops sleepy = {
      nullptr, nullptr, nullptr, nullptr,
      [](umn_notifier*, const umn_notifier_range*) {
        in_callback = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return 0;
      },
      nullptr, nullptr, nullptr, nullptr};
  static const umn_notifier_ops child_ops = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                             nullptr, fork_alloc,  counted_free};
  umn_mm* mm = umn_mm_create();
  umn_notifier parent_sub;
  std::memset(&parent_sub, 0, sizeof(parent_sub));
  parent_sub.ops = &sleepy;
  ASSERT_EQ(umn_notifier_register(&parent_sub, mm), 0);
  const int forks = LongRun() ? 100 : 10;
  for (int i = 0; i < forks; ++i) {
    in_callback = false;
    std::thread invalidator([mm] {
      umn_notifier_range range;
      umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
      umn_notifier_invalidate_range_start(&range);  // sleeps in `sleepy`, inside the read-side section
      umn_notifier_invalidate_range_end(&range);
    });
    while (!in_callback) std::this_thread::yield();
    umn_mm* other = umn_mm_create();  // a free queued for the call_rcu thread at fork time
    umn_notifier* queued = umn_notifier_get(&child_ops, other);
    ASSERT_FALSE(UMN_IS_ERR_OR_NULL(queued));
    umn_notifier_put(queued);
    umn_mm_destroy(other);
    const pid_t child = fork();
    if (child == 0) {
      umn_mm* fresh = umn_mm_create();
      umn_notifier n;
      std::memset(&n, 0, sizeof(n));
      n.ops = &sleepy;  // never called: no range in the child
      int ok = fresh != nullptr && umn_notifier_register(&n, fresh) == 0;
      if (ok) umn_notifier_unregister(&n, fresh);  // a grace period in the child
      umn_notifier* got = ok ? umn_notifier_get(&child_ops, fresh) : nullptr;
      ok = ok && !UMN_IS_ERR_OR_NULL(got);
      if (ok) umn_notifier_put(got);
      umn_notifier_synchronize();  // the child's queued frees run in the child
      ok = ok && g_live_classic.load() == 0;
      umn_mm_destroy(fresh);
      _exit(ok ? 0 : 3);
    }
    ASSERT_GT(child, 0);
    invalidator.join();
    const int status = wait_or_kill(child, 20);
    ASSERT_NE(status, -1) << "fork " << i << ": the child hung in umn (RCU state not prepared for fork)";
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "child: a free_notifier did not run (leak)";
  }
  umn_notifier_unregister(&parent_sub, mm);
  umn_notifier_synchronize();
  EXPECT_EQ(g_live_classic.load(), 0);
  umn_mm_destroy(mm);
}

// ---------------------------------------------------------------------------------------------------
// fork() from inside a classic callback (an RCU read-side section) while another thread's grace period
// waits for that very callback (issue 12 review). The prepare handler cannot quiesce liburcu there (its
// grace-period lock is held by the waiting thread, which waits for this one), so the child inherits the
// lock held by a thread it does not have, and this thread's reader record on that thread's stack. The
// child must still: end the callback, register and unregister (a grace period), get, put and synchronize
// (a call_rcu thread), and its grace periods must wait for the forking thread's later read-side sections:
// a second thread of the child unregisters while the forking thread sleeps in a classic callback, and
// must return only after it.
struct ForkFromCallback {
  static std::atomic<bool> armed, waiter_started;
  static pid_t child;
  static int on_start(umn_notifier*, const umn_notifier_range*) {
    if (!armed.exchange(false)) return 0;
    while (!waiter_started) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the waiter is in its grace period now
    child = fork();
    return 0;
  }
  static std::atomic<int> section;  // 1 while the child's sleepy callback runs, 2 after
  static int sleepy_start(umn_notifier*, const umn_notifier_range*) {
    section = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    section = 2;
    return 0;
  }
};
std::atomic<bool> ForkFromCallback::armed{false}, ForkFromCallback::waiter_started{false};
pid_t ForkFromCallback::child = -1;
std::atomic<int> ForkFromCallback::section{0};

// A thread on a stack of its own (not glibc's stack cache): a child of fork() gets the dead threads'
// cached stacks for its new threads, and ThreadSanitizer then takes a new thread for a dead one whose
// id it still holds ("dup thread with used id"). Threads alive at a fork, and threads created in its
// child, use this.
class OwnStackThread {
 public:
  explicit OwnStackThread(std::function<void()> fn) : fn_(std::move(fn)) {
    stack_ = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack_, kStackBytes);
    started_ = stack_ != MAP_FAILED && pthread_create(&thread_, &attr, &run, this) == 0;
    pthread_attr_destroy(&attr);
  }
  ~OwnStackThread() {
    if (started_) pthread_join(thread_, nullptr);
    if (stack_ != MAP_FAILED) munmap(stack_, kStackBytes);
  }
  OwnStackThread(const OwnStackThread&) = delete;
  OwnStackThread& operator=(const OwnStackThread&) = delete;
  [[nodiscard]] bool started() const { return started_; }

 private:
  static constexpr size_t kStackBytes = 1 << 20;
  static void* run(void* self) {
    static_cast<OwnStackThread*>(self)->fn_();
    return nullptr;
  }
  std::function<void()> fn_;
  void* stack_ = MAP_FAILED;
  pthread_t thread_{};
  bool started_ = false;
};

// The child's side: exit status 0 when every step worked, 4 when a grace period missed a reader.
[[noreturn]] void child_after_fork_from_callback() {
  static const umn_notifier_ops plain = {};
  static const umn_notifier_ops sleepy = {nullptr, nullptr, nullptr, nullptr, &ForkFromCallback::sleepy_start,
                                          nullptr, nullptr, nullptr, nullptr};
  static const umn_notifier_ops gotten = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                          nullptr, fork_alloc, counted_free};
  g_live_classic = 0;
  umn_mm* fresh = umn_mm_create();
  umn_notifier n, slow;
  std::memset(&n, 0, sizeof(n));
  std::memset(&slow, 0, sizeof(slow));
  n.ops = &plain;
  slow.ops = &sleepy;
  bool ok = fresh != nullptr && umn_notifier_register(&n, fresh) == 0 && umn_notifier_register(&slow, fresh) == 0;
  umn_notifier* got = ok ? umn_notifier_get(&gotten, fresh) : nullptr;
  ok = ok && !UMN_IS_ERR_OR_NULL(got);
  if (ok) umn_notifier_put(got);
  umn_notifier_synchronize();  // the put's free runs on the child's call_rcu thread
  ok = ok && g_live_classic.load() == 0;
  std::atomic<int> section_at_return{-1};
  if (ok) {
    OwnStackThread unregisterer([&] {
      while (ForkFromCallback::section == 0) std::this_thread::yield();
      umn_notifier_unregister(&n, fresh);  // its grace period must wait for this thread's section
      section_at_return = ForkFromCallback::section.load();
    });
    ok = unregisterer.started();
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, fresh, 0, kPage);
    umn_notifier_invalidate_range_start(&range);  // sleeps 100 ms in a read-side section (the forking thread's)
    umn_notifier_invalidate_range_end(&range);
  }
  if (ok) umn_notifier_unregister(&slow, fresh);
  umn_mm_destroy(fresh);
  syscall(SYS_exit_group, !ok ? 3 : section_at_return != 2 ? 4 : 0);
  _exit(3);  // not reached
}

TEST(FaultInjection, ForkFromClassicCallbackWhileAGracePeriodWaitsForItLeavesChildRcuUsableRegression) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  static const umn_notifier_ops forking = {nullptr, nullptr, nullptr, nullptr, &ForkFromCallback::on_start,
                                           nullptr, nullptr, nullptr, nullptr};
  umn_mm* mm = umn_mm_create();
  umn_notifier sub;
  std::memset(&sub, 0, sizeof(sub));
  sub.ops = &forking;
  ASSERT_EQ(umn_notifier_register(&sub, mm), 0);
  const int forks = LongRun() ? 50 : 5;
  for (int i = 0; i < forks; ++i) {
    ForkFromCallback::waiter_started = false;
    ForkFromCallback::child = -1;
    ForkFromCallback::armed = true;
    auto waiter = std::make_unique<OwnStackThread>([] {  // a grace period that begins while the callback runs
      umn_mm* other = umn_mm_create();
      umn_notifier n;
      std::memset(&n, 0, sizeof(n));
      static const umn_notifier_ops plain = {};
      n.ops = &plain;
      const bool registered = umn_notifier_register(&n, other) == 0;
      ForkFromCallback::waiter_started = true;
      if (registered) umn_notifier_unregister(&n, other);
      umn_mm_destroy(other);
    });
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
    umn_notifier_invalidate_range_start(&range);  // forks in on_start
    umn_notifier_invalidate_range_end(&range);
    if (ForkFromCallback::child == 0) child_after_fork_from_callback();
    waiter.reset();
    ASSERT_GT(ForkFromCallback::child, 0);
    const int status = wait_or_kill(ForkFromCallback::child, 20);
    ASSERT_NE(status, -1) << "fork " << i << ": the child hung in umn (liburcu's grace-period lock held)";
    ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
    ASSERT_EQ(WEXITSTATUS(status), 0) << "fork " << i << (WEXITSTATUS(status) == 4 ? ": a grace period did not wait for a reader" : ": a step failed");
  }
  umn_notifier_unregister(&sub, mm);
  umn_mm_destroy(mm);
}

// ---------------------------------------------------------------------------------------------------
// fork() from inside free_notifier (a call() callback, on liburcu's call_rcu thread) while another
// thread's grace period holds liburcu's grace-period lock, waiting for a third thread asleep in a classic
// callback (issue 12 review, the class of callbacks that fork). The call_rcu threads cannot be paused
// from there (this one would wait for itself), but the grace-period lock must still be taken in prepare
// (the fork waits for that grace period), or the child inherits it held. The child, which stays a
// call_rcu thread inside free_notifier, registers and unregisters (a grace period) and inserts,
// invalidates and removes, under a watchdog.
struct ForkFromFree {
  static std::atomic<bool> armed, in_free, grace_period_waits;
  static std::atomic<pid_t> child;
};
std::atomic<bool> ForkFromFree::armed{false}, ForkFromFree::in_free{false}, ForkFromFree::grace_period_waits{false};
std::atomic<pid_t> ForkFromFree::child{-1};

[[noreturn]] void child_of_free_notifier() {
  static const umn_notifier_ops plain = {};
  umn_mm* fresh = umn_mm_create();
  umn_notifier n;
  std::memset(&n, 0, sizeof(n));
  n.ops = &plain;
  bool ok = fresh != nullptr && umn_notifier_register(&n, fresh) == 0;
  if (ok) umn_notifier_unregister(&n, fresh);  // a grace period in the child
  Device dev;
  static const umn_interval_notifier_ops single = {
      [](umn_interval_notifier* sub, const umn_notifier_range*, unsigned long seq) {
        umn_interval_set_seq(sub, seq);
        return true;
      },
      nullptr, nullptr};
  ok = ok && umn_interval_notifier_insert(&dev.notifier, fresh, 0, kPage, &single) == 0;
  if (ok) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, fresh, 0, kPage);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
    umn_interval_notifier_remove(&dev.notifier);
  }
  if (fresh != nullptr) umn_mm_destroy(fresh);
  syscall(SYS_exit_group, ok ? 0 : 3);
  _exit(3);  // not reached
}

void forking_free(umn_notifier* n) {
  if (ForkFromFree::armed.exchange(false)) {
    ForkFromFree::in_free = true;
    while (!ForkFromFree::grace_period_waits) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the grace period holds its lock now
    const pid_t pid = fork();
    if (pid == 0) child_of_free_notifier();
    ForkFromFree::child = pid;
  }
  counted_free(n);
}

TEST(FaultInjection, ForkFromFreeNotifierWhileAGracePeriodHoldsItsLockLeavesChildRcuUsableRegression) {
  umn_test::Watchdog watchdog(kWatchdogSeconds);
  static const umn_notifier_ops gotten = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                          nullptr, fork_alloc, forking_free};
  static std::atomic<bool> in_section{false};
  static const umn_notifier_ops sleepy = {
      nullptr, nullptr, nullptr, nullptr,
      [](umn_notifier*, const umn_notifier_range*) {
        in_section = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        return 0;
      },
      nullptr, nullptr, nullptr, nullptr};
  umn_mm* mm = umn_mm_create();
  umn_mm* slow_mm = umn_mm_create();
  umn_notifier slow;
  std::memset(&slow, 0, sizeof(slow));
  slow.ops = &sleepy;
  ASSERT_EQ(umn_notifier_register(&slow, slow_mm), 0);
  const int forks = LongRun() ? 50 : 5;
  for (int i = 0; i < forks; ++i) {
    ForkFromFree::child = -1;
    ForkFromFree::in_free = false;
    ForkFromFree::grace_period_waits = false;
    in_section = false;
    ForkFromFree::armed = true;
    umn_notifier* sub = umn_notifier_get(&gotten, mm);
    ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
    umn_notifier_put(sub);  // free_notifier runs on the call_rcu thread and waits there
    while (!ForkFromFree::in_free) std::this_thread::yield();
    auto reader = std::make_unique<OwnStackThread>([slow_mm] {  // asleep in a read-side section
      umn_notifier_range range;
      umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, slow_mm, 0, kPage);
      umn_notifier_invalidate_range_start(&range);
      umn_notifier_invalidate_range_end(&range);
    });
    while (!in_section) std::this_thread::yield();
    auto waiter = std::make_unique<OwnStackThread>([] {  // its grace period waits for the reader
      umn_mm* other = umn_mm_create();
      static const umn_notifier_ops plain = {};
      umn_notifier n;
      std::memset(&n, 0, sizeof(n));
      n.ops = &plain;
      const bool registered = umn_notifier_register(&n, other) == 0;
      ForkFromFree::grace_period_waits = true;
      if (registered) umn_notifier_unregister(&n, other);
      umn_mm_destroy(other);
    });
    umn_notifier_synchronize();  // free_notifier (and the fork in it) has run
    reader.reset();
    waiter.reset();
    const pid_t child = ForkFromFree::child;
    ASSERT_GT(child, 0);
    const int status = wait_or_kill(child, 20);
    ASSERT_NE(status, -1) << "fork " << i << ": the child hung (liburcu's grace-period lock held)";
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fork " << i << ": status " << status;
  }
  umn_notifier_unregister(&slow, slow_mm);
  umn_mm_destroy(slow_mm);
  umn_mm_destroy(mm);
}

}  // namespace
