// cxx_test.cc - the C++ classic API: umn::Notifier (virtual callbacks, Callbacks mask, RAII) and
// umn::Registration<Ops> (RAII get/put, one shared Ops per address space, no container_of).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "classic_support.hpp"
#include "umn/umn.hpp"

namespace umn::test {
namespace {

class Recorder : public Notifier {
 public:
  explicit Recorder(Callbacks callbacks) : Notifier(callbacks) {}
  ~Recorder() override { unregister(); }
  std::atomic<int> releases{0}, starts{0}, ends{0}, youngs{0}, archs{0};
  bool fail_start = false;
  bool young = false;

 protected:
  void release() noexcept override { releases++; }
  bool invalidate_range_start(const Range& range) noexcept override {
    starts++;
    return !(fail_start && !range.blockable());
  }
  void invalidate_range_end(const Range&) noexcept override { ends++; }
  bool clear_young(uint64_t, uint64_t) noexcept override {
    youngs++;
    return young;
  }
  bool test_young(uint64_t) noexcept override {
    youngs++;
    return young;
  }
  void arch_invalidate_secondary_tlbs(uint64_t, uint64_t) noexcept override { archs++; }
};

// Virtual callbacks receive invalidations, young queries and release; the destructor unregisters.
TEST(CxxNotifier, VirtualCallbacksAndRaii) {
  auto mm = AddressSpace::create().value();
  {
    Recorder rec(Callbacks::kRelease | Callbacks::kInvalidateRange | Callbacks::kYoung);
    ASSERT_FALSE(rec.register_with(mm));
    EXPECT_TRUE(rec.registered());
    EXPECT_EQ(rec.mm(), mm.get());
    mm.invalidate(0x1000, 0x2000);
    rec.young = true;
    EXPECT_EQ(umn_notifier_clear_flush_young(mm.get(), 0, 0x1000), 1);  // default: clear_young
    EXPECT_EQ(umn_notifier_test_young(mm.get(), 0), 1);
    EXPECT_EQ(rec.starts, 1);
    EXPECT_EQ(rec.ends, 1);
    EXPECT_EQ(rec.youngs, 2);
    EXPECT_EQ(rec.register_with(mm), std::errc::invalid_argument);  // already registered
    rec.unregister();
    EXPECT_EQ(rec.releases, 1);
    EXPECT_FALSE(rec.registered());
    ASSERT_FALSE(rec.register_with(mm));
  }  // destructor: unregister, second release
  mm.invalidate(0x1000, 0x2000);
}

// Only the callbacks named in the mask are called.
TEST(CxxNotifier, MaskSelectsCallbacks) {
  auto mm = AddressSpace::create().value();
  Recorder rec(Callbacks::kInvalidateRangeStart);
  ASSERT_FALSE(rec.register_with(mm));
  mm.invalidate(0x1000, 0x2000);
  EXPECT_EQ(umn_notifier_test_young(mm.get(), 0), 0);
  rec.unregister();
  EXPECT_EQ(rec.starts, 1);
  EXPECT_EQ(rec.ends + rec.youngs + rec.releases, 0);
}

// A start-only notifier may fail a non-blockable invalidation: EAGAIN reaches the caller, no WARN.
TEST(CxxNotifier, StartOnlyNotifierFailsNonblock) {
  Diags diags;
  auto mm = AddressSpace::create().value();
  Recorder rec(Callbacks::kInvalidateRangeStart);
  rec.fail_start = true;
  ASSERT_FALSE(rec.register_with(mm));
  auto inv = Invalidation::try_start(mm, 0x1000, 0x2000);
  EXPECT_EQ(inv.error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(diags.count(), 0u);
}

// arch_invalidate_secondary_tlbs with start/end is refused (EINVAL); alone it works.
TEST(CxxNotifier, ArchExcludesRangeCallbacks) {
  Diags diags;
  auto mm = AddressSpace::create().value();
  Recorder mixed(Callbacks::kArchInvalidateSecondaryTlbs | Callbacks::kInvalidateRange);
  EXPECT_EQ(mixed.register_with(mm), std::errc::invalid_argument);
  Recorder arch(Callbacks::kArchInvalidateSecondaryTlbs);
  ASSERT_FALSE(arch.register_with(mm));
  umn_notifier_arch_invalidate_secondary_tlbs(mm.get(), 0, 0x1000);
  EXPECT_EQ(arch.archs, 1);
}

// The shared per-address-space state of a driver, built by Registration<Mirror>.
struct Mirror {
  static inline std::atomic<int> constructed{0}, destroyed{0};
  explicit Mirror(umn_mm* mm) : owner(mm) { constructed++; }
  ~Mirror() { destroyed++; }
  void release() noexcept { released++; }
  bool invalidate_range_start(const Range&) noexcept {
    starts++;
    return true;
  }
  void invalidate_range_end(const Range&) noexcept { ends++; }
  umn_mm* owner;
  std::atomic<int> released{0}, starts{0}, ends{0};
  int buffers = 0;  // driver state shared by every buffer object
};

// A buffer object: each holds a Registration of the same Mirror.
struct Buffer {
  Registration<Mirror> mirror;
};

// Many objects share one Registration<Mirror>; the Mirror goes after the last one and a grace period.
TEST(CxxRegistration, ManyObjectsShareOneOps) {
  Registration<Mirror>::synchronize();
  Mirror::constructed = 0;
  Mirror::destroyed = 0;
  auto mm = AddressSpace::create().value();
  std::vector<Buffer> buffers;
  for (int i = 0; i < 5; ++i) {
    auto reg = Registration<Mirror>::get(mm);
    ASSERT_TRUE(reg.ok());
    reg.value()->buffers++;
    buffers.push_back(Buffer{std::move(reg).value()});
  }
  EXPECT_EQ(Mirror::constructed, 1);
  EXPECT_EQ(buffers[0].mirror->owner, mm.get());
  EXPECT_EQ(buffers[4].mirror->buffers, 5);
  EXPECT_EQ(buffers[0].mirror.c_notifier()->users, 5u);
  mm.invalidate(0x1000, 0x2000);
  EXPECT_EQ(buffers[2].mirror->starts, 1);
  EXPECT_EQ(buffers[2].mirror->ends, 1);
  buffers.clear();
  Registration<Mirror>::synchronize();
  EXPECT_EQ(Mirror::destroyed, 1);
}

// share() adds a user; moves transfer it; reset() is idempotent.
TEST(CxxRegistration, ShareMoveReset) {
  auto mm = AddressSpace::create().value();
  auto first = Registration<Mirror>::get(mm).value();
  auto second = first.share().value();
  EXPECT_EQ(&*first, &*second);
  EXPECT_EQ(first.c_notifier()->users, 2u);
  Registration<Mirror> moved = std::move(second);
  EXPECT_FALSE(second);
  moved.reset();
  moved.reset();
  EXPECT_EQ(first.c_notifier()->users, 1u);
  EXPECT_EQ(first.c_ops(), Registration<Mirror>::c_ops());
}

// Teardown calls release() once; the Ops lives until the last Registration goes.
TEST(CxxRegistration, TeardownCallsReleaseOnce) {
  Diags diags;
  auto mm = AddressSpace::create().value();
  auto reg = Registration<Mirror>::get(mm).value();
  mm.release();
  EXPECT_EQ(reg->released, 1);
  EXPECT_EQ(Registration<Mirror>::get(mm).error(), std::errc::invalid_argument);
}

struct Throwing {
  Throwing() { throw std::runtime_error("no device"); }
};

// An Ops constructor that throws is ENOMEM.
TEST(CxxRegistration, ThrowingConstructorIsEnomem) {
  auto mm = AddressSpace::create().value();
  EXPECT_EQ(Registration<Throwing>::get(mm).error(), std::errc::not_enough_memory);
}

// A default-constructible Ops with only young callbacks: only those are in the C ops.
struct YoungOnly {
  bool test_young(uint64_t) noexcept { return true; }
};

TEST(CxxRegistration, OpsTableHasOnlyDeclaredCallbacks) {
  const umn_notifier_ops* ops = Registration<YoungOnly>::c_ops();
  EXPECT_EQ(ops->release, nullptr);
  EXPECT_EQ(ops->invalidate_range_start, nullptr);
  EXPECT_NE(ops->test_young, nullptr);
  EXPECT_NE(ops->alloc_notifier, nullptr);
  auto mm = AddressSpace::create().value();
  auto reg = Registration<YoungOnly>::get(mm).value();
  EXPECT_EQ(umn_notifier_test_young(mm.get(), 0), 1);
}

}  // namespace
}  // namespace umn::test
