// nested_observer_test.cc - UMN_PROCESS_OBSERVE_NESTED: a call made inside a delivery on the same thread
// (an observer's own munmap, a signal handler interrupting a delivery) reaches the observers that asked
// for it, before the memory goes, and no other observer (the UCX bridge relies on it: UCM announces such
// calls too, docs/ucx.md). The notifiers never see it (lifecycle_test.cc,
// CallbackMunmapIsPassedThroughWithoutRecursion).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "umn/process.h"

namespace umn::test {
namespace {

const long kPage = sysconf(_SC_PAGESIZE);

// Atomics: glibc's munmap & co. are leaf functions, so plain variables written by observers could be
// read stale around them.
std::atomic<uintptr_t> g_outer{0}, g_inner{0};
std::atomic<int> g_inner_starts{0}, g_inner_quiets{0}, g_inner_mapped_at_start{0}, g_plain_inner{0};

bool mapped(uintptr_t addr) {
  unsigned char resident;
  return mincore(reinterpret_cast<void*>(addr), kPage, &resident) == 0;
}

// Whether the call is on g_inner (its argument 0), once set.
bool on_inner(const umn_process_event* event) {
  return event->args != nullptr && g_inner.load() != 0 && static_cast<uintptr_t>(event->args[0]) == g_inner.load();
}

// Records the events on g_inner, by phase.
void nested_recorder(void*, const umn_process_event* event, int phase, void*) {
  if (!on_inner(event)) return;
  if (phase == UMN_PROCESS_PHASE_START) {
    g_inner_starts++;
    g_inner_mapped_at_start += mapped(g_inner.load());
  } else if (phase == UMN_PROCESS_PHASE_QUIET) {
    g_inner_quiets++;
  }
}

// An observer without the flag: must never see the nested call.
void plain_recorder(void*, const umn_process_event* event, int, void*) {
  if (on_inner(event)) g_plain_inner++;
}

// At the START of the munmap of g_outer, runs g_action (inside the delivery).
void (*g_action)() = nullptr;
void acting_observer(void*, const umn_process_event* event, int phase, void*) {
  if (phase == UMN_PROCESS_PHASE_START && event->start == g_outer.load() && g_action != nullptr) g_action();
}

void unmap_inner() { munmap(reinterpret_cast<void*>(g_inner.load()), kPage); }
void on_signal(int) { unmap_inner(); }
void raise_signal() { raise(SIGUSR1); }
void grow_inner_in_place() { mremap(reinterpret_cast<void*>(g_inner.load()), kPage, 2 * kPage, 0); }

uintptr_t map_pages(int n) {
  void* p = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? 0 : reinterpret_cast<uintptr_t>(p);
}

class NestedObserver : public ::testing::Test {
 protected:
  void SetUp() override {
    slots_[0] = umn_process_observer_add(acting_observer, nullptr);
    slots_[1] = umn_process_observer_add_flags(nested_recorder, nullptr,
                                               UMN_PROCESS_OBSERVE_NESTED | UMN_PROCESS_OBSERVE_QUIET);
    slots_[2] = umn_process_observer_add_flags(plain_recorder, nullptr, UMN_PROCESS_OBSERVE_QUIET);
    for (int slot : slots_) ASSERT_GE(slot, 0);
    g_inner_starts = g_inner_quiets = g_inner_mapped_at_start = g_plain_inner = 0;
  }
  void TearDown() override {
    g_action = nullptr;
    g_outer = g_inner = 0;
    for (int slot : slots_) umn_process_observer_remove(slot);
  }
  // munmaps a fresh page g_outer with g_action set to act on inner.
  void unmap_outer_with(uintptr_t inner, void (*action)()) {
    const uintptr_t outer = map_pages(1);
    ASSERT_NE(inner, 0u);
    ASSERT_NE(outer, 0u);
    g_inner = inner;
    g_action = action;
    g_outer = outer;
    ASSERT_EQ(munmap(reinterpret_cast<void*>(outer), kPage), 0);
    g_action = nullptr;
  }
  int slots_[3] = {-1, -1, -1};
};

// An observer's own munmap reaches the NESTED observer before the page goes, and not the plain one.
TEST_F(NestedObserver, MunmapByAnObserverReachesNestedObserversBeforeTheMemoryGoes) {
  umn_process_hooks_info before, after;
  umn_process_hooks_get_info(&before);
  unmap_outer_with(map_pages(1), unmap_inner);
  umn_process_hooks_get_info(&after);
  EXPECT_EQ(g_inner_starts.load(), 1);
  EXPECT_EQ(g_inner_mapped_at_start.load(), 1);
  EXPECT_EQ(g_plain_inner.load(), 0);
  EXPECT_FALSE(mapped(g_inner.load()));
  EXPECT_EQ(after.nested, before.nested + 1);
}

// A signal handler interrupting a delivery and unmapping: the same.
TEST_F(NestedObserver, MunmapByASignalHandlerInsideADeliveryReachesNestedObservers) {
  struct sigaction action = {}, old = {};
  action.sa_handler = on_signal;
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  unmap_outer_with(map_pages(1), raise_signal);
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(g_inner_starts.load(), 1);
  EXPECT_EQ(g_inner_mapped_at_start.load(), 1);
  EXPECT_EQ(g_plain_inner.load(), 0);
}

// A nested call that takes nothing away (mremap grown in place, flags 0) is QUIET for NESTED|QUIET
// observers only.
TEST_F(NestedObserver, QuietNestedCallReachesOnlyNestedQuietObservers) {
  const uintptr_t inner = map_pages(2);
  ASSERT_NE(inner, 0u);
  ASSERT_EQ(munmap(reinterpret_cast<void*>(inner + kPage), kPage), 0);  // room to grow into
  unmap_outer_with(inner, grow_inner_in_place);
  EXPECT_EQ(g_inner_quiets.load(), 1);
  EXPECT_EQ(g_inner_starts.load(), 0);
  EXPECT_EQ(g_plain_inner.load(), 0);
  g_inner = 0;
  munmap(reinterpret_cast<void*>(inner), 2 * kPage);
}

// An unknown flag is refused.
TEST(NestedObserverFlags, UnknownFlagIsRefused) {
  EXPECT_EQ(umn_process_observer_add_flags(plain_recorder, nullptr, 1u << 7), -EINVAL);
}

}  // namespace
}  // namespace umn::test
