// lifecycle_test.cc - the process hooks across fork, exec and exit, under threads, from signal handlers
// and from inside their own callbacks; and the promise that they never allocate.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "recorder.hpp"
#include "umn/address_space.hpp"
#include "umn/interval_notifier.hpp"
#include "umn/process.h"
#include "umn/process.hpp"

extern char** environ;

namespace umn::test {
namespace {

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(umn_process_hooks_install(), 0); }
};

int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// fork(): the parent's private writable memory becomes copy-on-write: PROTECTION_PAGE, delivered while
// the pages are still intact; the child keeps working, hooks included.
TEST_F(Lifecycle, ForkNotifiesProtectionPageAndChildWorks) {
  unsigned char* p = map_pages(2);
  Recorder rec;
  ASSERT_EQ(rec.watch(p, 2 * kPage), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child: memory intact, and a hooked munmap of the inherited range works (the notifier is the
    // parent's copy; it is called in the child's copy of the process).
    int before = rec.calls();
    bool ok = p[0] == kPattern && munmap(p, 2 * kPage) == 0 && rec.calls() == before + 1;
    _exit(ok ? 0 : 1);
  }
  EXPECT_EQ(wait_status(child), 0);
  ASSERT_EQ(rec.calls(), 1);
  EXPECT_EQ(rec.records[0].event, UMN_NOTIFY_PROTECTION_PAGE);
  EXPECT_LE(rec.records[0].start, u(p));
  EXPECT_GE(rec.records[0].end, u(p + 2 * kPage));
  EXPECT_EQ(rec.records[0].first, kPattern);
  rec.unwatch();
  munmap(p, 2 * kPage);
}

// Read-only and shared memory do not become copy-on-write: no fork event for them.
TEST_F(Lifecycle, ForkDoesNotNotifySharedOrReadOnlyMemory) {
  // The fork path tracks 64 runs of private writable mappings; beyond that the last run is extended
  // over the rest (a documented over-approximation), which sanitizer runtimes' many mappings trigger.
  FILE* maps = fopen("/proc/self/maps", "r");
  int runs = 0;
  char line[512], perms[8];
  while (maps != nullptr && fgets(line, sizeof(line), maps) != nullptr)
    if (sscanf(line, "%*s %7s", perms) == 1 && perms[1] == 'w' && perms[3] == 'p') runs++;
  if (maps != nullptr) fclose(maps);
  if (runs > 60) GTEST_SKIP() << runs << " private writable mappings: more than the fork path tracks separately";
  unsigned char* shared = map_pages(1, MAP_SHARED | MAP_ANONYMOUS);
  unsigned char* readonly = map_pages(1);
  ASSERT_EQ(mprotect(readonly, kPage, PROT_READ), 0);
  Recorder rec_shared, rec_readonly;
  ASSERT_EQ(rec_shared.watch(shared, kPage), 0);
  ASSERT_EQ(rec_readonly.watch(readonly, kPage), 0);
  pid_t child = fork();
  if (child == 0) _exit(0);
  EXPECT_EQ(wait_status(child), 0);
  EXPECT_EQ(rec_shared.calls(), 0);
  EXPECT_EQ(rec_readonly.calls(), 0);
  rec_shared.unwatch();
  rec_readonly.unwatch();
  munmap(shared, kPage);
  munmap(readonly, kPage);
}

// A child that execs works: the patches die with the old image (nothing inherited is left dangling).
TEST_F(Lifecycle, ExecedChildWorks) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  EXPECT_EQ(wait_status(child), 0);
  pid_t spawned;
  char arg0[] = "true";
  char* argv[] = {arg0, nullptr};
  ASSERT_EQ(posix_spawn(&spawned, "/bin/true", nullptr, nullptr, argv, environ), 0);
  EXPECT_EQ(wait_status(spawned), 0);
  EXPECT_EQ(system("/bin/true"), 0);
}

// Process exit delivers RELEASE (after the program's own atexit handlers and static destructors).
TEST_F(Lifecycle, ExitDeliversRelease) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    static int out;
    out = fds[1];
    static umn_interval_notifier notifier{};
    static const umn_interval_notifier_ops ops = {
        [](umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long seq) {
          if (range->event == UMN_NOTIFY_RELEASE) (void)!write(out, "R", 1);
          umn_interval_set_seq(sub, seq);
          return true;
        },
        nullptr, nullptr};
    static unsigned char page[4096];
    if (umn_interval_notifier_insert(&notifier, umn_mm_process(), u(page), sizeof(page), &ops) != 0) _exit(2);
    exit(0);
  }
  close(fds[1]);
  char got = 0;
  ASSERT_EQ(read(fds[0], &got, 1), 1);
  EXPECT_EQ(got, 'R');
  close(fds[0]);
  EXPECT_EQ(wait_status(child), 0);
}

// The classic notifier of ExitDoesNotWaitForeverForAThreadAsleepInACallback: its range start on the
// watched page announces itself on a pipe and then sleeps for good.
int g_asleep_fd = -1;
uint64_t g_asleep_page = 0;
std::atomic<bool> g_asleep{false};
int sleep_in_start(umn_notifier*, const umn_notifier_range* range) {
  if (range->start > g_asleep_page || range->end <= g_asleep_page) return 0;
  g_asleep = true;
  (void)!write(g_asleep_fd, "S", 1);
  for (;;) pause();
}

// Registers a classic notifier on umn_mm_process() whose start sleeps forever, has another thread's
// munmap enter it (writes 'S' to fd then), and calls exit(0).
[[noreturn]] void exit_with_a_thread_asleep(int fd) {
  g_asleep_fd = fd;
  static umn_notifier_ops ops{};  // every other op NULL (a partial designated list warns)
  ops.invalidate_range_start = &sleep_in_start;
  static umn_notifier sub{};
  sub.ops = &ops;
  unsigned char* page = map_pages(1);
  g_asleep_page = u(page);
  if (umn_notifier_register(&sub, umn_mm_process()) != 0) _exit(2);
  std::thread([page] { munmap(page, kPage); }).detach();
  while (!g_asleep) std::this_thread::yield();
  exit(0);
}

// Waits for child, killing it after `limit`. Return: the seconds it took, or -1 when it was killed;
// *status its wait status.
double seconds_until_exit(pid_t child, std::chrono::seconds limit, int* status) {
  const auto start = std::chrono::steady_clock::now();
  pid_t done = 0;
  while ((done = waitpid(child, status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < start + limit)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, status, 0);
    return -1;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// exit() runs umn_notifier_release() while the program's other threads live (the kernel's release runs
// once they are gone): with one asleep in a classic callback, the release's grace period never ends. The
// exit must still happen, within the documented 2 s bound (issue 12, the exit path: it hung forever).
TEST_F(Lifecycle, ExitDoesNotWaitForeverForAThreadAsleepInACallback) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    exit_with_a_thread_asleep(fds[1]);
  }
  close(fds[1]);
  char got = 0;
  ASSERT_EQ(read(fds[0], &got, 1), 1);  // the other thread sleeps in the callback
  EXPECT_EQ(got, 'S');
  close(fds[0]);
  int status = 0;
  ASSERT_NE(seconds_until_exit(child, std::chrono::seconds(20), &status), -1) << "exit() hung in release_at_exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// The 2 s exit bound is measured on CLOCK_MONOTONIC: with the bound computed on CLOCK_REALTIME, a clock
// step between the deadline's computation and the wait moved the deadline (issue 12 review). The child
// is this binary re-executed with CLOCK_REALTIME reading an hour ahead (realtime_ahead.c); exit must
// still come within the bound (8 s allowed: the bound plus a sanitizer's start-up), not after the hour.
TEST_F(Lifecycle, ExitBoundHoldsWhenTheRealtimeClockStepsRegression) {
  if (const char* fd = std::getenv("UMN_TEST_EXIT_ASLEEP_FD")) exit_with_a_thread_asleep(std::atoi(fd));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    setenv("UMN_TEST_EXIT_ASLEEP_FD", std::to_string(fds[1]).c_str(), 1);
    setenv("LD_PRELOAD", UMN_REALTIME_AHEAD_PATH, 1);
    const char* asan = std::getenv("ASAN_OPTIONS");  // ASan's runtime is no longer first in the list
    setenv("ASAN_OPTIONS", (std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
    execl("/proc/self/exe", "umn_sources_tests", "--gtest_filter=Lifecycle.ExitBoundHoldsWhenTheRealtimeClockStepsRegression",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char got = 0;
  ASSERT_EQ(read(fds[0], &got, 1), 1);  // the other thread sleeps in the callback; main calls exit()
  close(fds[0]);
  int status = 0;
  const double seconds = seconds_until_exit(child, std::chrono::seconds(20), &status);
  ASSERT_NE(seconds, -1) << "exit() still waited after 20 s: the bound moved with CLOCK_REALTIME";
  EXPECT_LT(seconds, 8.0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Threads racing munmap and mmap on neighbouring ranges: every notifier sees exactly its own unmaps.
TEST_F(Lifecycle, ThreadsRacingOnNeighbouringRangesSeeExactlyTheirEvents) {
  constexpr int kThreads = 4;
  const int rounds = 300;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        unsigned char* p = map_pages(3);
        Recorder rec;
        if (p == nullptr || rec.watch(p + kPage, kPage) != 0) {
          failures++;
          return;
        }
        munmap(p, kPage);                // the neighbour below
        munmap(p + 2 * kPage, kPage);    // the neighbour above
        void* again = mmap(p, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (rec.calls() != 0) failures++;
        // Ours, replaced rather than unmapped: a freed page could be mapped and unmapped by another
        // thread before this one looks at its count (a second, legitimate UNMAP of the same address).
        mmap(p + kPage, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (rec.calls() != 1 || rec.records[0].first != kPattern) failures++;
        rec.unwatch();
        munmap(p + kPage, kPage);
        if (again != MAP_FAILED) munmap(again, kPage);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

unsigned char* g_signal_region;

// A signal handler may call munmap: the hooks are async-signal-safe.
TEST_F(Lifecycle, SignalHandlerMunmapNotifies) {
  g_signal_region = map_pages(1);
  Recorder rec;
  ASSERT_EQ(rec.watch(g_signal_region, kPage), 0);
  struct sigaction action = {}, old = {};
  action.sa_handler = [](int) { munmap(g_signal_region, kPage); };
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  ASSERT_EQ(raise(SIGUSR1), 0);
  sigaction(SIGUSR1, &old, nullptr);
  ASSERT_EQ(rec.calls(), 1);
  EXPECT_EQ(rec.records[0].first, kPattern);
}

std::atomic<long> g_handled{0};

// The handler of the test below: a hooked mmap + munmap, whose delivery takes the process address
// space's subscription lock.
void munmap_in_handler(int) {
  void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) munmap(p, kPage);
  g_handled.fetch_add(1, std::memory_order_relaxed);
}

// A signal handler that munmaps, delivered while this thread is inside insert, read_begin, remove
// (which hold the subscription lock the handler's delivery needs) or inside a hooked call's own range
// start/end: it must neither deadlock nor recurse. Another thread floods this one with the signal; a
// watchdog turns a deadlock into a failure instead of a hung test.
TEST_F(Lifecycle, SignalHandlerMunmapInsideUmnCallsDoesNotDeadlock) {
  struct sigaction action = {}, old = {};
  action.sa_handler = &munmap_in_handler;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &action, &old), 0);
  std::atomic<long> progress{0};
  std::atomic<bool> stop{false};
  const pthread_t target = pthread_self();
  std::thread sender([&] {
    long seen = -1;
    auto since = std::chrono::steady_clock::now();
    while (!stop.load()) {
      pthread_kill(target, SIGUSR2);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      if (progress.load() != seen) {
        seen = progress.load();
        since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - since > std::chrono::seconds(30)) {
        std::fprintf(stderr, "deadlock: no progress for 30 s after %ld rounds\n", seen);
        std::abort();
      }
    }
  });
  unsigned char* p = map_pages(2);
  const long before = g_handled.load();
  for (int i = 0; i < 20000; ++i) {
    Recorder rec;
    rec.read_memory = false;
    ASSERT_EQ(rec.watch(p, 2 * kPage), 0);  // insert + read_begin
    madvise(p, kPage, MADV_DONTNEED);       // a hooked call: range start/end on this thread
    rec.unwatch();                          // remove
    progress.fetch_add(1);
  }
  stop = true;
  sender.join();
  sigaction(SIGUSR2, &old, nullptr);
  munmap(p, 2 * kPage);
  EXPECT_GT(g_handled.load(), before);
}

unsigned char* g_inner_region;

// A callback that itself unmaps memory does not recurse into the hooks: the inner call is passed
// through unnotified and counted.
TEST_F(Lifecycle, CallbackMunmapIsPassedThroughWithoutRecursion) {
  unsigned char* outer = map_pages(1);
  g_inner_region = map_pages(1);
  Recorder outer_rec, inner_rec;
  outer_rec.extra = [](Recorder*) { munmap(g_inner_region, kPage); };
  ASSERT_EQ(outer_rec.watch(outer, kPage), 0);
  ASSERT_EQ(inner_rec.watch(g_inner_region, kPage), 0);
  umn_process_hooks_info before, after;
  umn_process_hooks_get_info(&before);
  ASSERT_EQ(munmap(outer, kPage), 0);
  umn_process_hooks_get_info(&after);
  EXPECT_EQ(outer_rec.calls(), 1);
  EXPECT_EQ(inner_rec.calls(), 0);
  EXPECT_EQ(after.nested, before.nested + 1);
}

// C++: AddressSpace::process() with a FunctionNotifier, and a ProcessObserver.
TEST_F(Lifecycle, CxxApiSeesProcessEvents) {
  unsigned char* p = map_pages(1);
  auto mm = AddressSpace::process();
  int calls = 0;
  FunctionNotifier watch([&](IntervalNotifier& n, const Range& range, unsigned long seq) {
    calls += range.event() == Event::kUnmap;
    n.set_seq(seq);
    return true;
  });
  ASSERT_FALSE(watch.insert(mm, u(p), kPage));
  int observed = 0;
  ProcessObserver observer([&](const umn_process_event& event, int phase, void*) {
    if (phase == UMN_PROCESS_PHASE_START && event.start == u(p)) observed++;
  });
  ASSERT_FALSE(observer.start());
  ASSERT_EQ(munmap(p, kPage), 0);
  observer.stop();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(observed, 1);
  EXPECT_EQ(ProcessHooks::info().status, 0);
}

}  // namespace
}  // namespace umn::test

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// The hooks never allocate: count malloc calls of this thread around hooked calls. (Not under ASan/TSan,
// whose runtimes own malloc.)
extern "C" void* __libc_malloc(size_t);
namespace {
thread_local long t_mallocs = 0;
}
extern "C" void* malloc(size_t size) {
  ++t_mallocs;
  return __libc_malloc(size);
}

namespace umn::test {
namespace {
TEST_F(Lifecycle, HooksNeverMalloc) {
  unsigned char* p = map_pages(4);
  Recorder rec;
  ASSERT_EQ(rec.watch(p, 4 * kPage), 0);
  const long before = t_mallocs;
  madvise(p, kPage, MADV_DONTNEED);
  mprotect(p, kPage, PROT_READ);
  syscall(SYS_munmap, p + kPage, kPage);
  munmap(p, kPage);
  munmap(p + 2 * kPage, 2 * kPage);
  EXPECT_EQ(t_mallocs, before);
  EXPECT_EQ(rec.calls(), 5);
}
}  // namespace
}  // namespace umn::test
#endif
