// port_negative_control_test.cc - the port test's detector catches a broken driver: the drivers built
// with PORT_BUG_SKIP_RETRY (their fault paths install without mmu_interval_read_retry, or, for gru,
// without its range-sequence check) must leave stale translations in the same race that finds none in
// the correct build (port_test.cc).
#include <gtest/gtest.h>

#include <chrono>

#include "race.hpp"
#include "support/seed.hpp"

namespace umn::port {
namespace {

// Rounds of the simulated race with one buggy device alone, until one leaves stale translations or 10 s
// have passed. A round finds the bug only if its two threads really overlap: on a loaded machine 20
// rounds (15 ms) once ran with the threads taking turns, and found none (fresh-clone CI, Dec 6 2026).
// Return: the stale translations of the first round that left some, or 0.
unsigned long stale_in_rounds(SimSpace& space, const Device& device, uint64_t seed) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  unsigned long stale = 0;
  for (uint64_t round = 0; stale == 0 && std::chrono::steady_clock::now() < deadline; ++round)
    stale = race(space, {device}, 5000, 2, seed + round).stale;
  return stale;
}

class ScopedSpace {
 public:
  explicit ScopedSpace(Space& space) { g_space = &space; }
  ~ScopedSpace() { g_space = nullptr; }
  ScopedSpace(const ScopedSpace&) = delete;
  ScopedSpace& operator=(const ScopedSpace&) = delete;
};

TEST(PortNegativeControl, MirrorWithoutReadRetryLeavesStaleTranslations) {
  const uint64_t seed = umn::test::test_seed(0x9049);
  SimSpace space(16, nullptr);
  ScopedSpace current(space);
  mirror* buggy = mirror_open(space.mm(), space.base(), space.pages(), nullptr);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(buggy));
  const unsigned long stale = stale_in_rounds(
      space, {[buggy](uint64_t a) { return mirror_fault(buggy, a); }, [buggy] { return mirror_check(buggy); }}, seed);
  std::printf("[   PORT   ] negative control (mirror): %lu stale\n", stale);
  EXPECT_GT(stale, 0u) << "the stale-translation detector missed a fault path without read_retry";
  mirror_release(buggy);
}

TEST(PortNegativeControl, OdpWithoutReadRetryLeavesStaleTranslations) {
  const uint64_t seed = umn::test::test_seed(0x904a);
  SimSpace space(16, nullptr);
  ScopedSpace current(space);
  odp_umem* buggy = odp_umem_get(space.mm(), space.base(), space.pages() * kPage);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(buggy));
  const unsigned long stale = stale_in_rounds(
      space, {[buggy](uint64_t a) { return odp_fault(buggy, a); }, [buggy] { return odp_check(buggy); }}, seed);
  std::printf("[   PORT   ] negative control (odp): %lu stale\n", stale);
  EXPECT_GT(stale, 0u) << "the stale-translation detector missed a fault path without read_retry";
  odp_umem_release(buggy);
}

TEST(PortNegativeControl, GruWithoutRangeSequenceCheckLeavesStaleTranslations) {
  const uint64_t seed = umn::test::test_seed(0x904b);
  SimSpace space(16, nullptr);
  ScopedSpace current(space);
  port_set_current_mm(space.mm());
  gru_mm_struct* buggy = gru_register_umn_notifier();
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(buggy));
  const unsigned long stale = stale_in_rounds(
      space, {[buggy](uint64_t a) { return gru_fault(buggy, a); }, [buggy] { return gru_check(buggy); }}, seed);
  std::printf("[   PORT   ] negative control (gru): %lu stale\n", stale);
  EXPECT_GT(stale, 0u) << "the stale-translation detector missed a fault path without the collision check";
  gru_drop_umn_notifier(buggy);
  umn_notifier_synchronize();
}

}  // namespace
}  // namespace umn::port
