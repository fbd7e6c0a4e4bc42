// regcache_cxx_test.cc - umn::RegCache: RAII handles put on destruction, moves transfer the reference,
// errors come back as std::error_code, and a cache destroyed before its handles keeps their regions
// (and the callables behind dereg) alive until the handles go.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "umn/address_space.hpp"
#include "umn/regcache.hpp"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = uint64_t{1} << 32;
const void* at(uint64_t addr) { return reinterpret_cast<const void*>(addr); }

struct Counts {
  int regs = 0, deregs = 0, invalidates = 0;
};

umn::RegCache::Ops counting_ops(Counts& counts) {
  return {[&counts](umn_regcache_region& region) {
            region.handle = reinterpret_cast<void*>(region.start);
            counts.regs++;
            return 0;
          },
          [&counts](umn_regcache_region&) { counts.deregs++; },
          [&counts](umn_regcache_region&) { counts.invalidates++; }};
}

// A handle puts its region when it goes out of scope; a second get hits.
TEST(RegCacheCxx, HandlePutsOnDestructionAndSecondGetHits) {
  auto mm = umn::AddressSpace::create().value();
  Counts counts;
  auto cache = umn::RegCache::create(mm, {}, counting_ops(counts)).value();
  {
    auto handle = cache.get(at(kBase + 1), 10).value();
    EXPECT_EQ(handle.start(), kBase);
    EXPECT_EQ(handle.end(), kBase + kPage);
    EXPECT_EQ(handle.handle(), at(kBase));
  }
  auto again = cache.get(at(kBase), kPage).value();
  EXPECT_EQ(counts.regs, 1);
  EXPECT_EQ(cache.stats().hits, 1u);
  mm.invalidate(kBase, kBase + kPage);
  EXPECT_EQ(counts.invalidates, 1);
  EXPECT_EQ(counts.deregs, 0);  // held
  again.reset();
  EXPECT_EQ(counts.deregs, 1);  // the last put of an invalidated region deregisters it
  EXPECT_FALSE(again);
}

// Moving a handle transfers the reference: exactly one put happens.
TEST(RegCacheCxx, MovedHandleReleasesOnce) {
  auto mm = umn::AddressSpace::create().value();
  Counts counts;
  auto cache = umn::RegCache::create(mm, {}, counting_ops(counts)).value();
  std::vector<umn::RegCache::Handle> handles;
  handles.push_back(cache.get(at(kBase), kPage).value());
  umn::RegCache::Handle moved = std::move(handles[0]);
  EXPECT_FALSE(handles[0]);
  EXPECT_TRUE(moved);
  handles.clear();
  mm.invalidate(kBase, kBase + kPage);
  EXPECT_EQ(counts.deregs, 0);
  moved = umn::RegCache::Handle();
  EXPECT_EQ(counts.deregs, 1);
}

// Errors are std::error_codes: bad input, missing callables, reg failures.
TEST(RegCacheCxx, ErrorsAreErrorCodes) {
  auto mm = umn::AddressSpace::create().value();
  Counts counts;
  auto cache = umn::RegCache::create(mm, {}, counting_ops(counts)).value();
  EXPECT_EQ(cache.get(at(kBase), 0).error(), std::errc::invalid_argument);
  EXPECT_EQ(umn::RegCache::create(mm, {}, {}).error(), std::errc::invalid_argument);
  umn::RegCache::Ops failing = counting_ops(counts);
  failing.reg = [](umn_regcache_region&) { return -EFAULT; };
  auto failing_cache = umn::RegCache::create(mm, {}, failing).value();
  EXPECT_EQ(failing_cache.get(at(kBase), kPage).error(), std::errc::bad_address);
}

// A handle outliving its RegCache (misuse, diagnosed) stays valid; its release deregisters through the
// callables, which the handle's registration kept alive (ASan: no use after free, no leak).
TEST(RegCacheCxx, HandleOutlivingItsCacheDeregistersOnRelease) {
  umn_set_diagnostic_hook([](void*, const char*, const char*) {}, nullptr);
  auto mm = umn::AddressSpace::create().value();
  Counts counts;
  umn::RegCache::Handle handle;
  {
    auto cache = umn::RegCache::create(mm, {}, counting_ops(counts)).value();
    handle = cache.get(at(kBase), kPage).value();
  }
  EXPECT_EQ(counts.deregs, 0);
  EXPECT_EQ(handle.handle(), at(kBase));
  handle.reset();
  EXPECT_EQ(counts.deregs, 1);
  umn_set_diagnostic_hook(nullptr, nullptr);
}

}  // namespace
