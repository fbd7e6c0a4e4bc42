// regcache_test.cc - the registration cache's rules on a simulated address space: hit, miss, merge,
// eviction and their boundaries; invalidation by each event; in use at invalidation; reg failures and
// the -ENOMEM retry; the collision-retry bound; bad input and misuse; destroy with regions in use.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "device.hpp"
#include "sim_cache.hpp"
#include "umn/regcache.h"
#include "umn/umn.h"

namespace {

using umn::test::FakeDevice;
using umn::test::kFakeOps;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 32;  // a simulated address

using umn::test::at;

// Records diagnostics instead of aborting.
class Diagnostics {
 public:
  Diagnostics() { umn_set_diagnostic_hook(&Diagnostics::hook, this); }
  ~Diagnostics() { umn_set_diagnostic_hook(nullptr, nullptr); }
  std::vector<std::string> calls;

 private:
  static void hook(void* self, const char* call, const char*) { static_cast<Diagnostics*>(self)->calls.emplace_back(call); }
};

class RegCacheSim : public umn::test::SimCacheTest {};

// Two gets returned the same registration. Hits return per-get handles (include/umn/regcache.h,
// "Parked references"), so a registration is known by its fields, not by the pointer.
bool same_registration(const umn_regcache_region* a, const umn_regcache_region* b) {
  return a->start == b->start && a->end == b->end && a->handle == b->handle;
}

// A second get of the same range is a hit: same region, no second reg.
TEST_F(RegCacheSim, HitReusesRegionWithoutReg) {
  umn_regcache_region* first = get(kBase, 4 * kPage);
  umn_regcache_put(rc_, first);
  umn_regcache_region* second = get(kBase + kPage, kPage);
  EXPECT_TRUE(same_registration(second, first));
  EXPECT_EQ(device_.reg_count(), 1u);
  umn_regcache_put(rc_, second);
  EXPECT_EQ(stats().hits, 1u);
  EXPECT_EQ(stats().misses, 1u);
}

// Requests are aligned outward to the page (alignment 0).
TEST_F(RegCacheSim, RequestIsAlignedOutwardToThePage) {
  umn_regcache_region* region = get(kBase + 1, 10);
  EXPECT_EQ(region->start, kBase);
  EXPECT_EQ(region->end, kBase + kPage);
  EXPECT_NE(region->handle, nullptr);
  umn_regcache_put(rc_, region);
}

// A larger power-of-two alignment widens the region.
TEST_F(RegCacheSim, AlignmentParameterWidensTheRegion) {
  create({0, 0, 64 * 1024, 0});
  umn_regcache_region* region = get(kBase + 5 * kPage, kPage);
  EXPECT_EQ(region->start, kBase);
  EXPECT_EQ(region->end, kBase + 64 * 1024);
  umn_regcache_put(rc_, region);
}

// Hit boundaries: last byte inside hits; one page before start and one at end are misses that do not
// merge with the adjacent region.
TEST_F(RegCacheSim, HitBoundariesAtStartMinusOneAndEnd) {
  get_put(kBase, 4 * kPage);
  get_put(kBase + 4 * kPage - 1, 1);
  EXPECT_EQ(device_.reg_count(), 1u);
  get_put(kBase - 1, 1);
  get_put(kBase + 4 * kPage, 1);
  EXPECT_EQ(device_.reg_count(), 3u);
  EXPECT_EQ(stats().regions, 3u);
  EXPECT_EQ(device_.dereg_count(), 0u);  // adjacent regions do not merge
}

// A request overlapping a cached region registers the union, and the overlapped region (unused) is
// deregistered.
TEST_F(RegCacheSim, OverlappingMissMergesIntoTheUnion) {
  get_put(kBase, 2 * kPage);
  umn_regcache_region* merged = get(kBase + kPage, 2 * kPage);
  EXPECT_EQ(merged->start, kBase);
  EXPECT_EQ(merged->end, kBase + 3 * kPage);
  EXPECT_EQ(device_.dereg_count(), 1u);
  EXPECT_EQ(stats().regions, 1u);
  EXPECT_EQ(stats().bytes, 3 * kPage);
  umn_regcache_put(rc_, merged);
}

// A merged-away region that is held stays registered until its put.
TEST_F(RegCacheSim, MergedAwayRegionHeldStaysRegisteredUntilPut) {
  umn_regcache_region* held = get(kBase, 2 * kPage);
  umn_regcache_region* merged = get(kBase + kPage, 2 * kPage);
  EXPECT_FALSE(same_registration(merged, held));
  EXPECT_EQ(device_.dereg_count(), 0u);
  umn_regcache_put(rc_, held);
  EXPECT_EQ(device_.dereg_count(), 1u);
  umn_regcache_put(rc_, merged);
}

// An invalidation of one byte's page drops the region: the next get registers again; dereg is deferred
// out of the notifier to that get.
TEST_F(RegCacheSim, InvalidationDropsRegionAndDeregIsDeferred) {
  get_put(kBase, 4 * kPage);
  invalidate(kBase + 3 * kPage, kBase + 3 * kPage + 1);
  EXPECT_EQ(device_.dereg_count(), 0u);
  EXPECT_EQ(device_.invalidates.load(), 1);
  get_put(kBase, 4 * kPage);
  EXPECT_EQ(device_.dereg_count(), 1u);
  EXPECT_EQ(device_.reg_count(), 2u);
  EXPECT_EQ(stats().invalidations, 1u);
}

// Invalidation boundaries: ranges ending at start or starting at end leave the region cached.
TEST_F(RegCacheSim, InvalidationBoundaries) {
  get_put(kBase, 4 * kPage);
  invalidate(kBase - kPage, kBase);
  invalidate(kBase + 4 * kPage, kBase + 5 * kPage);
  get_put(kBase, 4 * kPage);
  EXPECT_EQ(device_.reg_count(), 1u);
  invalidate(kBase - kPage, kBase + 1);
  get_put(kBase, 4 * kPage);
  EXPECT_EQ(device_.reg_count(), 2u);
}

// Each event that changes translations invalidates.
class RegCacheEvent : public RegCacheSim, public ::testing::WithParamInterface<umn_notifier_event> {};
TEST_P(RegCacheEvent, EventInvalidates) {
  get_put(kBase, kPage);
  invalidate(kBase, kBase + kPage, GetParam());
  get_put(kBase, kPage);
  EXPECT_EQ(device_.reg_count(), 2u);
}
INSTANTIATE_TEST_SUITE_P(Events, RegCacheEvent,
                         ::testing::Values(UMN_NOTIFY_UNMAP, UMN_NOTIFY_CLEAR, UMN_NOTIFY_PROTECTION_VMA,
                                           UMN_NOTIFY_MIGRATE, UMN_NOTIFY_EXCLUSIVE));

// PROTECTION_PAGE (what fork announces) and SOFT_DIRTY keep the region.
TEST_F(RegCacheSim, ProtectionPageAndSoftDirtyKeepTheRegion) {
  get_put(kBase, kPage);
  invalidate(kBase, kBase + kPage, UMN_NOTIFY_PROTECTION_PAGE);
  invalidate(kBase, kBase + kPage, UMN_NOTIFY_SOFT_DIRTY);
  get_put(kBase, kPage);
  EXPECT_EQ(device_.reg_count(), 1u);
  EXPECT_EQ(device_.invalidates.load(), 0);
}

// A region in use at invalidation stays registered for its holder, is never returned again, and is
// deregistered at the holder's put; ops->invalidate ran once although it was invalidated twice.
TEST_F(RegCacheSim, InUseAtInvalidationStaysRegisteredUntilLastPut) {
  umn_regcache_region* held = get(kBase, kPage);
  invalidate(kBase, kBase + kPage);
  invalidate(kBase, kBase + kPage);
  EXPECT_EQ(device_.invalidates.load(), 1);
  umn_regcache_region* fresh = get(kBase, kPage);
  EXPECT_FALSE(same_registration(fresh, held));
  EXPECT_EQ(device_.dereg_count(), 0u);
  umn_regcache_put(rc_, held);
  ASSERT_EQ(device_.dereg_count(), 1u);
  EXPECT_EQ(device_.deregs[0].first, kBase);
  umn_regcache_put(rc_, fresh);
}

// max_regions: at the limit nothing is evicted; past it the least recently released unused region is
// (released before the previous miss; regions released between two misses are equally recent).
TEST_F(RegCacheSim, EvictionPastMaxRegionsDropsLeastRecentlyReleased) {
  create({2, 0, 0, 0});
  get_put(kBase, kPage);
  get_put(kBase + 2 * kPage, kPage);
  EXPECT_EQ(stats().evictions, 0u);
  get_put(kBase + 4 * kPage, kPage);
  EXPECT_EQ(stats().evictions, 1u);
  ASSERT_EQ(device_.dereg_count(), 1u);
  EXPECT_EQ(device_.deregs[0].first, kBase);
  EXPECT_EQ(stats().regions, 2u);
}

// max_bytes: exactly at the limit keeps everything; one page more evicts.
TEST_F(RegCacheSim, EvictionPastMaxBytes) {
  create({0, 3 * kPage, 0, 0});
  get_put(kBase, 2 * kPage);
  get_put(kBase + 4 * kPage, kPage);
  EXPECT_EQ(stats().evictions, 0u);
  get_put(kBase + 8 * kPage, kPage);
  EXPECT_EQ(stats().evictions, 1u);
  EXPECT_LE(stats().bytes, 3 * kPage);
}

// Regions in use are never evicted, even past the limit.
TEST_F(RegCacheSim, InUseRegionsAreNotEvicted) {
  create({1, 0, 0, 0});
  umn_regcache_region* a = get(kBase, kPage);
  umn_regcache_region* b = get(kBase + 2 * kPage, kPage);
  EXPECT_EQ(device_.dereg_count(), 0u);
  EXPECT_EQ(stats().regions, 2u);
  umn_regcache_put(rc_, a);
  umn_regcache_put(rc_, b);
}

// 0 means unlimited.
TEST_F(RegCacheSim, ZeroLimitsMeanUnlimited) {
  for (uint64_t i = 0; i < 100; ++i) get_put(kBase + 2 * i * kPage, kPage);
  EXPECT_EQ(stats().regions, 100u);
  EXPECT_EQ(stats().evictions, 0u);
}

// A reg failure is returned and nothing is cached or deregistered.
TEST_F(RegCacheSim, RegFailureIsReturnedAndNothingIsCached) {
  device_.fail_with = -EFAULT;
  device_.fail_times = 1;
  umn_regcache_region* region = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase), kPage, &region), -EFAULT);
  EXPECT_EQ(stats().regions, 0u);
  EXPECT_EQ(device_.dereg_count(), 0u);
  get_put(kBase, kPage);
  EXPECT_EQ(device_.reg_count(), 1u);
}

// -ENOMEM from reg evicts every unused region and retries once.
TEST_F(RegCacheSim, RegEnomemEvictsUnusedAndRetriesOnce) {
  get_put(kBase, kPage);
  get_put(kBase + 2 * kPage, kPage);
  umn_regcache_region* held = get(kBase + 4 * kPage, kPage);
  device_.fail_with = -ENOMEM;
  device_.fail_times = 1;
  umn_regcache_region* region = get(kBase + 8 * kPage, kPage);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(stats().evictions, 2u);
  EXPECT_EQ(device_.dereg_count(), 2u);
  umn_regcache_put(rc_, region);
  device_.fail_times = 2;  // a second -ENOMEM is returned
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase + 16 * kPage), kPage, &region), -ENOMEM);
  umn_regcache_put(rc_, held);
}

// A device may refuse the union of a request and the valid regions it overlaps (io_uring refuses
// buffers over 1 GiB): the get registers the request alone instead of failing.
TEST_F(RegCacheSim, RegRefusingTheMergedUnionRegistersTheRequestAlone) {
  get_put(kBase, 4 * kPage);
  device_.fail_with = -EFAULT;
  device_.fail_times = 1;  // the union [kBase, kBase + 6 pages)
  umn_regcache_region* region = get(kBase + 2 * kPage, 4 * kPage);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->start, kBase + 2 * kPage);
  EXPECT_EQ(region->end, kBase + 6 * kPage);
  umn_regcache_put(rc_, region);
  // A request that merges nothing still fails with reg's error.
  device_.fail_with = -EFAULT;
  device_.fail_times = 1;
  umn_regcache_region* other = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase + 64 * kPage), kPage, &other), -EFAULT);
}

// An invalidation racing with reg (here: inside it) makes the miss deregister and register again.
TEST_F(RegCacheSim, InvalidationDuringRegRetries) {
  int races = 1;
  device_.during_reg = [&](umn_regcache_region* region) {
    if (races-- > 0) invalidate(region->start, region->end);
  };
  umn_regcache_region* region = get(kBase, kPage);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(stats().retries, 1u);
  EXPECT_EQ(device_.reg_count(), 2u);
  EXPECT_EQ(device_.dereg_count(), 1u);
  EXPECT_EQ(device_.invalidates.load(), 0);  // it was never valid
  umn_regcache_put(rc_, region);
}

// When every registration races with an invalidation, get gives up with -EBUSY after the bound.
TEST_F(RegCacheSim, EndlessRacesFailWithEbusyAfterTheBound) {
  device_.during_reg = [&](umn_regcache_region* region) { invalidate(region->start, region->end); };
  umn_regcache_region* region = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase), kPage, &region), -EBUSY);
  EXPECT_EQ(stats().retries, uint64_t{UMN_REGCACHE_MAX_RETRIES});
  EXPECT_EQ(device_.reg_count(), device_.dereg_count());
  EXPECT_EQ(stats().regions, 0u);
}

// Bad input is -EINVAL and changes nothing; the NULL handles and the ops without dereg are diagnosed
// (a WARN: regcache.h lists them among the bad input, base/check.hpp), the bad values are not.
TEST_F(RegCacheSim, BadInputIsEinvalAndChangesNothing) {
  Diagnostics diagnostics;
  umn_regcache_region* region = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase), 0, &region), -EINVAL);
  EXPECT_EQ(umn_regcache_get(rc_, at(UINT64_MAX - 10), 100, &region), -EINVAL);
  EXPECT_EQ(umn_regcache_get(rc_, at(UINT64_MAX - 10), 5, &region), -EINVAL);  // aligned end wraps
  EXPECT_EQ(umn_regcache_get(nullptr, at(kBase), 1, &region), -EINVAL);
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase), 1, nullptr), -EINVAL);
  umn_regcache* other = nullptr;
  umn_regcache_params flags{0, 0, 0, 1};
  EXPECT_EQ(umn_regcache_create(mm_, &flags, &kFakeOps, &device_, &other), -EINVAL);
  umn_regcache_params three{0, 0, 3, 0};
  EXPECT_EQ(umn_regcache_create(mm_, &three, &kFakeOps, &device_, &other), -EINVAL);
  umn_regcache_ops no_dereg = {&FakeDevice::reg, nullptr, nullptr};
  EXPECT_EQ(umn_regcache_create(mm_, nullptr, &no_dereg, &device_, &other), -EINVAL);
  EXPECT_EQ(umn_regcache_create(nullptr, nullptr, &kFakeOps, &device_, &other), -EINVAL);
  EXPECT_EQ(other, nullptr);
  EXPECT_EQ(diagnostics.calls, (std::vector<std::string>{"umn_regcache_get", "umn_regcache_get", "umn_regcache_create",
                                                         "umn_regcache_create"}));
  EXPECT_EQ(device_.reg_count(), 0u);
  EXPECT_EQ(stats().regions, 0u);
}

// The NULL handles of create and get are bad input, not aborting misuse: with the default diagnostic hook
// even a debug build goes on, and each call answers -EINVAL.
void create_and_get_with_null_handles_and_exit(umn_mm* mm) {
  unsetenv("UMN_DIAG");                       // the default hook, which aborts on misuse in debug builds
  umn_set_diagnostic_hook(nullptr, nullptr);
  umn_regcache* rc = nullptr;
  umn_regcache_region* region = nullptr;
  const bool refused = umn_regcache_create(nullptr, nullptr, &kFakeOps, nullptr, &rc) == -EINVAL &&
                       umn_regcache_create(mm, nullptr, &kFakeOps, nullptr, nullptr) == -EINVAL &&
                       umn_regcache_get(nullptr, reinterpret_cast<void*>(kBase), 1, &region) == -EINVAL;
  std::exit(refused && rc == nullptr && region == nullptr ? 0 : 1);
}

TEST_F(RegCacheSim, NullHandlesOfCreateAndGetAreEinvalWithoutAborting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(create_and_get_with_null_handles_and_exit(mm_), ::testing::ExitedWithCode(0),
              "warning in umn_regcache_create");
}

// A put without a matching get is diagnosed and ignored: the region stays cached and usable.
TEST_F(RegCacheSim, SecondPutIsDiagnosed) {
  Diagnostics diagnostics;
  umn_regcache_region* region = get(kBase, kPage);
  umn_regcache_put(rc_, region);
  umn_regcache_put(rc_, region);
  ASSERT_EQ(diagnostics.calls.size(), 1u);
  EXPECT_EQ(diagnostics.calls[0], "umn_regcache_put");
  umn_regcache_region* again = get(kBase, kPage);
  EXPECT_TRUE(same_registration(again, region));
  umn_regcache_put(rc_, again);
  EXPECT_EQ(device_.dereg_count(), 0u);
}

// Flush deregisters unused and invalid regions now and keeps those in use.
TEST_F(RegCacheSim, FlushDeregistersUnusedAndKeepsInUse) {
  get_put(kBase, kPage);
  umn_regcache_region* held = get(kBase + 2 * kPage, kPage);
  get_put(kBase + 4 * kPage, kPage);
  invalidate(kBase + 4 * kPage, kBase + 5 * kPage);
  umn_regcache_flush(rc_);
  EXPECT_EQ(device_.dereg_count(), 2u);
  EXPECT_EQ(stats().regions, 1u);
  EXPECT_EQ(stats().evictions, 0u);  // flush is not eviction
  umn_regcache_region* again = get(kBase + 2 * kPage, kPage);
  EXPECT_TRUE(same_registration(again, held));
  umn_regcache_put(rc_, held);
  umn_regcache_put(rc_, again);
}

// Destroy with a region in use is diagnosed; the region stays registered until its put, which
// deregisters it and frees what remains (ASan checks that nothing leaks).
TEST_F(RegCacheSim, DestroyWithRegionInUseIsDiagnosedAndPutFreesTheRest) {
  Diagnostics diagnostics;
  umn_regcache_region* held = get(kBase, kPage);
  get_put(kBase + 2 * kPage, kPage);
  umn_regcache_destroy(rc_);
  umn_regcache* destroyed = rc_;
  rc_ = nullptr;
  ASSERT_EQ(diagnostics.calls.size(), 1u);
  EXPECT_EQ(diagnostics.calls[0], "umn_regcache_destroy");
  EXPECT_EQ(device_.dereg_count(), 1u);
  EXPECT_NE(held->handle, nullptr);
  umn_regcache_put(destroyed, held);
  EXPECT_EQ(device_.dereg_count(), 2u);
}

// After the address space is released every region is invalid and gets fail with -EINVAL.
TEST_F(RegCacheSim, ReleaseInvalidatesEverything) {
  get_put(kBase, kPage);
  umn_notifier_release(mm_);
  EXPECT_EQ(device_.invalidates.load(), 1);
  umn_regcache_region* region = nullptr;
  EXPECT_EQ(umn_regcache_get(rc_, at(kBase), kPage, &region), -EINVAL);
}

}  // namespace
