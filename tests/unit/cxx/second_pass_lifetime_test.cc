// second_pass_lifetime_test.cc - a C++ IntervalNotifier destroyed from a callback of another notifier
// in the same invalidation, during the second pass (invalidate_finish): the destroyed notifier's queued
// finish record must not be called, and nothing may touch its storage afterwards.
//
// Regression (issue 12 review of adcaea4): FinishQueue::run() read the next record's address before
// calling the current record's invalidate_finish, so when that callback destroyed the notifier whose
// record was queued next (itree_abandon -> FinishQueue::drop), run() called into the destroyed record.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <new>

#include "support/diag_capture.hpp"
#include "umn/umn.hpp"

namespace {

using umn::test::DiagCapture;

constexpr uint64_t kPage = 4096;

class FinishVictim : public umn::TwoPassNotifier {
 public:
  ~FinishVictim() override { remove(); }
  std::function<void()> on_finish;  // run inside invalidate_finish
  int first_passes = 0, second_passes = 0;

 protected:
  bool invalidate_start(const umn::Range&, unsigned long cur_seq, umn::FinishRecord*& finish) noexcept override {
    set_seq(cur_seq);
    first_passes++;
    finish = &record_;
    return true;
  }
  void invalidate_finish(umn::FinishRecord&) noexcept override {
    second_passes++;
    if (on_finish) on_finish();
  }

 private:
  umn::FinishRecord record_;
};

alignas(FinishVictim) unsigned char g_storage[2][sizeof(FinishVictim)];

FinishVictim* victim_in(int slot) { return new (g_storage[slot]) FinishVictim; }
void destroy_and_reuse(int slot) {
  std::launder(reinterpret_cast<FinishVictim*>(g_storage[slot]))->~FinishVictim();
  std::memset(g_storage[slot], 0xa5, sizeof(g_storage[slot]));
}

// The killer's second pass destroys the victim, whose record is queued right after the killer's.
// Expected: the victim's second pass does not run (its record was dropped) and nothing touches its
// storage (it is overwritten with 0xa5 right after the destructor: a call into it crashes).
TEST(CxxSecondPassLifetime, DestroyedFromAnotherNotifiersSecondPassIsNotCalledAfterwardsRegression) {
  auto mm = umn::AddressSpace::create().value();
  DiagCapture diags;
  FinishVictim* killer = victim_in(0);
  FinishVictim* victim = victim_in(1);
  ASSERT_FALSE(killer->insert(mm, 0x10000, kPage));
  ASSERT_FALSE(victim->insert(mm, 0x10000, kPage));  // after the killer in walk order (equal starts)
  killer->on_finish = [] { destroy_and_reuse(1); };
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_GE(diags.count("umn::IntervalNotifier::~IntervalNotifier", "callback"), 1u);
  killer->on_finish = nullptr;
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(killer->first_passes, 2);
  EXPECT_EQ(killer->second_passes, 2);
  killer->~FinishVictim();
}

}  // namespace

namespace {

// Two notifiers destroyed from one first-pass callback, both after the killer in walk order: the walk
// goes on past both tombstones to the last notifier.
class Simple : public umn::IntervalNotifier {
 public:
  ~Simple() override { remove(); }
  std::function<void()> on_call;
  int calls = 0;

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    calls++;
    if (on_call) on_call();
    return true;
  }
};

alignas(Simple) unsigned char g_simple[4][sizeof(Simple)];
Simple* simple_in(int slot) { return new (g_simple[slot]) Simple; }
void destroy_simple(int slot) {
  std::launder(reinterpret_cast<Simple*>(g_simple[slot]))->~Simple();
  std::memset(g_simple[slot], 0xa5, sizeof(g_simple[slot]));
}

TEST(CxxSecondPassLifetime, TwoNotifiersDestroyedFromOneCallbackBothLeaveTheWalk) {
  auto mm = umn::AddressSpace::create().value();
  DiagCapture diags;
  Simple* killer = simple_in(0);
  ASSERT_FALSE(killer->insert(mm, 0x10000, kPage));
  ASSERT_FALSE(simple_in(1)->insert(mm, 0x10000, kPage));
  ASSERT_FALSE(simple_in(2)->insert(mm, 0x10000, kPage));
  Simple* last = simple_in(3);
  ASSERT_FALSE(last->insert(mm, 0x10000, kPage));
  killer->on_call = [] {
    destroy_simple(2);
    destroy_simple(1);
  };
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(last->calls, 1);
  killer->on_call = nullptr;
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(last->calls, 2);
  EXPECT_EQ(killer->calls, 2);
  last->~Simple();
  killer->~Simple();
}

}  // namespace
