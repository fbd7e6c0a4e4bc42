// lifetime_test.cc - destroying C++ notifiers (umn::IntervalNotifier, umn::Notifier): removal and
// unregistration belong in the most-derived destructor; the base destructors diagnose a notifier still
// linked; remove()/unregister() refused as misuse leave the notifier linked (issue 12, defects 3 and 4).
// The concurrent half (deleting while ranges run on other threads) is tests/stress/cxx_lifetime_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <new>

#include "support/diag_capture.hpp"
#include "umn/umn.hpp"

namespace {

using umn::test::DiagCapture;

constexpr uint64_t kPage = 4096;

umn::AddressSpace make_space() { return umn::AddressSpace::create().value(); }

// An interval notifier whose author forgot remove() in the destructor.
class ForgetsRemove : public umn::IntervalNotifier {
 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    return true;
  }
};

// A classic notifier whose author forgot unregister() in the destructor.
class ForgetsUnregister : public umn::Notifier {
 public:
  explicit ForgetsUnregister(std::atomic<int>* releases) : releases_(releases) {}

 protected:
  void release() noexcept override { (*releases_)++; }

 private:
  std::atomic<int>* releases_;
};

// Before: the base destructor removed silently, and any range joining the open epoch meanwhile called
// the pure virtual invalidate ("pure virtual method called"). Now the omission is diagnosed every
// time, whether or not a range races with it; the notifier still leaves the tree.
TEST(CxxLifetime, IntervalNotifierDestroyedWhileInsertedIsDiagnosedRegression) {
  auto mm = make_space();
  DiagCapture diags;
  {
    ForgetsRemove notifier;
    ASSERT_FALSE(notifier.insert(mm, 0x10000, kPage));
  }
  EXPECT_EQ(diags.count("umn::IntervalNotifier::~IntervalNotifier", "remove()"), 1u);
  mm.invalidate(0x10000, 0x10000 + kPage);  // no callback into the destroyed notifier
  EXPECT_EQ(diags.count(), 1u);
}

// Before: the base destructor unregistered silently, so the derived release() never ran (umn.h
// promises ->release once per registration). Now the omission is diagnosed.
TEST(CxxLifetime, NotifierDestroyedWhileRegisteredIsDiagnosedRegression) {
  auto mm = make_space();
  DiagCapture diags;
  std::atomic<int> releases{0};
  {
    ForgetsUnregister notifier(&releases);
    ASSERT_FALSE(notifier.register_with(mm));
  }
  EXPECT_EQ(diags.count("umn::Notifier::~Notifier", "unregister()"), 1u);
  mm.invalidate(0x10000, 0x10000 + kPage);
}

// The rule followed: the derived destructor unregisters, so the derived release() runs, once.
class UnregistersFirst : public umn::Notifier {
 public:
  explicit UnregistersFirst(std::atomic<int>* releases) : releases_(releases) {}
  ~UnregistersFirst() override { unregister(); }

 protected:
  void release() noexcept override { (*releases_)++; }

 private:
  std::atomic<int>* releases_;
};

TEST(CxxLifetime, UnregisterInTheDerivedDestructorCallsTheDerivedReleaseOnce) {
  auto mm = make_space();
  DiagCapture diags;
  std::atomic<int> releases{0};
  {
    UnregistersFirst notifier(&releases);
    ASSERT_FALSE(notifier.register_with(mm));
  }
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(diags.count(), 0u);
}

// An interval notifier that tries to remove itself from its own callback (misuse: the remove would
// wait for its own invalidation, so umn refuses it).
class RemovesItself : public umn::IntervalNotifier {
 public:
  ~RemovesItself() override { remove(); }

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    set_seq(cur_seq);
    remove();
    return true;
  }
};

// Before: remove() cleared inserted() although the C remove refused, so the destructor skipped the
// removal and the freed notifier stayed in the tree.
TEST(CxxLifetime, RemoveRefusedInACallbackKeepsTheNotifierInsertedRegression) {
  auto mm = make_space();
  DiagCapture diags;
  auto notifier = std::make_unique<RemovesItself>();
  ASSERT_FALSE(notifier->insert(mm, 0x10000, kPage));
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(diags.count("umn_interval_notifier_remove"), 1u);
  EXPECT_TRUE(notifier->inserted());
  notifier.reset();
  mm.invalidate(0x10000, 0x10000 + kPage);  // before: called the freed notifier (ASan: use after free)
  EXPECT_EQ(diags.count(), 1u);
}

// A classic notifier that tries to unregister itself from its own callback (misuse, refused).
class UnregistersItself : public umn::Notifier {
 public:
  ~UnregistersItself() override { unregister(); }

 protected:
  bool invalidate_range_start(const umn::Range&) noexcept override {
    unregister();
    return true;
  }
};

// Before: unregister() cleared registered() although the C unregister refused.
TEST(CxxLifetime, UnregisterRefusedInACallbackKeepsTheNotifierRegisteredRegression) {
  auto mm = make_space();
  DiagCapture diags;
  UnregistersItself notifier;
  ASSERT_FALSE(notifier.register_with(mm));
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(diags.count("umn_notifier_unregister"), 1u);
  EXPECT_TRUE(notifier.registered());
}

// ---------------------------------------------------------------------------------------------------
// Destroyed from a callback of its own address space (misuse: remove() would wait for the very walk
// that runs the callback, so it is refused). With diagnostics that do not abort (a hook, UMN_DIAG=count,
// release builds) the storage is reused as soon as the destructor returns: the notifier must not stay in
// the tree (issue 12 review: the same walk then called the overwritten object, SIGSEGV). Each test
// destroys a notifier living in static storage and overwrites the storage, as a reuse would.

// A single- or two-pass notifier in caller-provided storage; its finish record is a member.
class Victim : public umn::TwoPassNotifier {
 public:
  ~Victim() override { remove(); }
  std::function<void()> on_start;  // run inside invalidate_start (before the record is handed out)
  bool hand_out_record = false;
  int first_passes = 0, second_passes = 0;

 protected:
  bool invalidate_start(const umn::Range&, unsigned long cur_seq, umn::FinishRecord*& finish) noexcept override {
    set_seq(cur_seq);
    first_passes++;
    if (hand_out_record) finish = &record_;
    if (on_start) on_start();  // may destroy this very object (then nothing below may touch it)
    return true;
  }
  void invalidate_finish(umn::FinishRecord&) noexcept override { second_passes++; }

 private:
  umn::FinishRecord record_;
};

alignas(Victim) unsigned char g_storage[2][sizeof(Victim)];

Victim* victim_in(int slot) { return new (g_storage[slot]) Victim; }
// Destroys the notifier in slot and overwrites its storage (what a reuse of freed memory does).
void destroy_and_reuse(int slot) {
  std::launder(reinterpret_cast<Victim*>(g_storage[slot]))->~Victim();
  std::memset(g_storage[slot], 0xa5, sizeof(g_storage[slot]));
}

TEST(CxxLifetime, DestroyedFromAnotherNotifiersCallbackLeavesNoNodeInTheTreeRegression) {
  auto mm = make_space();
  DiagCapture diags;
  Victim* killer = victim_in(0);
  Victim* victim = victim_in(1);
  ASSERT_FALSE(killer->insert(mm, 0x10000, kPage));
  ASSERT_FALSE(victim->insert(mm, 0x10000, kPage));  // after the killer in walk order (equal starts)
  killer->on_start = [] { destroy_and_reuse(1); };
  mm.invalidate(0x10000, 0x10000 + kPage);  // before: the walk went on into the overwritten victim
  EXPECT_GE(diags.count("umn::IntervalNotifier::~IntervalNotifier", "callback"), 1u);
  killer->on_start = nullptr;
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(killer->first_passes, 2);
  victim = victim_in(1);  // the storage is the caller's again: insert and use it afresh
  ASSERT_FALSE(victim->insert(mm, 0x10000, kPage));
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(victim->first_passes, 1);
  victim->~Victim();
  killer->~Victim();
}

TEST(CxxLifetime, DestroyedFromItsOwnCallbackLeavesTheWalkIntactRegression) {
  auto mm = make_space();
  DiagCapture diags;
  Victim* self = victim_in(0);
  Victim* next = victim_in(1);
  ASSERT_FALSE(self->insert(mm, 0x10000, kPage));
  ASSERT_FALSE(next->insert(mm, 0x10000, kPage));
  self->hand_out_record = true;  // a record in the storage about to be overwritten: never finished
  self->on_start = [] { destroy_and_reuse(0); };
  mm.invalidate(0x10000, 0x10000 + kPage);  // before: the walk continued from the overwritten node
  EXPECT_GE(diags.count("umn::IntervalNotifier::~IntervalNotifier", "callback"), 1u);
  EXPECT_EQ(next->first_passes, 1);  // the walk went on to the next notifier
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(next->first_passes, 2);
  next->~Victim();
}

TEST(CxxLifetime, DestroyedAfterItsFirstPassGetsNoSecondPassRegression) {
  auto mm = make_space();
  DiagCapture diags;
  Victim* victim = victim_in(0);
  Victim* killer = victim_in(1);
  ASSERT_FALSE(victim->insert(mm, 0x10000, kPage));  // first in walk order: its record is queued
  ASSERT_FALSE(killer->insert(mm, 0x10000, kPage));
  victim->hand_out_record = true;
  killer->on_start = [] { destroy_and_reuse(0); };
  mm.invalidate(0x10000, 0x10000 + kPage);  // before: the second pass called the overwritten record
  EXPECT_GE(diags.count("umn::IntervalNotifier::~IntervalNotifier", "callback"), 1u);
  killer->on_start = nullptr;
  mm.invalidate(0x10000, 0x10000 + kPage);
  EXPECT_EQ(killer->first_passes, 2);
  killer->~Victim();
}

}  // namespace
