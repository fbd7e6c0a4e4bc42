// diag_hook_test.cc - umn_set_diagnostic_hook publishes (fn, context) as one pair: a report made while
// another thread swaps hooks calls a hook with its own context, never an old hook with a new context.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <thread>

#include "umn/umn.h"

namespace {

struct Context {
  std::atomic<long> calls{0};
  std::atomic<long> mismatches{0};
};
Context g_a, g_b;

void hook_a(void* context, const char*, const char*) {
  g_a.calls++;
  if (context != &g_a) g_a.mismatches++;
}
void hook_b(void* context, const char*, const char*) {
  g_b.calls++;
  if (context != &g_b) g_b.mismatches++;
}

// Before the fix report() loaded fn, then context, while set stored context, then fn: a swap between
// the two loads paired hook_a with &g_b (seen within a few hundred thousand reports on 2 cores).
TEST(DiagnosticHook, ConcurrentSwapNeverPairsAHookWithAnotherContextRegression) {
  umn_mm* mm = umn_mm_create();
  umn_set_diagnostic_hook(&hook_a, &g_a);
  std::atomic<bool> stop{false};
  std::thread reporter([&] {
    while (!stop.load(std::memory_order_relaxed))
      (void)umn_notifier_clear_young(mm, 2, 1);  // start >= end: a WARN, reported through the hook
  });
  while (g_a.calls == 0) std::this_thread::yield();  // the reporter runs (a loaded machine is slow to start it)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (std::chrono::steady_clock::now() < deadline && g_a.mismatches + g_b.mismatches == 0) {
    for (int i = 0; i < 1000; ++i) {
      umn_set_diagnostic_hook(&hook_b, &g_b);
      umn_set_diagnostic_hook(&hook_a, &g_a);
    }
  }
  stop = true;
  reporter.join();
  umn_set_diagnostic_hook(nullptr, nullptr);
  umn_mm_destroy(mm);
  EXPECT_GT(g_a.calls + g_b.calls, 0);
  EXPECT_EQ(g_a.mismatches + g_b.mismatches, 0) << "an old hook was called with a new context";
  std::printf("reports: %ld + %ld\n", g_a.calls.load(), g_b.calls.load());
}

}  // namespace
