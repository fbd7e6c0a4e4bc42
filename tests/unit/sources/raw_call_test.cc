// raw_call_test.cc - process events carry the call that made them (umn_process_event.nr and .args), also
// at phase QUIET: what an observer needs when the range does not say it (the UCX bridge forwards the old
// range of an mremap that the kernel grew in place, docs/ucx.md).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "umn/process.h"

namespace umn::test {
namespace {

const long kPage = sysconf(_SC_PAGESIZE);

// What the observer saw of the one call under test (atomics: glibc's munmap & co. are leaf functions, so
// plain variables written by the observer could be read stale around them).
struct Seen {
  std::atomic<uintptr_t> watch{0};  // events whose first argument is this address are recorded
  std::atomic<int> phase{-1};
  std::atomic<long> nr{-2};
  std::atomic<long> arg0{0}, arg1{0}, arg2{0}, result{0};
  std::atomic<int> count{0};
};

void record(void* ctx, const umn_process_event* event, int phase, void*) {
  auto* seen = static_cast<Seen*>(ctx);
  if (event->args == nullptr || static_cast<uintptr_t>(event->args[0]) != seen->watch.load()) return;
  if (phase == UMN_PROCESS_PHASE_END) return;
  seen->phase = phase;
  seen->nr = event->nr;
  seen->arg0 = event->args[0];
  seen->arg1 = event->args[1];
  seen->arg2 = event->args[2];
  seen->result = event->result;
  seen->count++;
}

class RawCall : public ::testing::Test {
 protected:
  void SetUp() override {
    slot_ = umn_process_observer_add_flags(record, &seen_, UMN_PROCESS_OBSERVE_QUIET);
    ASSERT_GE(slot_, 0);
  }
  void TearDown() override { umn_process_observer_remove(slot_); }
  static Seen seen_;  // static: outlives the observer slot (removal does not wait)
  int slot_ = -1;
};
Seen RawCall::seen_;

TEST_F(RawCall, MunmapEventCarriesItsNumberAndArguments) {
  char* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  seen_.count = 0;
  seen_.watch = reinterpret_cast<uintptr_t>(p);
  ASSERT_EQ(munmap(p, kPage), 0);
  EXPECT_EQ(seen_.count.load(), 1);
  EXPECT_EQ(seen_.phase.load(), UMN_PROCESS_PHASE_START);
  EXPECT_EQ(seen_.nr.load(), SYS_munmap);
  EXPECT_EQ(seen_.arg0.load(), reinterpret_cast<long>(p));
  EXPECT_EQ(seen_.arg1.load(), kPage);
}

TEST_F(RawCall, MremapGrownInPlaceIsQuietWithItsOldRangeInTheArguments) {
  char* p = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(munmap(p + kPage, kPage), 0);  // room to grow into
  seen_.count = 0;
  seen_.watch = reinterpret_cast<uintptr_t>(p);
  void* q = mremap(p, kPage, 2 * kPage, MREMAP_MAYMOVE);
  ASSERT_EQ(q, p) << "not grown in place: the case is not exercised";
  EXPECT_EQ(seen_.count.load(), 1);
  EXPECT_EQ(seen_.phase.load(), UMN_PROCESS_PHASE_QUIET);
  EXPECT_EQ(seen_.nr.load(), SYS_mremap);
  EXPECT_EQ(seen_.arg0.load(), reinterpret_cast<long>(p));
  EXPECT_EQ(seen_.arg1.load(), kPage);
  EXPECT_EQ(seen_.arg2.load(), 2 * kPage);
  EXPECT_EQ(seen_.result.load(), reinterpret_cast<long>(p));
  seen_.watch = 0;
  munmap(p, 2 * kPage);
}

}  // namespace
}  // namespace umn::test
