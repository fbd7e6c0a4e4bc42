// tombstone_walk_test.cc - another thread's walk reaches the tombstone of a notifier destroyed from a
// callback (itree_abandon swaps the tree slot to the tombstone while other walks run lock-free).
// The walker must read the slot and the tombstone's fields after the swap (release store in
// replace_link, acquire loads in the walk). Checked under ThreadSanitizer (build/tsan), which reports the
// race if the edge is missing; the plain build checks that the walk goes on past the tombstone.
//
// Regression (issue 12 review of 97abf54): the slot was read with a plain load in entry() and stored
// with a relaxed store, so the walker read the tombstone with no happens-before edge to its writes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <new>
#include <thread>

#include "support/diag_capture.hpp"
#include "umn/umn.hpp"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x100000;

std::atomic<int> g_phase{0};  // relaxed only: no synchronisation between the two threads

class Plain : public umn::IntervalNotifier {
 public:
  ~Plain() override { remove(); }
  std::atomic<int> calls{0};

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    calls.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
};

// Before the victim in walk order: the walker waits here until the victim was abandoned.
class Gate : public umn::IntervalNotifier {
 public:
  ~Gate() override { remove(); }

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    if (g_phase.load(std::memory_order_relaxed) == 1) {
      g_phase.store(2, std::memory_order_relaxed);
      while (g_phase.load(std::memory_order_relaxed) != 3) {
      }
    }
    return true;
  }
};

alignas(Plain) unsigned char g_victim_storage[sizeof(Plain)];

class Killer : public umn::IntervalNotifier {
 public:
  ~Killer() override { remove(); }

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    while (g_phase.load(std::memory_order_relaxed) != 2) {
    }
    std::launder(reinterpret_cast<Plain*>(g_victim_storage))->~Plain();
    std::memset(g_victim_storage, 0xa5, sizeof(g_victim_storage));
    g_phase.store(3, std::memory_order_relaxed);
    // Keep the epoch open until the walker has passed the tombstone (it frees at the epoch's end).
    while (g_phase.load(std::memory_order_relaxed) != 4) {
    }
    return true;
  }
};

TEST(TombstoneWalkStress, AnotherThreadsWalkReachingTheTombstoneIsOrderedAfterTheSwapRegression) {
  auto mm = umn::AddressSpace::create().value();
  umn::test::DiagCapture diags;
  Gate gate;
  Killer killer;
  ASSERT_FALSE(gate.insert(mm, kBase, kPage));                        // walk order: gate,
  auto* victim = new (g_victim_storage) Plain;
  ASSERT_FALSE(victim->insert(mm, kBase + kPage, kPage));             // victim,
  Plain after;
  ASSERT_FALSE(after.insert(mm, kBase + 2 * kPage, kPage));           // after
  ASSERT_FALSE(killer.insert(mm, kBase + 8 * kPage, kPage));          // (the killer: another page)
  g_phase = 1;
  std::thread walker([&] {
    mm.invalidate(kBase, kBase + 3 * kPage);  // gate (waits), then the tombstone, then `after`
    g_phase.store(4, std::memory_order_relaxed);
  });
  mm.invalidate(kBase + 8 * kPage, kBase + 9 * kPage);  // the killer destroys the victim mid-walk
  walker.join();
  EXPECT_EQ(after.calls.load(), 1);
  EXPECT_GE(diags.count("umn::IntervalNotifier::~IntervalNotifier", "callback"), 1u);
}

}  // namespace
