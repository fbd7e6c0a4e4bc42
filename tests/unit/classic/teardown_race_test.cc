// teardown_race_test.cc - classic teardown against a concurrent unregister, with the unregistering
// thread held just before it enters its read-side section (tests/support/rcu_delay.hpp), so that the
// interleaving the issue 12 review found is forced instead of hoped for.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "classic_support.hpp"
#define UMN_RCU_DELAY_DEFINE_INTERPOSER
#include "support/rcu_delay.hpp"
#include "umn/umn.h"

namespace umn::test {
namespace {

// Hands the unregistering thread's first read_lock to the main thread: "parked" is set there, and
// the thread stays parked until "go" (or 2 s, so that a broken ordering cannot hang the test).
struct Park {
  std::atomic<bool> parked{false};
  std::atomic<bool> go{false};

  static void hook(void* context) {
    auto* self = static_cast<Park*>(context);
    umn_test::t_read_lock_hook = {};  // once
    self->parked = true;
    for (int i = 0; i < 2000 && !self->go; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
};

std::atomic<bool> g_release_done{false};
void note_release(umn_notifier*, umn_mm*) { g_release_done = true; }

// umn.h: "when any release returns, every RELEASE and ->release has run", also when an unregister of
// the same notifier runs concurrently. Failed before the fix (claim taken before the read-side section):
// teardown lost the claim, found no reader to wait for and returned before ->release ran.
TEST(ClassicTeardownRace, TeardownReturnsAfterConcurrentUnregistersReleaseRegression) {
  umn_mm* mm = umn_mm_create();
  BareNotifier notifier;
  notifier.ops.release = &note_release;
  g_release_done = false;
  ASSERT_EQ(umn_notifier_register(&notifier.sub, mm), 0);
  Park park;
  Thread unregistering([&] {
    umn_test::t_read_lock_hook = {&Park::hook, &park};
    umn_notifier_unregister(&notifier.sub, mm);
  });
  ASSERT_TRUE(eventually([&] { return park.parked.load(); }));
  umn_notifier_release(mm);
  EXPECT_TRUE(g_release_done) << "umn_notifier_release returned before ->release ran";
  park.go = true;
  unregistering.join();
  EXPECT_TRUE(g_release_done);
  umn_mm_destroy(mm);
}

}  // namespace
}  // namespace umn::test
