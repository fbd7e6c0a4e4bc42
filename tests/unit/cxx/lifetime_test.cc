// lifetime_test.cc - destroying C++ notifiers (umn::IntervalNotifier, umn::Notifier): removal and
// unregistration belong in the most-derived destructor; the base destructors diagnose a notifier still
// linked; remove()/unregister() refused as misuse leave the notifier linked (issue 12, defects 3 and 4).
// The concurrent half (deleting while ranges run on other threads) is tests/stress/cxx_lifetime_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

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

}  // namespace
