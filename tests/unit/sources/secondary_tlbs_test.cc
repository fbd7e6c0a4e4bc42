// secondary_tlbs_test.cc - on umn_mm_process() a munmap calls classic notifiers'
// arch_invalidate_secondary_tlbs, as the kernel does from the TLB flush of every PTE it clears. Before the
// fix (issue 16 review) it called only invalidate_range_start/end, so a driver whose only invalidation is
// arch_invalidate_secondary_tlbs (the IOMMU SVA shape) kept a stale secondary TLB.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>

#include "umn/umn.h"

namespace {

std::atomic<int> g_tlb_calls{0};

void count_tlbs(umn_notifier*, umn_mm*, uint64_t, uint64_t) { g_tlb_calls.fetch_add(1); }

// Every other op NULL (a partial designated list warns under -Wextra).
const umn_notifier_ops kTlbOps = [] {
  umn_notifier_ops ops{};
  ops.arch_invalidate_secondary_tlbs = count_tlbs;
  return ops;
}();

TEST(ProcessSecondaryTlbs, MunmapOfATouchedPageInvalidatesSecondaryTlbs) {
  umn_notifier sub{};
  sub.ops = &kTlbOps;
  ASSERT_EQ(umn_notifier_register(&sub, umn_mm_process()), 0);
  auto* page = static_cast<volatile char*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(page, MAP_FAILED);
  page[0] = 1;
  g_tlb_calls = 0;
  munmap(const_cast<char*>(page), 4096);
  EXPECT_GT(g_tlb_calls.load(), 0) << "munmap never called arch_invalidate_secondary_tlbs";
  umn_notifier_unregister(&sub, umn_mm_process());
}

}  // namespace
