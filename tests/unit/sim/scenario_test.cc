// scenario_test.cc - the multi-device scenario end to end, small: every mode runs its invalidations
// with no stale access, and measures its one-device reference alongside.
#include "users/sim/scenario.hpp"

#include <gtest/gtest.h>

namespace umn::sim {
namespace {

using namespace std::chrono_literals;

class ScenarioModes : public ::testing::TestWithParam<DriverMode> {};

// Each mode completes the scenario, measures every invalidation and reads nothing stale.
TEST_P(ScenarioModes, RunsWithoutStaleAccesses) {
  ScenarioConfig config;
  config.devices = 4;
  config.mode = GetParam();
  config.ranges = 4;
  config.pages_per_range = 4;
  config.invalidations = 60;
  const ScenarioResult result = run_scenario(config);
  EXPECT_EQ(result.latency.count, 60u);
  EXPECT_EQ(result.stale, 0u);
  EXPECT_EQ(result.fault_timeouts, 0u);
  EXPECT_GT(result.faults, 0u);
  if (GetParam() == DriverMode::kTwoPass) { EXPECT_GT(result.deferred, 0u); }
}

INSTANTIATE_TEST_SUITE_P(Modes, ScenarioModes,
                         ::testing::Values(DriverMode::kSinglePass, DriverMode::kTwoPass, DriverMode::kMultiplexed));

// Every measured invalidation is paired with one of the reference range; one device's invalidation can
// never beat the device's own TLB latency (a lower bound: the hardware never completes early).
TEST(ScenarioReference, IsMeasuredOncePerInvalidationAndNotBelowTheTlbLatency) {
  ScenarioConfig config;
  config.devices = 2;
  config.ranges = 2;
  config.pages_per_range = 4;
  config.invalidations = 40;
  config.device.tlb.latency = 200us;
  const ScenarioResult result = run_scenario(config);
  EXPECT_EQ(result.reference.count, 40u);
  EXPECT_GE(result.reference.p50_us, 200.0);
  EXPECT_GE(result.hardware_tlb_p50_us, 200.0);
  EXPECT_EQ(result.stale, 0u);
}

// Without the reference, nothing is measured for it.
TEST(ScenarioReference, OffMeasuresNothing) {
  ScenarioConfig config;
  config.devices = 1;
  config.ranges = 1;
  config.invalidations = 10;
  config.reference = false;
  const ScenarioResult result = run_scenario(config);
  EXPECT_EQ(result.latency.count, 10u);
  EXPECT_EQ(result.reference.count, 0u);
}

// Merging runs pools their samples (not their percentiles) and sums their counters.
TEST(Merge, PoolsSamplesAndSumsCounters) {
  ScenarioResult a, b;
  a.devices = b.devices = 4;
  a.mode = b.mode = DriverMode::kTwoPass;
  a.samples_us = {1, 2, 3};
  b.samples_us = {10, 20, 30, 40, 50};
  a.reference_samples_us = {5};
  b.reference_samples_us = {6, 7};
  a.deferred = 3;
  b.deferred = 5;
  a.lock_wait_p99_us = 9;
  b.lock_wait_p99_us = 4;
  a.hardware_tlb_p50_us = 60;
  b.hardware_tlb_p50_us = 70;
  const ScenarioResult parts[] = {a, b};
  const ScenarioResult merged = merge(parts);
  EXPECT_EQ(merged.devices, 4u);
  EXPECT_EQ(merged.mode, DriverMode::kTwoPass);
  EXPECT_EQ(merged.latency.count, 8u);
  EXPECT_EQ(merged.latency.p50_us, 10);  // rank 3 of {1 2 3 10 20 30 40 50}
  EXPECT_EQ(merged.reference.count, 3u);
  EXPECT_EQ(merged.reference.p50_us, 6);
  EXPECT_EQ(merged.deferred, 8u);
  EXPECT_EQ(merged.lock_wait_p99_us, 9);
  EXPECT_DOUBLE_EQ(merged.hardware_tlb_p50_us, 65);
}

// Percentiles of a known set.
TEST(Summarize, PicksRanksOfSortedSamples) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; i--) samples.push_back(i);
  const LatencySummary summary = summarize(samples);
  EXPECT_EQ(summary.p50_us, 50);
  EXPECT_EQ(summary.p99_us, 99);
  EXPECT_EQ(summary.max_us, 100);
  EXPECT_DOUBLE_EQ(summary.mean_us, 50.5);
}

}  // namespace
}  // namespace umn::sim
