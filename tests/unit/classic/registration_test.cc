// registration_test.cc - umn_notifier_get / put / synchronize: one refcounted registration per
// (ops, address space), deferred free, errors, teardown interplay.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "classic_support.hpp"
#include "core/rcu.hpp"
#include "umn/umn.h"

namespace umn::test {
namespace {

// A get-notifier with counters shared by every instance of one ops table.
struct Counted {
  umn_notifier c{};  // first
  std::atomic<int> releases{0};
  std::atomic<int> starts{0};
  bool put_in_release = false;
};

std::atomic<int> g_allocs{0};
std::atomic<int> g_frees{0};
std::atomic<bool> g_fail_alloc{false};
std::atomic<int> g_free_before_put_returned{0};
thread_local bool t_in_put = false;  // set by a test around its umn_notifier_put

umn_notifier* alloc_counted(umn_mm*) {
  if (g_fail_alloc) return nullptr;
  g_allocs++;
  return &(new Counted)->c;
}
void free_counted(umn_notifier* sub) {
  g_frees++;
  if (t_in_put) g_free_before_put_returned++;  // freed synchronously, inside put, on the putting thread
  delete reinterpret_cast<Counted*>(sub);
}
void release_counted(umn_notifier* sub, umn_mm*) {
  auto* counted = reinterpret_cast<Counted*>(sub);
  counted->releases++;
  if (counted->put_in_release) umn_notifier_put(sub);
}
int start_counted(umn_notifier* sub, const umn_notifier_range*) {
  reinterpret_cast<Counted*>(sub)->starts++;
  return 0;
}

const umn_notifier_ops kOps = {&release_counted, nullptr, nullptr, nullptr, &start_counted, nullptr, nullptr,
                               &alloc_counted, &free_counted};
const umn_notifier_ops kOtherOps = kOps;  // same callbacks, different key

class Registration : public ::testing::Test {
 protected:
  void SetUp() override {
    umn_notifier_synchronize();
    g_allocs = 0;
    g_frees = 0;
    g_fail_alloc = false;
    g_free_before_put_returned = 0;
    mm_ = umn_mm_create();
  }
  void TearDown() override {
    umn_mm_destroy(mm_);
    umn_notifier_synchronize();
    EXPECT_EQ(g_allocs.load(), g_frees.load()) << "every allocated notifier is freed after the last put";
  }
  umn_mm* mm_ = nullptr;
};

// Two gets of the same (ops, mm) return the same notifier, allocated once, users 2.
TEST_F(Registration, SameKeySharesOneNotifier) {
  umn_notifier* a = umn_notifier_get(&kOps, mm_);
  umn_notifier* b = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(a));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->users, 2u);
  EXPECT_EQ(a->mm, mm_);
  EXPECT_EQ(a->ops, &kOps);
  EXPECT_EQ(g_allocs, 1);
  invalidate(mm_);
  EXPECT_EQ(reinterpret_cast<Counted*>(a)->starts, 1);  // registered once
  umn_notifier_put(a);
  umn_notifier_put(b);
}

// Another ops pointer, or another address space, is another key.
TEST_F(Registration, OpsPointerAndAddressSpaceAreTheKey) {
  umn_mm* other_mm = umn_mm_create();
  umn_notifier* a = umn_notifier_get(&kOps, mm_);
  umn_notifier* b = umn_notifier_get(&kOtherOps, mm_);
  umn_notifier* c = umn_notifier_get(&kOps, other_mm);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(g_allocs, 3);
  for (umn_notifier* sub : {a, b, c}) umn_notifier_put(sub);
  umn_mm_destroy(other_mm);
}

// A notifier registered with umn_notifier_register is never returned by get.
TEST_F(Registration, GetIgnoresPlainRegistrations) {
  Counted plain;
  plain.c.ops = &kOps;
  ASSERT_EQ(umn_notifier_register(&plain.c, mm_), 0);
  umn_notifier* got = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  EXPECT_NE(got, &plain.c);
  EXPECT_EQ(plain.c.users, 1u);
  umn_notifier_put(got);
  umn_notifier_unregister(&plain.c, mm_);
}

// Ops without alloc_notifier or free_notifier, or NULL arguments: the error pointer -EINVAL (WARNed).
TEST_F(Registration, GetWithoutAllocOrFreeIsEinval) {
  Diags diags;
  umn_notifier_ops no_alloc = kOps, no_free = kOps;
  no_alloc.alloc_notifier = nullptr;
  no_free.free_notifier = nullptr;
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&no_alloc, mm_)), -EINVAL);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&no_free, mm_)), -EINVAL);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(nullptr, mm_)), -EINVAL);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kOps, nullptr)), -EINVAL);
  EXPECT_EQ(diags.count("alloc_notifier/free_notifier"), 4u);
  EXPECT_EQ(g_allocs, 0);
}

// alloc_notifier returning NULL: the error pointer -ENOMEM, nothing registered.
TEST_F(Registration, AllocFailureIsEnomem) {
  g_fail_alloc = true;
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kOps, mm_)), -ENOMEM);
  g_fail_alloc = false;
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);  // the key is still free
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  EXPECT_EQ(sub->users, 1u);
  umn_notifier_put(sub);
}

// alloc_notifier's own error pointer is what get returns, as in the kernel: umn does not write through it
// (ops, private words), calls no free_notifier for it, and the key stays free. (Before error pointers,
// get stored ops through the returned pointer and crashed.)
TEST_F(Registration, GetReturnsAllocNotifierErrorPointerAsIs) {
  static const umn_notifier_ops eio_ops = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                           [](umn_mm*) { return static_cast<umn_notifier*>(UMN_ERR_PTR(-EIO)); },
                                           &free_counted};
  umn_notifier* got = umn_notifier_get(&eio_ops, mm_);
  EXPECT_EQ(got, UMN_ERR_PTR(-EIO));
  EXPECT_TRUE(UMN_IS_ERR(got));
  EXPECT_EQ(UMN_PTR_ERR(got), -EIO);
  EXPECT_EQ(g_frees, 0);
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);  // the address space is unharmed
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  umn_notifier_put(sub);
}

// A put, unregister or register of an error pointer (a failed get's result) is diagnosed and ignored,
// never dereferenced. (Before: put read sub->mm at the error address and crashed.)
TEST_F(Registration, ErrorPointerArgumentsAreDiagnosedNotDereferenced) {
  Diags diags;
  auto* failed = static_cast<umn_notifier*>(UMN_ERR_PTR(-ENOMEM));
  umn_notifier_put(failed);
  EXPECT_EQ(diags.count("error-pointer notifier"), 1u);
  umn_notifier_unregister(failed, mm_);
  EXPECT_EQ(diags.count("error-pointer notifier"), 2u);
  EXPECT_EQ(umn_notifier_register(failed, mm_), -EINVAL);
  EXPECT_EQ(diags.count("error-pointer notifier"), 3u);
}

// The error-pointer helpers: the top UMN_MAX_ERRNO addresses are errors, NULL and the address below are
// not, and PTR_ERR inverts ERR_PTR at both ends of the range.
TEST(ErrorPointer, TopMaxErrnoAddressesAreErrors) {
  EXPECT_TRUE(UMN_IS_ERR(UMN_ERR_PTR(-1)));
  EXPECT_TRUE(UMN_IS_ERR(UMN_ERR_PTR(-UMN_MAX_ERRNO)));
  EXPECT_FALSE(UMN_IS_ERR(UMN_ERR_PTR(-UMN_MAX_ERRNO - 1)));
  EXPECT_FALSE(UMN_IS_ERR(nullptr));
  EXPECT_TRUE(UMN_IS_ERR_OR_NULL(nullptr));
  EXPECT_FALSE(UMN_IS_ERR_OR_NULL(&g_allocs));
  EXPECT_EQ(UMN_PTR_ERR(UMN_ERR_PTR(-1)), -1);
  EXPECT_EQ(UMN_PTR_ERR(UMN_ERR_PTR(-UMN_MAX_ERRNO)), -UMN_MAX_ERRNO);
}

// At UINT_MAX users get fails with EOVERFLOW and leaves users unchanged.
TEST_F(Registration, GetAtUintMaxIsEoverflow) {
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  sub->users = UINT_MAX - 1;  // no other thread uses this address space
  umn_notifier* again = umn_notifier_get(&kOps, mm_);
  EXPECT_EQ(again, sub);
  EXPECT_EQ(sub->users, UINT_MAX);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kOps, mm_)), -EOVERFLOW);
  EXPECT_EQ(sub->users, UINT_MAX);
  EXPECT_EQ(g_allocs, 1);
  sub->users = 1;
  umn_notifier_put(sub);
}

// A put with users already 0 is WARNed and changes nothing (the notifier stays registered).
TEST_F(Registration, PutAtZeroWarnsAndChangesNothing) {
  Diags diags;
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  sub->users = 0;
  umn_notifier_put(sub);
  EXPECT_EQ(diags.count("0 users"), 1u);
  EXPECT_EQ(sub->users, 0u);
  invalidate(mm_);
  EXPECT_EQ(reinterpret_cast<Counted*>(sub)->starts, 1);  // still registered
  umn_notifier_synchronize();
  EXPECT_EQ(g_frees, 0);
  sub->users = 1;
  umn_notifier_put(sub);
}

// The last put frees only after a grace period: not while a reader that could see it is inside its
// read-side section; umn_notifier_synchronize then waits for the free. A put after the last one, while
// the free is pending, is WARNed.
TEST_F(Registration, LastPutFreesAfterGracePeriod) {
  Diags diags;
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  detail::rcu::read_lock();  // a walker that still holds sub
  umn_notifier_put(sub);
  umn_notifier_put(sub);  // users already 0, free pending
  EXPECT_EQ(diags.count("0 users"), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(g_frees, 0) << "freed inside a grace period";
  invalidate(mm_);
  EXPECT_EQ(reinterpret_cast<Counted*>(sub)->starts, 0);  // unlinked at once
  detail::rcu::read_unlock();
  umn_notifier_synchronize();
  EXPECT_EQ(g_frees, 1);
}

// Even with no reader anywhere, the last put never frees inside put itself: free_notifier runs later, on
// liburcu's callback thread, after put has returned (the kernel's mmu_notifier_put defers to SRCU).
TEST_F(Registration, LastPutNeverFreesInsidePut) {
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(sub));
  t_in_put = true;
  umn_notifier_put(sub);
  t_in_put = false;
  umn_notifier_synchronize();
  EXPECT_EQ(g_frees, 1);
  EXPECT_EQ(g_free_before_put_returned, 0);
}

// synchronize waits for every pending free, not only one grace period.
TEST_F(Registration, SynchronizeWaitsForAllPendingFrees) {
  std::vector<umn_mm*> mms;
  for (int i = 0; i < 64; ++i) {
    mms.push_back(umn_mm_create());
    umn_notifier_put(umn_notifier_get(&kOps, mms.back()));
  }
  umn_notifier_synchronize();
  EXPECT_EQ(g_frees, 64);
  for (umn_mm* mm : mms) umn_mm_destroy(mm);
}

// Teardown calls ->release once and keeps users; later puts count down and free. put from ->release
// is allowed.
TEST_F(Registration, TeardownKeepsUsersAndPutFromReleaseWorks) {
  umn_notifier* sub = umn_notifier_get(&kOps, mm_);
  ASSERT_EQ(umn_notifier_get(&kOps, mm_), sub);
  auto* counted = reinterpret_cast<Counted*>(sub);
  counted->put_in_release = true;
  umn_notifier_release(mm_);
  EXPECT_EQ(counted->releases, 1);
  EXPECT_EQ(sub->users, 1u);  // one put from release
  umn_notifier_put(sub);
  umn_notifier_synchronize();
  EXPECT_EQ(g_frees, 1);
}

// After teardown, a get of a new key fails with EINVAL without allocating.
TEST_F(Registration, GetAfterReleaseIsEinval) {
  Diags diags;
  umn_notifier_release(mm_);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kOps, mm_)), -EINVAL);
  EXPECT_EQ(g_allocs, 0);
}

// A get-notifier outliving umn_mm_destroy is diagnosed; its put still works and frees the address
// space's memory (ASan / LSan watch).
TEST_F(Registration, PutAfterDestroyIsSafe) {
  Diags diags;
  umn_mm* mm = umn_mm_create();
  umn_notifier* sub = umn_notifier_get(&kOps, mm);
  umn_mm_destroy(mm);
  EXPECT_EQ(diags.count("classic notifiers still registered"), 1u);
  EXPECT_EQ(reinterpret_cast<Counted*>(sub)->releases, 1);
  umn_notifier_put(sub);
}

// unregister of a get-notifier, and put of a registered one, are misuse: diagnosed, ignored.
TEST_F(Registration, MixingRegisterAndGetIsDiagnosed) {
  Diags diags;
  umn_notifier* got = umn_notifier_get(&kOps, mm_);
  umn_notifier_unregister(got, mm_);
  EXPECT_EQ(diags.count("use umn_notifier_put"), 1u);
  Counted plain;
  plain.c.ops = &kOps;
  ASSERT_EQ(umn_notifier_register(&plain.c, mm_), 0);
  umn_notifier_put(&plain.c);
  EXPECT_EQ(diags.count("not obtained from umn_notifier_get"), 1u);
  EXPECT_EQ(plain.c.users, 1u);
  umn_notifier_unregister(&plain.c, mm_);
  umn_notifier_put(got);
}

// Concurrent gets of one key allocate once and count every user.
TEST_F(Registration, ConcurrentGetsAllocateOnce) {
  constexpr int kThreads = 8;
  std::vector<umn_notifier*> got(kThreads);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) threads.emplace_back([&, i] { got[i] = umn_notifier_get(&kOps, mm_); });
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(g_allocs, 1);
  for (umn_notifier* sub : got) EXPECT_EQ(sub, got[0]);
  EXPECT_EQ(got[0]->users, static_cast<unsigned>(kThreads));
  for (umn_notifier* sub : got) umn_notifier_put(sub);
}

namespace reentry {
umn_mm* mm;
std::atomic<long> get_error{0};
int start_and_get(umn_notifier*, const umn_notifier_range*) {
  umn_notifier* got = umn_notifier_get(&kOps, mm);
  get_error = UMN_IS_ERR(got) ? UMN_PTR_ERR(got) : 0;
  return 0;
}
}  // namespace reentry

// A child forked after the parent's call_rcu thread exists gets a working one: its last put frees and its
// synchronize returns (without umn's fork handlers it waits forever for a thread the child does not
// have). A notifier the parent still holds at the fork is the child's too.
TEST_F(Registration, ForkedChildCanPutAndSynchronize) {
  umn_notifier* warm = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(warm));
  umn_notifier_put(warm);
  umn_notifier_synchronize();  // the parent's call_rcu thread now exists and has run a free
  umn_notifier* held = umn_notifier_get(&kOps, mm_);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(held));
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    alarm(20);  // a hang becomes SIGALRM
    const int frees_before = g_frees;
    umn_notifier* again = umn_notifier_get(&kOps, mm_);
    if (again != held) _exit(2);
    umn_notifier_put(again);
    umn_notifier_put(held);  // the last put in the child
    umn_notifier_synchronize();
    _exit(g_frees == frees_before + 1 ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "child killed by signal " + std::to_string(WTERMSIG(status))
                              : "child exit status " + std::to_string(WEXITSTATUS(status)));
  umn_notifier_put(held);
}

// get from a callback is misuse: the error pointer -EDEADLK, no deadlock.
TEST_F(Registration, GetFromCallbackIsEdeadlk) {
  Diags diags;
  reentry::mm = mm_;
  BareNotifier getter;
  getter.ops.invalidate_range_start = &reentry::start_and_get;
  ASSERT_EQ(umn_notifier_register(&getter.sub, mm_), 0);
  invalidate(mm_);
  EXPECT_EQ(reentry::get_error, -EDEADLK);
  EXPECT_EQ(diags.count("from a classic notifier callback"), 1u);
  umn_notifier_unregister(&getter.sub, mm_);
}

}  // namespace
}  // namespace umn::test
