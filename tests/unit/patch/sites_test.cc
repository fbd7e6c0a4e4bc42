// sites_test.cc - syscall sites outside libc and the loader: the program's own text in both encodings
// the Go runtime uses, a shared object dlopen'd after installation, a site pattern hidden inside another
// instruction, and unwinding through a stub from a callback.
#include <dlfcn.h>
#include <execinfo.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

#include "../sources/recorder.hpp"
#include "inline_sites.hpp"
#include "umn/process.h"

// The callers whose frames a backtrace from inside a callback must show (exported: dladdr names them).
extern "C" [[gnu::noinline]] int umn_test_unmap_through_libc(unsigned char* p) {
  int r = munmap(p, umn::test::kPage);
  asm volatile("" ::: "memory");  // not a tail call: this frame stays on the stack
  return r;
}
extern "C" [[gnu::noinline]] int umn_test_unmap_through_own_site(unsigned char* p) {
  int r = static_cast<int>(umn_test_munmap_eax(p, umn::test::kPage));
  asm volatile("" ::: "memory");
  return r;
}

namespace umn::test {
namespace {

class Sites : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(umn_process_hooks_install(), 0); }

  // Maps pages, watches them, and runs unmap on them: exactly one invalidation of kind event over the
  // first page, made while the memory was still there.
  template <typename Unmap>
  void expect_one_invalidation(umn_notifier_event event, Unmap unmap) {
    unsigned char* p = map_pages(2);
    ASSERT_NE(p, nullptr);
    Recorder recorder;
    ASSERT_EQ(recorder.watch(p, 2 * kPage), 0);
    EXPECT_EQ(unmap(p), 0);
    ASSERT_EQ(recorder.calls(), 1);
    EXPECT_EQ(recorder.records[0].event, event);
    EXPECT_EQ(recorder.records[0].start, u(p));
    EXPECT_EQ(recorder.records[0].end, u(p) + kPage);
    EXPECT_EQ(recorder.records[0].first, kPattern);
    recorder.unwatch();
    munmap(p, 2 * kPage);
  }
};

TEST_F(Sites, ExecutableSiteWithMovEaxNotifies) {
  expect_one_invalidation(UMN_NOTIFY_UNMAP, [](unsigned char* p) { return umn_test_munmap_eax(p, kPage); });
}

TEST_F(Sites, ExecutableSiteWithMovRaxNotifies) {  // Go's "48 c7 c0 imm32; syscall"
  expect_one_invalidation(UMN_NOTIFY_UNMAP, [](unsigned char* p) { return umn_test_munmap_rax(p, kPage); });
}

TEST_F(Sites, ExecutableMadviseSiteWithMovRaxNotifiesClear) {
  expect_one_invalidation(UMN_NOTIFY_CLEAR, [](unsigned char* p) { return umn_test_madvise_rax(p, kPage, MADV_DONTNEED); });
}

// 17.11: "b8 0b 00 00 00 0f 05" inside a movabs immediate is not a site: the instruction is intact.
TEST_F(Sites, PatternInsideAnotherInstructionIsLeftAlone) {
  EXPECT_EQ(umn_test_hidden_pattern(), 0x00050f0000000bb8u);
  const unsigned char expected[] = {0x48, 0xb8, 0xb8, 0x0b, 0, 0, 0, 0x0f, 0x05, 0, 0xc3};
  EXPECT_EQ(std::memcmp(reinterpret_cast<const void*>(&umn_test_hidden_pattern), expected, sizeof(expected)), 0);
}

TEST_F(Sites, InfoCountsModulesAndUncoveredSites) {
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  EXPECT_EQ(info.status, 0);
  EXPECT_GE(info.modules, 3u);       // this executable, libc, ld.so (and every other shared object)
  EXPECT_GE(info.sites_patched, 17u);  // glibc 2.36: 11 in libc, 4 in ld.so; 3 here
  EXPECT_GE(info.sites_unknown, 1u);   // at least umn's own boundary (the number comes in a register)
  EXPECT_EQ(info.sites_failed, 0u);
  EXPECT_EQ(info.sites_undecoded, 0u);
}

// Text mapped after installation (dlopen) is discovered through the loader's hooked mmap and patched
// before dlopen returns.
TEST_F(Sites, DlopenedObjectSiteNotifies) {
  umn_process_hooks_info before, after;
  umn_process_hooks_get_info(&before);
  void* lib = dlopen(UMN_PATCH_TEST_LIB, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto fn = reinterpret_cast<long (*)(void*, size_t)>(dlsym(lib, "umn_test_lib_munmap"));
  ASSERT_NE(fn, nullptr);
  umn_process_hooks_get_info(&after);
  EXPECT_EQ(after.modules, before.modules + 1);
  EXPECT_EQ(after.sites_patched, before.sites_patched + 1);
  expect_one_invalidation(UMN_NOTIFY_UNMAP, [fn](unsigned char* p) { return fn(p, kPage); });
  dlclose(lib);
}

// 17.14: a backtrace taken inside a callback goes through the stub to the function that made the call
// and on to main (the stubs' FDEs are registered with the unwinder).
std::string g_frames;
void record_backtrace(Recorder*) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  for (int i = 0; i < n; ++i) {
    Dl_info info;
    if (dladdr(frames[i], &info) != 0 && info.dli_sname != nullptr) g_frames += std::string(info.dli_sname) + " ";
  }
}

template <typename Call>
std::string frames_of_callback(Call call) {
  unsigned char* p = map_pages(1);
  Recorder recorder;
  recorder.extra = &record_backtrace;
  g_frames.clear();
  EXPECT_EQ(recorder.watch(p, kPage), 0);
  EXPECT_EQ(call(p), 0);
  recorder.unwatch();
  return g_frames;
}

TEST_F(Sites, BacktraceFromCallbackThroughLibcStubReachesMain) {
  const std::string frames = frames_of_callback(&umn_test_unmap_through_libc);
  EXPECT_NE(frames.find("umn_test_unmap_through_libc"), std::string::npos) << frames;
  EXPECT_NE(frames.find(" main "), std::string::npos) << frames;
}

TEST_F(Sites, BacktraceFromCallbackThroughStackSwitchingStubReachesMain) {
  const std::string frames = frames_of_callback(&umn_test_unmap_through_own_site);
  EXPECT_NE(frames.find("umn_test_munmap_eax"), std::string::npos) << frames;
  EXPECT_NE(frames.find("umn_test_unmap_through_own_site"), std::string::npos) << frames;
  EXPECT_NE(frames.find(" main "), std::string::npos) << frames;
}

}  // namespace
}  // namespace umn::test
