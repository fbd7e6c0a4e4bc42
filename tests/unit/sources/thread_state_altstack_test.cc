// thread_state_altstack_test.cc - the delivery state with a handler on an SS_AUTODISARM alternate stack
// (src/sources/process/thread_state.*; an outside review's reproducer for 705bf34).
//
// A signal handler on an alternate stack armed with SS_AUTODISARM interrupts a delivery and makes a
// hooked call. Inside such a handler sigaltstack() reports SS_DISABLE (the kernel disarms the alt stack
// for the handler's duration), so alt_stack() sees no alt stack and dead() compares the handler's frame
// (on the alt stack) with the interrupted level's frame (on the thread's stack) as if both were on one
// stack: when the alt stack lies above the thread's stack, the live level is judged dead and ended while
// its callback is still running (range_end before the callback returned, state.delivering and depth
// underflow when the real frame ends it again).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "recorder.hpp"
#include "support/child_watchdog.hpp"
#include "umn/process.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

namespace umn::test {
namespace {

Recorder g_outer, g_in_handler, g_after;
unsigned char* g_handler_page = nullptr;
std::atomic<int> g_handler_ran{0};

// Inside the handler (which interrupted g_outer's callback): the outer range must still be open.
void handler(int) {
  munmap(g_handler_page, kPage);  // a hooked call from a handler interrupting a delivery (nested)
  g_handler_ran++;
}

// g_outer's callback: raises the signal (the handler runs on the SS_AUTODISARM alt stack).
void raise_in_callback(Recorder*) { raise(SIGUSR1); }

// The thread's stack: a static buffer (in .bss, below any mmap'ed alternate stack).
alignas(4096) unsigned char g_thread_stack[1 << 20];

int thread_body(int alt_flags) {
  const size_t alt_size = 256 << 10;
  void* alt = mmap(nullptr, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt == MAP_FAILED) return 20;
  stack_t ss = {};
  ss.ss_sp = alt;
  ss.ss_size = alt_size;
  ss.ss_flags = alt_flags;
  if (sigaltstack(&ss, nullptr) != 0) return 21;
  struct sigaction action = {};
  action.sa_handler = &handler;
  action.sa_flags = SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGUSR1, &action, nullptr) != 0) return 22;

  unsigned char* outer = map_pages(1);
  g_handler_page = map_pages(1);
  unsigned char* after = map_pages(1);
  g_outer.extra = &raise_in_callback;
  if (g_outer.watch(outer, kPage) != 0 || g_in_handler.watch(g_handler_page, kPage) != 0 ||
      g_after.watch(after, kPage) != 0)
    return 23;
  if (munmap(outer, kPage) != 0) return 24;
  g_outer.extra = nullptr;
  if (g_handler_ran != 1) return 25;
  if (g_outer.calls() != 1) return 26;
  // The thread's delivery state must be back to rest: a later munmap is announced exactly once.
  if (munmap(after, kPage) != 0) return 28;
  if (!one_event(g_after, UMN_NOTIFY_UNMAP, u(after), u(after) + kPage)) return 29;
  return 0;
}

int run_on_low_stack(int alt_flags) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, g_thread_stack, sizeof(g_thread_stack));
  static int flags, result = -1;
  flags = alt_flags;
  pthread_t thread;
  if (pthread_create(
          &thread, &attr, [](void*) -> void* {
            result = thread_body(flags);
            return nullptr;
          },
          nullptr) != 0)
    return 30;
  pthread_join(thread, nullptr);
  return result;
}

// Control: the same with an ordinary alternate stack passes on main.
TEST(ThreadStateAltStack, HandlerOnAnAltStackDoesNotEndTheLevelItInterrupts) {
  ASSERT_EQ(umn_process_hooks_install(), 0);
  run_in_child([] { return run_on_low_stack(0); });
}

// Fails on main: the child dies with SIGSEGV (end_levels walking levels[] with depth wrapped around).
TEST(ThreadStateAltStack, HandlerOnAnAutodisarmedAltStackDoesNotEndTheLevelItInterrupts) {
  ASSERT_EQ(umn_process_hooks_install(), 0);
  run_in_child([] { return run_on_low_stack(SS_AUTODISARM); });
}

}  // namespace
}  // namespace umn::test
