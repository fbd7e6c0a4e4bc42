// hook_stack_test.cc - the stack the hooks need in a signal handler (issue 17.10; the bound is in
// docs/process.md, "Signal handlers"): each hooked call is made from a handler on an alternate stack
// filled with a pattern, once through the hooks (with an interval notifier watching, so the core's walk
// and a callback run) and once as a bare system call; the difference of the two high-water marks is
// what the hooks used, and must stay within the documented bound.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "recorder.hpp"
#include "umn/process.h"

namespace umn::test {
namespace {

// The documented bound: what the hooks add to a handler's stack for any hooked call (docs/process.md).
constexpr size_t kHooksStackBound = 2560;

constexpr size_t kAltStackSize = 64 << 10;
constexpr unsigned char kFill = 0xcd;
alignas(64) unsigned char g_alt_stack[kAltStackSize];

// The call a handler makes: through libc (hooked) or as a bare syscall instruction (not hooked).
struct Call {
  long nr;
  long a[6];
};
Call g_call;
bool g_hooked;
long g_result;

long bare_syscall(const Call& c) {
  long result;
  register long r10 asm("r10") = c.a[3];
  register long r8 asm("r8") = c.a[4];
  register long r9 asm("r9") = c.a[5];
  asm volatile("syscall"
               : "=a"(result)
               : "a"(c.nr), "D"(c.a[0]), "S"(c.a[1]), "d"(c.a[2]), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return result;
}

// libc's wrapper of each call (a patched site).
long libc_call(const Call& c) {
  switch (c.nr) {
    case SYS_munmap:
      return munmap(reinterpret_cast<void*>(c.a[0]), static_cast<size_t>(c.a[1]));
    case SYS_madvise:
      return madvise(reinterpret_cast<void*>(c.a[0]), static_cast<size_t>(c.a[1]), static_cast<int>(c.a[2]));
    case SYS_mprotect:
      return mprotect(reinterpret_cast<void*>(c.a[0]), static_cast<size_t>(c.a[1]), static_cast<int>(c.a[2]));
    case SYS_shmdt:
      return shmdt(reinterpret_cast<void*>(c.a[0]));
    case SYS_ftruncate:
      return ftruncate(static_cast<int>(c.a[0]), c.a[1]);
    default:
      return -1;
  }
}

void handler(int) { g_result = g_hooked ? libc_call(g_call) : bare_syscall(g_call); }

// Runs call in a SIGUSR1 handler on the alternate stack. Return: the bytes of that stack it touched.
size_t stack_used(const Call& call, bool hooked) {
  std::memset(g_alt_stack, kFill, sizeof(g_alt_stack));
  g_call = call;
  g_hooked = hooked;
  stack_t ss = {};
  ss.ss_sp = g_alt_stack;
  ss.ss_size = sizeof(g_alt_stack);
  EXPECT_EQ(sigaltstack(&ss, nullptr), 0);
  struct sigaction action = {}, old = {};
  action.sa_handler = &handler;
  action.sa_flags = SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  EXPECT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  raise(SIGUSR1);
  sigaction(SIGUSR1, &old, nullptr);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  size_t untouched = 0;
  while (untouched < sizeof(g_alt_stack) && g_alt_stack[untouched] == kFill) ++untouched;
  return sizeof(g_alt_stack) - untouched;
}

class HookStack : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(umn_process_hooks_install(), 0); }

  // The hooks' share of the stack of `make()`'s call, each run on fresh, watched memory.
  template <typename Make>
  void expect_within_bound(const char* what, Make make) {
    Call call;
    make(&call);
    stack_used(call, false);  // once first: the first signal of a process may set up more than later ones
    make(&call);
    const size_t bare = stack_used(call, false);
    make(&call);
    stack_used(call, true);  // once unwatched: binds libc's symbol (ld.so's lazy binding saves the
                             // whole vector state on the stack, kilobytes that are not the hooks')
    unsigned char* memory = make(&call);
    Recorder rec;
    rec.read_memory = false;
    ASSERT_EQ(rec.watch(memory, kPage), 0);
    const size_t hooked = stack_used(call, true);
    EXPECT_EQ(rec.calls(), 1) << what << ": the call was not announced";
    std::printf("%s: %zu bytes of stack with the hooks, %zu as a bare system call: %zd for the hooks\n", what,
                hooked, bare, static_cast<ssize_t>(hooked - bare));
    EXPECT_LE(hooked, bare + kHooksStackBound) << what;
    rec.unwatch();
  }
};

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// The bound is for the plain builds: ASan's redzones make every frame several times larger, and TSan runs
// the handler from its own signal machinery with instrumented frames (the plain CI build checks it).

TEST_F(HookStack, MunmapFromAHandlerStaysWithinTheBound) {
  expect_within_bound("munmap", [](Call* call) {
    unsigned char* p = map_pages(1);
    *call = {SYS_munmap, {static_cast<long>(u(p)), static_cast<long>(kPage)}};
    return p;
  });
}

TEST_F(HookStack, MadviseFromAHandlerStaysWithinTheBound) {
  expect_within_bound("madvise", [](Call* call) {
    unsigned char* p = map_pages(1);
    *call = {SYS_madvise, {static_cast<long>(u(p)), static_cast<long>(kPage), MADV_DONTNEED}};
    return p;
  });
}

// mprotect with PROT_GROWSDOWN reads /proc/self/maps inside the call.
TEST_F(HookStack, MprotectGrowsdownFromAHandlerStaysWithinTheBound) {
  expect_within_bound("mprotect(PROT_GROWSDOWN)", [](Call* call) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    *call = {SYS_mprotect, {static_cast<long>(u(p)), static_cast<long>(kPage), PROT_READ | PROT_GROWSDOWN}};
    return static_cast<unsigned char*>(p);
  });
}

// shmdt reads /proc/self/maps to find the segment's fragments.
TEST_F(HookStack, ShmdtFromAHandlerStaysWithinTheBound) {
  expect_within_bound("shmdt", [](Call* call) {
    int id = shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600);
    void* p = shmat(id, nullptr, 0);
    shmctl(id, IPC_RMID, nullptr);
    *call = {SYS_shmdt, {static_cast<long>(u(p))}};
    return static_cast<unsigned char*>(p);
  });
}

// ftruncate of a memfd mapped shared reads /proc/self/maps to find the file's mappings.
TEST_F(HookStack, FtruncateOfAMappedFileFromAHandlerStaysWithinTheBound) {
  expect_within_bound("ftruncate", [](Call* call) {
    int fd = static_cast<int>(syscall(SYS_memfd_create, "hook_stack", 0));
    EXPECT_EQ(ftruncate(fd, kPage), 0);
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    *call = {SYS_ftruncate, {fd, 0}};
    return static_cast<unsigned char*>(p);
  });
}
#endif

}  // namespace
}  // namespace umn::test
