// core_test.hpp - what the core unit tests share: the test doubles' names, page-size constants, and a
// fixture owning one simulated address space, a call log and a diagnostic capture.
// Lifetime: the address space is created in SetUp and destroyed in TearDown; notifiers declared in a test
// body are removed (by their destructors) before TearDown runs.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "support/async_call.hpp"
#include "support/diag_capture.hpp"
#include "support/recording_notifier.hpp"
#include "umn/umn.h"

namespace umn::test {

using Mode = RecordingNotifier::Mode;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMax = UINT64_MAX;

class AddressSpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mm_ = umn_mm_create();
    ASSERT_NE(mm_, nullptr);
  }
  void TearDown() override { umn_mm_destroy(mm_); }

  umn_mm* mm_ = nullptr;
  CallLog log_;
  DiagCapture diags_;
};

}  // namespace umn::test
