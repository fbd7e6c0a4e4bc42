// mm_test.cc - address spaces through the C API: umn_mm_destroy with notifiers still inserted (diagnosed;
// a later remove is safe — this file is meant to run under ASan too) and the range started before the
// address space had any subscription (an insert from another thread waits until it ends, see mm.cc).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <thread>

#include "support/core_test.hpp"

namespace {

using namespace umn::test;  // NOLINT(google-build-using-namespace): the shared test doubles

// Destroying an address space with notifiers still inserted diagnoses it, gives each one RELEASE, and
// keeps the memory alive until the last of them is removed.
TEST(AddressSpace, DestroyWithNotifiersInsertedIsDiagnosedAndLaterRemoveIsSafe) {
  DiagCapture diags;
  CallLog log;
  umn_mm* mm = umn_mm_create();
  ASSERT_NE(mm, nullptr);
  RecordingNotifier a(1, &log), b(2, &log, Mode::kTwoPass);
  ASSERT_EQ(a.insert(mm, 0, kPage), 0);
  ASSERT_EQ(b.insert(mm, kPage, kPage), 0);
  umn_mm_destroy(mm);
  EXPECT_EQ(diags.count("umn_mm_destroy"), 1u);
  EXPECT_EQ(log.first_passes(1), 1);
  EXPECT_EQ(log.first_passes(2), 1);
  EXPECT_EQ(log.count(CallKind::kFinish, 2), 1);
  EXPECT_EQ(log.calls().at(0).event, UMN_NOTIFY_RELEASE);
  (void)a.read_begin();  // the tree keeps working after teardown
  a.remove();
  b.remove();  // the last reference: frees the address space
  EXPECT_EQ(diags.count(), 1u);
}

// Inserting into a destroyed address space is -EINVAL (its memory is still alive through a notifier).
TEST(AddressSpace, InsertIntoADestroyedAddressSpaceFails) {
  DiagCapture diags;
  CallLog log;
  umn_mm* mm = umn_mm_create();
  RecordingNotifier keeper(1, &log), late(2, &log);
  ASSERT_EQ(keeper.insert(mm, 0, kPage), 0);
  umn_mm_destroy(mm);
  EXPECT_EQ(late.insert(mm, 0, kPage), -EINVAL);
  keeper.remove();
}

// Destroying an address space whose notifiers were all removed reports nothing.
TEST(AddressSpace, DestroyAfterRemovingEverythingIsQuiet) {
  DiagCapture diags;
  CallLog log;
  umn_mm* mm = umn_mm_create();
  RecordingNotifier a(1, &log);
  ASSERT_EQ(a.insert(mm, 0, kPage), 0);
  a.remove();
  umn_mm_destroy(mm);
  umn_mm_destroy(nullptr);
  EXPECT_EQ(diags.count(), 0u);
  EXPECT_EQ(log.size(), 0u);
}

// A range started on a fresh address space, before its first insert, holds back an insert from another
// thread until it ends (the range never counted itself in the subscriptions it could not see).
TEST(AddressSpace, InsertWaitsForARangeStartedBeforeTheFirstSubscription) {
  DiagCapture diags;
  CallLog log;
  umn_mm* mm = umn_mm_create();
  RecordingNotifier a(1, &log);
  auto range = std::make_unique<ScopedRange>(mm, 0, 16 * kPage);
  std::atomic<int> result{1};
  AsyncCall inserter([&] { result = a.insert(mm, 0, kPage); });
  EXPECT_TRUE(inserter.stays_blocked());
  range.reset();
  ASSERT_TRUE(inserter.finishes());
  EXPECT_EQ(result.load(), 0);
  AsyncCall reader([&] { (void)a.read_begin(); });
  EXPECT_TRUE(reader.finishes());
  a.remove();
  umn_mm_destroy(mm);
  EXPECT_EQ(diags.count(), 0u);
}

// A second insert, arriving after a first insert already published the subscriptions but is still
// waiting for a range started before them, waits too: otherwise its reader would not wait for that range.
TEST(AddressSpace, EveryInsertWaitsForARangeStartedBeforeTheFirstSubscription) {
  DiagCapture diags;
  CallLog log;
  umn_mm* mm = umn_mm_create();
  RecordingNotifier a(1, &log), b(2, &log);
  auto range = std::make_unique<ScopedRange>(mm, 0, 16 * kPage);
  AsyncCall first([&] { EXPECT_EQ(a.insert(mm, 0, kPage), 0); });
  EXPECT_TRUE(first.stays_blocked());  // also gives it time to publish the subscriptions
  AsyncCall second([&] { EXPECT_EQ(b.insert(mm, kPage, kPage), 0); });
  EXPECT_TRUE(second.stays_blocked());
  range.reset();
  ASSERT_TRUE(first.finishes());
  ASSERT_TRUE(second.finishes());
  a.remove();
  b.remove();
  umn_mm_destroy(mm);
}

}  // namespace
