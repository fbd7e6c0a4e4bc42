// check_rule_test.cc - base/check.hpp's CHECK-versus-WARN rule as a user sees it: with the default
// diagnostic hook a debug build (UMN_DEBUG_LEVEL >= 1) aborts on misuse - what the caller of a call did
// wrong: a NULL or foreign handle, a handle in the wrong state, a bad range - naming the call, the same in
// every call; a WARN (something survivable went wrong elsewhere, e.g. a callback broke its own contract)
// never aborts. misuse_test.cc checks, through an installed hook, that each misuse is reported and
// harmless; this file checks which kind each report is.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "umn/process.h"
#include "umn/umn.h"

#if UMN_DEBUG_LEVEL >= 1

namespace {

constexpr uint64_t kPage = 4096;

bool keep_invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
  umn_interval_set_seq(sub, cur_seq);
  return true;
}
const umn_interval_notifier_ops kOps = {keep_invalidate, nullptr, nullptr};
const umn_interval_notifier_ops kNoCallbackOps = {nullptr, nullptr, nullptr};

umn_notifier* alloc_classic(umn_mm*) { return static_cast<umn_notifier*>(std::calloc(1, sizeof(umn_notifier))); }
void free_classic(umn_notifier* sub) { std::free(sub); }
umn_notifier_ops get_ops(bool with_alloc) {
  umn_notifier_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.alloc_notifier = with_alloc ? alloc_classic : nullptr;
  ops.free_notifier = free_classic;
  return ops;
}
const umn_notifier_ops kGetOps = get_ops(true);
const umn_notifier_ops kNoAllocOps = get_ops(false);

class CheckRule : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    unsetenv("UMN_DIAG");                     // the default hook aborts on misuse
    umn_set_diagnostic_hook(nullptr, nullptr);  // and it is the one in use
    mm_ = umn_mm_create();
    ASSERT_NE(mm_, nullptr);
  }
  void TearDown() override { umn_mm_destroy(mm_); }
  umn_mm* mm_ = nullptr;
};

// NULL handles abort in every call that takes them (insert, register and get warned before).
TEST_F(CheckRule, NullHandlesAbortInEveryCall) {
  umn_interval_notifier sub{};
  EXPECT_DEATH(umn_interval_notifier_insert(nullptr, mm_, 0, kPage, &kOps), "misuse in umn_interval_notifier_insert");
  EXPECT_DEATH(umn_interval_notifier_insert(&sub, nullptr, 0, kPage, &kOps), "misuse in umn_interval_notifier_insert");
  EXPECT_DEATH(umn_interval_notifier_remove(nullptr), "misuse in umn_interval_notifier_remove");
  EXPECT_DEATH(umn_interval_read_begin(nullptr), "misuse in umn_interval_read_begin");
  EXPECT_DEATH(umn_notifier_register(nullptr, mm_), "misuse in umn_notifier_register");
  EXPECT_DEATH(umn_notifier_unregister(nullptr, mm_), "misuse in umn_notifier_unregister");
  EXPECT_DEATH(umn_notifier_get(nullptr, mm_), "misuse in umn_notifier_get");
  EXPECT_DEATH(umn_notifier_put(nullptr), "misuse in umn_notifier_put");
  EXPECT_DEATH(umn_notifier_invalidate_range_start(nullptr), "misuse in umn_notifier_invalidate_range_start");
  EXPECT_DEATH(umn_notifier_clear_young(nullptr, 0, kPage), "misuse in umn_notifier_clear_young");
  EXPECT_DEATH(umn_process_observer_add(nullptr, nullptr), "misuse in umn_process_observer_add");
}

// Bad ops and handles in the wrong state abort too (insert and register warned before).
TEST_F(CheckRule, BadOpsAndWrongStatesAbort) {
  umn_interval_notifier sub{};
  EXPECT_DEATH(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &kNoCallbackOps),
               "misuse in umn_interval_notifier_insert");
  EXPECT_DEATH(umn_notifier_get(&kNoAllocOps, mm_), "misuse in umn_notifier_get");
  ASSERT_EQ(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &kOps), 0);
  EXPECT_DEATH(umn_interval_notifier_insert(&sub, mm_, 0, kPage, &kOps), "misuse in umn_interval_notifier_insert");
  umn_interval_notifier_remove(&sub);
  EXPECT_DEATH(umn_interval_notifier_remove(&sub), "misuse in umn_interval_notifier_remove");
  umn_notifier* got = umn_notifier_get(&kGetOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR(got));
  umn_notifier_put(got);
  umn_notifier_synchronize();
}

// A range with start >= end is a WARN in every call that takes a range, never an abort: the kernel
// accepts it (its walks find nothing in it), so a program correct for the kernel must not die here.
void call_each_with_an_empty_range_and_exit(umn_mm* mm) {
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, kPage, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, kPage, kPage);
  const int nonblock = umn_notifier_invalidate_range_start_nonblock(&range);
  const int flush_young = umn_notifier_clear_flush_young(mm, kPage, kPage);
  const int young = umn_notifier_clear_young(mm, kPage, 0);
  umn_notifier_arch_invalidate_secondary_tlbs(mm, kPage, kPage);
  std::exit(nonblock == -EINVAL && flush_young == -EINVAL && young == -EINVAL ? 0 : 1);
}

TEST_F(CheckRule, EmptyRangesWarnWithoutAbortingInEveryCall) {
  EXPECT_EXIT(call_each_with_an_empty_range_and_exit(mm_), ::testing::ExitedWithCode(0),
              "warning in umn_notifier_invalidate_range_start");
}

// Inserting or registering into a released address space is a WARN and -EINVAL, as the kernel's insert
// answers an address space whose users are gone.
void insert_and_register_after_release_and_exit(umn_mm* mm) {
  umn_notifier_release(mm);
  umn_interval_notifier sub{};
  umn_notifier classic{};
  umn_notifier_ops ops{};
  classic.ops = &ops;
  const int inserted = umn_interval_notifier_insert(&sub, mm, 0, kPage, &kOps);
  const int registered = umn_notifier_register(&classic, mm);
  std::exit(inserted == -EINVAL && registered == -EINVAL ? 0 : 1);
}

TEST_F(CheckRule, InsertAndRegisterAfterReleaseWarnWithoutAborting) {
  EXPECT_EXIT(insert_and_register_after_release_and_exit(mm_), ::testing::ExitedWithCode(0),
              "warning in umn_interval_notifier_insert");
}

// A second pass handed the same finish record twice is the callback's fault, not the caller's: a WARN,
// and the process goes on (it aborted before).
umn_interval_notifier_finish g_shared;
bool hand_out_shared(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq,
                     umn_interval_notifier_finish** finish) {
  umn_interval_set_seq(sub, cur_seq);
  *finish = &g_shared;
  return true;
}
void finish_shared(umn_interval_notifier_finish*) {}
const umn_interval_notifier_ops kSharedRecordOps = {nullptr, hand_out_shared, finish_shared};

// Two notifiers whose invalidate_start hands out one shared record, invalidated together; then exit(0).
void invalidate_two_sharing_a_record_and_exit(umn_mm* mm) {
  umn_interval_notifier first{};
  umn_interval_notifier second{};
  umn_interval_notifier_insert(&first, mm, 0x100000, kPage, &kSharedRecordOps);
  umn_interval_notifier_insert(&second, mm, 0x101000, kPage, &kSharedRecordOps);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x100000, 0x100000 + 2 * kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  std::exit(0);
}

TEST_F(CheckRule, CallbackBreakingItsContractWarnsWithoutAborting) {
  EXPECT_EXIT(invalidate_two_sharing_a_record_and_exit(mm_), ::testing::ExitedWithCode(0),
              "warning in umn_notifier_invalidate_range_start");
}

}  // namespace

#endif  // UMN_DEBUG_LEVEL >= 1
