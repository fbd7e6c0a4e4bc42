// port_negative_control_test.cc - the port test's detector catches a broken driver: the mirror driver
// built with PORT_BUG_SKIP_RETRY (its fault path installs without mmu_interval_read_retry) must leave
// stale translations in the same race that finds none in the correct build (port_test.cc).
#include <gtest/gtest.h>

#include "race.hpp"
#include "support/seed.hpp"

namespace umn::port {
namespace {

// Up to 20 rounds of the simulated race with the buggy mirror alone; at least one stale translation.
TEST(PortNegativeControl, MirrorWithoutReadRetryLeavesStaleTranslations) {
  const uint64_t seed = umn::test::test_seed(0x9049);
  SimSpace space(16, nullptr);
  g_space = &space;
  mirror* buggy = mirror_open(space.mm(), space.base(), space.pages(), nullptr);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(buggy));
  const std::vector<Device> devices = {
      {[buggy](uint64_t a) { return mirror_fault(buggy, a); }, [buggy] { return mirror_check(buggy); }}};
  unsigned long stale = 0;
  for (int round = 0; round < 20 && stale == 0; ++round)
    stale = race(space, devices, 5000, 2, seed + static_cast<uint64_t>(round)).stale;
  std::printf("[   PORT   ] negative control: %lu stale\n", stale);
  EXPECT_GT(stale, 0u) << "the stale-translation detector missed a fault path without read_retry";
  mirror_release(buggy);
  g_space = nullptr;
}

}  // namespace
}  // namespace umn::port
