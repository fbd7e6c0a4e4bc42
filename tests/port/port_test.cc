// port_test.cc - kernel-style driver code, ported by the rename step alone, runs correctly on umn.
//
// tests/port/kernel/ holds four small drivers written in the kernel's notifier idioms (drivers.h says
// which driver each imitates). CMake renames them with rename.sed (mmu_ -> umn_, MMU_ -> UMN_,
// struct mm_struct -> struct umn_mm) and compiles them against umn/kcompat.h and umn/kernel_shim.h, with
// no other edit. These tests drive them: racing faults and invalidations with a stale-translation
// detector (race.hpp) on a simulated address space and on umn_mm_process(), and the error paths (error
// pointers from alloc_notifier, from get and from the drivers' own constructors).
#include <gtest/gtest.h>

#include <cerrno>
#include <climits>

#include "race.hpp"
#include "umn/kcompat.h"
#include "support/seed.hpp"

namespace umn::port {
namespace {

// Under TSan, classic notifiers on umn_mm_process() also receive the sanitizer runtime's own munmaps
// (which the hooks cannot tell from the program's, docs/process.md "TSan"): their callbacks then run inside
// the runtime, which records their memory accesses but not their locking, reports a race, and hangs in its
// reporter. So the process-space race runs the classic drivers (gru, svm) in the plain and ASan builds;
// under TSan it runs the interval drivers, and the classic ones race on the simulated space.
#if defined(__SANITIZE_THREAD__)
constexpr bool kClassicOnProcess = false;
#else
constexpr bool kClassicOnProcess = true;
#endif

// The four drivers on one address space (the classic ones only if `classic`), as devices for race().
struct Drivers {
  Drivers(Space& space, void* mirror_owner, bool classic = true) {
    port_set_current_mm(space.mm());
    mirror_dev = mirror_open(space.mm(), space.base(), space.pages(), mirror_owner);
    // The registration covers all but the first and last 2 pages: its invalidate clips every range to
    // the bounds it reads back from notifier.interval_tree.start / .last.
    odp_dev = odp_umem_get(space.mm(), space.base() + 2 * kPage, (space.pages() - 4) * kPage);
    if (!classic) return;
    gru_dev = gru_register_umn_notifier();
    svm_dev = svmm_new();
  }
  ~Drivers() {
    if (!UMN_IS_ERR_OR_NULL(svm_dev)) svmm_fini(svm_dev);
    if (!UMN_IS_ERR_OR_NULL(gru_dev)) gru_drop_umn_notifier(gru_dev);
    if (!UMN_IS_ERR_OR_NULL(odp_dev)) odp_umem_release(odp_dev);
    if (!UMN_IS_ERR_OR_NULL(mirror_dev)) mirror_release(mirror_dev);
    umn_notifier_synchronize();  // gru's free_notifier has run
  }
  [[nodiscard]] bool ok() const {
    return !UMN_IS_ERR_OR_NULL(mirror_dev) && !UMN_IS_ERR_OR_NULL(odp_dev) &&
           (gru_dev == nullptr || !UMN_IS_ERR(gru_dev)) && (svm_dev == nullptr || !UMN_IS_ERR(svm_dev));
  }
  [[nodiscard]] bool classic() const { return gru_dev != nullptr && svm_dev != nullptr; }
  [[nodiscard]] std::vector<Device> devices() const {
    std::vector<Device> devices = {
        {[this](uint64_t a) { return mirror_fault(mirror_dev, a); }, [this] { return mirror_check(mirror_dev); }},
        {[this](uint64_t a) { return odp_fault(odp_dev, a); }, [this] { return odp_check(odp_dev); }}};
    if (gru_dev != nullptr)
      devices.push_back({[this](uint64_t a) { return gru_fault(gru_dev, a); }, [this] { return gru_check(gru_dev); }});
    return devices;
  }
  mirror* mirror_dev = nullptr;
  odp_umem* odp_dev = nullptr;
  gru_mm_struct* gru_dev = nullptr;
  svmm* svm_dev = nullptr;
};

int g_mirror_owner;  // the mirror device's migration-owner cookie

class ScopedSpace {
 public:
  explicit ScopedSpace(Space& space) { g_space = &space; }
  ~ScopedSpace() { g_space = nullptr; }
  ScopedSpace(const ScopedSpace&) = delete;
  ScopedSpace& operator=(const ScopedSpace&) = delete;
};

// On a simulated address space: 2 faulting threads against random UNMAP / CLEAR / PROTECTION_VMA /
// MIGRATE invalidations (some non-blockable, some the mirror's own migrations) leave no stale
// translation in any of the three devices; every classic range start of the svm context had its end.
TEST(Port, RenamedDriversKeepNoStaleTranslationOnASimulatedAddressSpace) {
  const uint64_t seed = umn::test::test_seed(0x9047);
  SimSpace space(64, &g_mirror_owner);
  ScopedSpace current(space);
  Drivers drivers(space, &g_mirror_owner);
  ASSERT_TRUE(drivers.ok() && drivers.classic());
  const RaceResult result = race(space, drivers.devices(), scaled(50000), 2, seed);
  std::printf("[   PORT   ] simulated: %lu invalidations, %lu faults installed, %lu stale\n", result.invalidations,
              result.faults, result.stale);
  EXPECT_EQ(result.stale, 0u);
  EXPECT_GT(result.faults, 0u);
  EXPECT_GT(result.invalidations, 0u);
  EXPECT_TRUE(svmm_balanced(drivers.svm_dev));
}

// On the process's own address space: the same race with real mmap(MAP_FIXED) replacements and
// madvise(MADV_DONTNEED) discards, invalidated by the process hooks. 0 stale translations. (Under TSan
// without the classic drivers: see kClassicOnProcess.)
TEST(Port, RenamedDriversKeepNoStaleTranslationOnTheProcessAddressSpace) {
  const uint64_t seed = umn::test::test_seed(0x9048);
  ProcessSpace space(32);
  ASSERT_TRUE(space.ok());
  ScopedSpace current(space);
  Drivers drivers(space, &g_mirror_owner, kClassicOnProcess);
  ASSERT_TRUE(drivers.ok() && drivers.classic() == kClassicOnProcess);
  const RaceResult result = race(space, drivers.devices(), scaled(5000), 2, seed);
  std::printf("[   PORT   ] process: %lu invalidations, %lu faults installed, %lu stale\n", result.invalidations,
              result.faults, result.stale);
  EXPECT_EQ(result.stale, 0u);
  EXPECT_GT(result.faults, 0u);
  if (drivers.classic()) { EXPECT_TRUE(svmm_balanced(drivers.svm_dev)); }
}

// alloc_notifier's ERR_PTR(-ENOMEM) reaches the driver through get_locked as the kernel's would: gru's
// IS_ERR / ERR_CAST path returns it, nothing is registered, and the next get succeeds and is shared.
TEST(Port, AllocNotifierErrorPointerReachesTheDriver) {
  umn_mm* mm = umn_mm_create();
  port_set_current_mm(mm);
  gru_alloc_failures = 1;
  gru_mm_struct* failed = gru_register_umn_notifier();
  ASSERT_TRUE(UMN_IS_ERR(failed));
  EXPECT_EQ(UMN_PTR_ERR(failed), -ENOMEM);
  gru_mm_struct* gms = gru_register_umn_notifier();
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(gms));
  EXPECT_EQ(gru_register_umn_notifier(), gms);  // the one registration of (gru's ops, mm)
  gru_drop_umn_notifier(gms);
  gru_drop_umn_notifier(gms);
  umn_notifier_synchronize();
  umn_mm_destroy(mm);
}

// A get on a released address space fails with an error pointer that the driver's IS_ERR catches (it
// was NULL + errno before: IS_ERR(NULL) is false, and the driver kept a NULL notifier).
TEST(Port, GetErrorPointerReachesTheDriver) {
  umn_mm* mm = umn_mm_create();
  port_set_current_mm(mm);
  umn_notifier_release(mm);
  gru_mm_struct* gms = gru_register_umn_notifier();
  EXPECT_TRUE(UMN_IS_ERR(gms));
  EXPECT_EQ(UMN_PTR_ERR(gms), -EINVAL);
  umn_mm_destroy(mm);
}

// The drivers' own error pointers from the insert: a 0-length registration and one past the top of the
// space are -EOVERFLOW (through insert_locked and insert), and nothing is left inserted.
TEST(Port, InsertErrorsReachTheDriversAsErrorPointers) {
  umn_mm* mm = umn_mm_create();
  odp_umem* empty = odp_umem_get(mm, 0x10000, 0);
  EXPECT_EQ(UMN_PTR_ERR(empty), -EOVERFLOW);
  odp_umem* wrapping = odp_umem_get(mm, ULONG_MAX & ~(kPage - 1), 2 * kPage);
  EXPECT_EQ(UMN_PTR_ERR(wrapping), -EOVERFLOW);
  mirror* wrapping_mirror = mirror_open(mm, ULONG_MAX & ~(kPage - 1), 2, nullptr);
  EXPECT_EQ(UMN_PTR_ERR(wrapping_mirror), -EOVERFLOW);
  umn_mm_destroy(mm);  // would WARN about notifiers still inserted
}

// nouveau's idiom: __umn_notifier_register makes mm_has_notifiers true (false on a fresh address space);
// teardown calls ->release once, and the unregister after it is still valid.
TEST(Port, UnderscoreRegisterAndMmHasNotifiers) {
  umn_mm* mm = umn_mm_create();
  EXPECT_FALSE(umn_mm_has_notifiers(mm));
  port_set_current_mm(mm);
  svmm* svm = svmm_new();
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(svm));
  EXPECT_TRUE(umn_mm_has_notifiers(mm));
  umn_notifier_release(mm);
  EXPECT_EQ(svmm_releases(svm), 1);
  svmm_fini(svm);  // unregister after teardown: valid, no second ->release (umn.h)
  umn_mm_destroy(mm);
}

// kcompat.h's PTR_ERR_OR_ZERO evaluates its argument once, as the kernel's inline function does: a
// driver's "return PTR_ERR_OR_ZERO(mmu_notifier_get(...));" must call get once (a second call would take
// a second reference, or succeed and return a pointer's low bits as an errno).
TEST(Port, PtrErrOrZeroEvaluatesItsArgumentOnce) {
  int calls = 0;
  auto failing = [&calls] { return ++calls == 1 ? UMN_ERR_PTR(-EIO) : static_cast<void*>(&calls); };
  EXPECT_EQ(PTR_ERR_OR_ZERO(failing()), -EIO);
  EXPECT_EQ(calls, 1);
}

// The error-pointer range is exactly the top MAX_ERRNO (4095) addresses, as <linux/err.h>'s.
TEST(Port, ErrorPointersAreExactlyTheTop4095Addresses) {
  const auto at = [](uintptr_t address) { return reinterpret_cast<const void*>(address); };
  EXPECT_TRUE(IS_ERR(at(UINTPTR_MAX)));             // -1
  EXPECT_TRUE(IS_ERR(at(UINTPTR_MAX - 4094)));      // -4095
  EXPECT_FALSE(IS_ERR(at(UINTPTR_MAX - 4095)));     // -4096: a valid address
  EXPECT_FALSE(IS_ERR(nullptr));
  EXPECT_TRUE(IS_ERR_OR_NULL(nullptr));
  EXPECT_EQ(PTR_ERR(ERR_PTR(-MAX_ERRNO)), -4095);
  EXPECT_EQ(PTR_ERR(ERR_CAST(ERR_PTR(-ENOMEM))), -ENOMEM);
  EXPECT_EQ(PTR_ERR_OR_ZERO(at(4096)), 0);
}

// Drivers guard their notifier code with the Kconfig symbol (radeon's radeon_mn.h: #if
// defined(CONFIG_MMU_NOTIFIER), else a stub returning -ENODEV); the rename makes it CONFIG_UMN_NOTIFIER,
// which kcompat.h must define, or a renamed driver silently compiles its stub.
TEST(Port, RenamedKconfigGuardOfTheNotifierCodeIsEnabled) {
#if defined(CONFIG_UMN_NOTIFIER)
  SUCCEED();
#else
  FAIL() << "CONFIG_UMN_NOTIFIER (the renamed CONFIG_MMU_NOTIFIER) is not defined by umn/kcompat.h";
#endif
}

}  // namespace
}  // namespace umn::port
