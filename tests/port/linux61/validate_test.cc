// validate_test.cc - one-off validation (run.sh; not part of CI): the notifier parts of three real Linux 6.1
// drivers -- lib/test_hmm.c's dmirror, include/rdma/ib_umem_odp.h + drivers/infiniband/hw/mlx5/odp.c's
// invalidate, drivers/misc/sgi-gru's get/put notifier -- extracted unedited at run time, renamed by
// ../rename.sed, compiled against umn/kcompat.h + umn/kernel_shim.h + vshim.h, and run in the port test's
// race (../race.hpp) with its stale-translation detector. The adapt_*.c files are the device sides.
#include <gtest/gtest.h>

#include <cerrno>

#include "race.hpp"
#include "support/seed.hpp"

namespace umn::port {
namespace {

int g_owner;                              // dmirror's mdevice: its own migrations are skipped
std::atomic<unsigned long> g_stale_by[3];  // per device: dmirror, mlx5, gru

struct Real {
  explicit Real(Space& space) {
    port_set_current_mm(space.mm());
    m = mirror_open(space.mm(), space.base(), space.pages(), &g_owner);
    o = odp_umem_get(space.mm(), space.base() + 2 * kPage, (space.pages() - 4) * kPage);
    g = gru_register_umn_notifier();
  }
  ~Real() {
    gru_drop_umn_notifier(g);
    odp_umem_release(o);
    mirror_release(m);
    umn_notifier_synchronize();
  }
  [[nodiscard]] bool ok() const { return !UMN_IS_ERR_OR_NULL(m) && !UMN_IS_ERR_OR_NULL(o) && !UMN_IS_ERR_OR_NULL(g); }
  [[nodiscard]] std::vector<Device> devices() const {
    std::vector<Device> all = {{[this](uint64_t a) { return mirror_fault(m, a); }, [this] { return mirror_check(m); }},
                               {[this](uint64_t a) { return odp_fault(o, a); }, [this] { return odp_check(o); }},
                               {[this](uint64_t a) { return gru_fault(g, a); }, [this] { return gru_check(g); }}};
    for (size_t i = 0; i < all.size(); ++i)
      all[i].check = [check = all[i].check, i] {
        const unsigned long stale = check();
        g_stale_by[i] += stale;
        return stale;
      };
    return all;
  }
  mirror* m;
  odp_umem* o;
  gru_mm_struct* g;
};

void report(const char* space, const RaceResult& r) {
  std::printf("[  REAL61  ] %s: %lu invalidations, %lu faults, %lu stale (dmirror %lu, mlx5 %lu, gru %lu)\n", space,
              r.invalidations, r.faults, r.stale, g_stale_by[0].load(), g_stale_by[1].load(), g_stale_by[2].load());
}

TEST(Real61, NoStaleTranslationOnASimulatedSpace) {
  SimSpace space(64, &g_owner);
  g_space = &space;
  {
    Real real(space);
    ASSERT_TRUE(real.ok());
    const RaceResult r = race(space, real.devices(), 200000, 2, umn::test::test_seed(61));
    report("simulated", r);
    EXPECT_EQ(r.stale, 0u);
  }
  g_space = nullptr;
}

TEST(Real61, NoStaleTranslationOnTheProcessSpace) {
  ProcessSpace space(32);
  g_space = &space;
  {
    Real real(space);
    ASSERT_TRUE(real.ok());
    const RaceResult r = race(space, real.devices(), 20000, 2, umn::test::test_seed(62));
    report("process", r);
    EXPECT_EQ(r.stale, 0u);
  }
  g_space = nullptr;
}

// gru_alloc_notifier's kzalloc fails: its ERR_PTR(-ENOMEM) comes back through mmu_notifier_get_locked and
// gru_register_mmu_notifier's IS_ERR / ERR_CAST.
TEST(Real61, GruAllocFailureIsAnErrorPointer) {
  umn_mm* mm = umn_mm_create();
  port_set_current_mm(mm);
  gru_alloc_failures = 1;
  gru_mm_struct* gms = gru_register_umn_notifier();
  EXPECT_TRUE(UMN_IS_ERR(gms));
  EXPECT_EQ(UMN_PTR_ERR(gms), -ENOMEM);
  gms = gru_register_umn_notifier();
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(gms));
  gru_drop_umn_notifier(gms);
  umn_notifier_synchronize();
  umn_mm_destroy(mm);
}

}  // namespace
}  // namespace umn::port
