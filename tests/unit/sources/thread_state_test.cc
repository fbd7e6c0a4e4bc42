// thread_state_test.cc - the hooks' per-thread delivery state (src/sources/process/thread_state.hpp):
// a thread that jumps out of a delivery is announced again and its range ends (issue 17.8); threads made
// by a raw clone(CLONE_VM) without CLONE_SETTLS, which share their creator's thread-local storage, are
// announced like any other (issue 17.7). Each test runs in a forked child under a watchdog, so a hang
// (the range left open, exit waiting for it) is a failure within seconds, not a hung test.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "recorder.hpp"
#include "support/child_watchdog.hpp"
#include "umn/process.h"

namespace umn::test {
namespace {

class ThreadState : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(umn_process_hooks_install(), 0); }
};

// Whether read_begin on rec's notifier returns within a second on another thread (it waits while a
// range over the notifier is open). Return: true if it returned.
bool read_begin_returns(Recorder& rec) {
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    (void)umn_interval_read_begin(&rec.notifier);
    returned = true;
  });
  for (int i = 0; i < 100 && !returned; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!returned) {
    reader.detach();  // stays blocked; the child exits anyway
    return false;
  }
  reader.join();
  return true;
}

sigjmp_buf g_jump;

// munmap(page) whose delivery is expected to siglongjmp back here. Return: true if it did.
[[gnu::noinline]] bool munmap_jumps_out(unsigned char* page) {
  if (sigsetjmp(g_jump, 1) != 0) return true;
  munmap(page, kPage);
  return false;
}

// After a thread left a delivery with siglongjmp (its range still open, its delivery state raised), the
// checks every test below makes: a later munmap of another watched page (watched before: until its next
// hooked call, the thread's own inserts and read_begins would take it for a callback of the open range)
// is announced exactly once, with the old contents; the abandoned range has ended (read_begin returns on
// another thread); and exit works (run_in_child). Inlined into the caller, so that its munmap comes
// from a frame above the abandoned call's (which munmap_jumps_out made one frame deeper): the level is
// then dead by the stack rule, whatever the canary word holds (thread_state.hpp).
[[gnu::always_inline]] inline int check_after_jump(Recorder& jumped, unsigned char* other, Recorder& watch_other) {
  if (munmap(other, kPage) != 0) return 11;
  if (!one_event(watch_other, UMN_NOTIFY_UNMAP, u(other), u(other) + kPage)) return 12;
  if (!read_begin_returns(jumped)) return 13;
  return 0;
}

// A notifier callback that siglongjmps out of the invalidation (17.8): the thread's next hooked call is
// announced and the abandoned range ends.
TEST_F(ThreadState, SiglongjmpOutOfACallbackIsAnnouncedAgainAndItsRangeEnds) {
  run_in_child([] {
    unsigned char* jumped_page = map_pages(1);
    unsigned char* other = map_pages(1);
    static Recorder jumper, watch_other;
    jumper.extra = [](Recorder*) { siglongjmp(g_jump, 1); };
    if (jumper.watch(jumped_page, kPage) != 0 || watch_other.watch(other, kPage) != 0) return 1;
    if (!munmap_jumps_out(jumped_page)) return 2;
    jumper.extra = nullptr;
    return check_after_jump(jumper, other, watch_other);
  });
}

void jump_from_handler(int) { siglongjmp(g_jump, 1); }

// The test below on an alternate signal stack or not: a callback raises a signal whose handler
// siglongjmps to before the call (the handler interrupted the delivery, 17.8).
int jump_out_of_a_handler(bool alt_stack) {
  static unsigned char stack[64 << 10];
  if (alt_stack) {
    stack_t ss = {};
    ss.ss_sp = stack;
    ss.ss_size = sizeof(stack);
    if (sigaltstack(&ss, nullptr) != 0) return 3;
  }
  struct sigaction action = {};
  action.sa_handler = &jump_from_handler;
  action.sa_flags = alt_stack ? SA_ONSTACK : 0;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGUSR1, &action, nullptr) != 0) return 4;
  unsigned char* jumped_page = map_pages(1);
  unsigned char* other = map_pages(1);
  static Recorder jumper, watch_other;
  jumper.extra = [](Recorder*) { raise(SIGUSR1); };
  if (jumper.watch(jumped_page, kPage) != 0 || watch_other.watch(other, kPage) != 0) return 1;
  if (!munmap_jumps_out(jumped_page)) return 2;
  jumper.extra = nullptr;
  return check_after_jump(jumper, other, watch_other);
}

TEST_F(ThreadState, SiglongjmpOutOfAHandlerInterruptingADeliveryIsAnnouncedAgain) {
  run_in_child([] { return jump_out_of_a_handler(false); });
}

TEST_F(ThreadState, SiglongjmpOutOfAHandlerOnTheAltStackInterruptingADeliveryIsAnnouncedAgain) {
  run_in_child([] { return jump_out_of_a_handler(true); });
}

// An observer that siglongjmps out of its START: its END still comes (balanced), at the next call.
std::atomic<int> g_starts{0}, g_ends{0};
uint64_t g_observed_page = 0;
TEST_F(ThreadState, SiglongjmpOutOfAnObserverStartStillGivesItsEnd) {
  run_in_child([] {
    unsigned char* jumped_page = map_pages(1);
    unsigned char* other = map_pages(1);
    g_observed_page = u(jumped_page);
    auto observer = [](void*, const umn_process_event* event, int phase, void*) {
      if (event->start != g_observed_page) return;
      if (phase == UMN_PROCESS_PHASE_START) {
        g_starts++;
        siglongjmp(g_jump, 1);
      }
      if (phase == UMN_PROCESS_PHASE_END) g_ends++;
    };
    static Recorder watch_other;
    if (watch_other.watch(other, kPage) != 0) return 3;
    if (umn_process_observer_add(observer, nullptr) != 0) return 1;
    if (!munmap_jumps_out(jumped_page)) return 2;
    if (munmap(other, kPage) != 0) return 4;
    if (watch_other.calls() != 1) return 5;
    if (g_starts != 1 || g_ends != 1) return 6;
    return 0;
  });
}

// libumn.so can be loaded with dlopen (by a plugin that links it): its initial-exec thread-local storage
// must fit glibc's static-TLS surplus. The delivery state's 4.7 KiB per thread did not ("cannot allocate
// memory in static TLS block"); only a pointer to a pooled state is thread-local now. In a child, so
// that the second copy of umn stays out of this process.
TEST_F(ThreadState, LibumnCanBeDlopened) {
  run_in_child([] {
    void* handle = dlopen(UMN_SHARED_LIB_PATH, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return handle != nullptr ? 0 : 1;
  });
}

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
// Raw clone threads: the sanitizer runtimes keep their own per-thread state in the thread-local storage
// these threads share, so they cannot run them (not a limit of umn's).

constexpr int kRawThreads = 4;
constexpr int kPagesPerThread = 150;

struct RawThread {
  unsigned char* pages[kPagesPerThread];
  Recorder* recs;
  std::atomic<int>* start;
  pid_t tid_word;  // cleared by the kernel when the thread is gone (CLONE_CHILD_CLEARTID)
};

int raw_thread_main(void* arg) {
  auto* self = static_cast<RawThread*>(arg);
  while (self->start->load() == 0) {
  }
  for (unsigned char* page : self->pages) munmap(page, kPage);  // libc's munmap: a hooked site
  return 0;
}

// Slows every invalidation down (about 20 us) so that the threads' deliveries overlap.
void slow_callback(Recorder*) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Threads made by clone(CLONE_VM | CLONE_THREAD ...) without CLONE_SETTLS share the creating thread's
// thread-local storage, and so did their delivery depth (17.7): while one was inside a delivery the
// others' munmaps were passed through unannounced. Every watched page must be announced exactly once.
TEST_F(ThreadState, RawCloneThreadsSharingThreadLocalStorageAreAllAnnounced) {
  run_in_child([] {
    // glibc takes its locks without atomics while it believes the process single-threaded (as a fork
    // child is), and a raw clone does not tell it otherwise: one pthread makes that belief false for good.
    std::thread([] {}).join();
    static RawThread threads[kRawThreads + 1];  // the last one is this thread
    static Recorder recs[kRawThreads + 1][kPagesPerThread];
    std::atomic<int> start{0};
    for (int t = 0; t <= kRawThreads; ++t) {
      threads[t].start = &start;
      threads[t].recs = recs[t];
      for (int i = 0; i < kPagesPerThread; ++i) {
        threads[t].pages[i] = map_pages(1);
        recs[t][i].extra = &slow_callback;
        if (threads[t].pages[i] == nullptr || recs[t][i].watch(threads[t].pages[i], kPage) != 0) return 1;
      }
    }
    const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                      CLONE_CHILD_CLEARTID | CLONE_PARENT_SETTID;
    for (int t = 0; t < kRawThreads; ++t) {
      constexpr size_t kStack = 256 << 10;
      void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (stack == MAP_FAILED) return 2;
      if (clone(&raw_thread_main, static_cast<char*>(stack) + kStack, flags, &threads[t], &threads[t].tid_word,
                nullptr, &threads[t].tid_word) < 0)
        return 3;
    }
    start = 1;
    raw_thread_main(&threads[kRawThreads]);
    for (int t = 0; t < kRawThreads; ++t)  // the stacks stay mapped: the child exits after this
      while (__atomic_load_n(&threads[t].tid_word, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &threads[t].tid_word, FUTEX_WAIT, threads[t].tid_word, nullptr, nullptr, 0);
    int missed = 0;
    for (int t = 0; t <= kRawThreads; ++t)
      for (int i = 0; i < kPagesPerThread; ++i) missed += recs[t][i].calls() != 1;
    if (missed != 0) std::fprintf(stderr, "%d of %d unmaps were not announced exactly once\n", missed,
                                  (kRawThreads + 1) * kPagesPerThread);
    for (auto& row : recs)
      for (Recorder& rec : row) rec.unwatch();
    return missed == 0 ? 0 : 4;
  });
}
#endif

}  // namespace
}  // namespace umn::test
