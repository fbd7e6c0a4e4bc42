// unsupported_test.cc - the process API built without the process hooks (UMN_PROCESS_HOOKS=OFF, as on
// every architecture but x86-64): each call returns what umn/process.h promises there (-ENOSYS, or NULL
// with errno ENOSYS), umn_mm_process() is still a working address space that nothing feeds, and the
// name functions still name. Built only in that configuration (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "umn/process.h"

namespace {

void ignore_event(void*, const umn_process_event*, int, void*) {}

int g_invalidations = 0;
bool count_invalidation(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
  ++g_invalidations;
  umn_interval_set_seq(sub, cur_seq);
  return true;
}

// Installation reports -ENOSYS, and get_info says so too instead of "not tried yet".
TEST(NoHooks, InstallAndInfoReportEnosys) {
  EXPECT_EQ(umn_process_hooks_install(), -ENOSYS);
  umn_process_hooks_info info;
  std::memset(&info, 0xff, sizeof(info));
  umn_process_hooks_get_info(&info);
  EXPECT_EQ(info.status, -ENOSYS);
  EXPECT_EQ(info.sites_patched, 0u);
  EXPECT_EQ(info.events, 0ul);
}

int g_diagnostics = 0;
void count_diagnostic(void*, const char*, const char*) { ++g_diagnostics; }

// An observer cannot be added (-ENOSYS), with every flag umn/process.h defines; bad arguments are still
// -EINVAL, as with the hooks, and a NULL function is diagnosed (misuse) there as here.
TEST(NoHooks, ObserverAddReturnsEnosysAndBadArgumentsEinval) {
  EXPECT_EQ(umn_process_observer_add(&ignore_event, nullptr), -ENOSYS);
  EXPECT_EQ(umn_process_observer_add_flags(&ignore_event, nullptr, UMN_PROCESS_OBSERVE_QUIET), -ENOSYS);
  EXPECT_EQ(umn_process_observer_add_flags(&ignore_event, nullptr, UMN_PROCESS_OBSERVE_NESTED), -ENOSYS);
  EXPECT_EQ(
      umn_process_observer_add_flags(&ignore_event, nullptr, UMN_PROCESS_OBSERVE_QUIET | UMN_PROCESS_OBSERVE_NESTED),
      -ENOSYS);
  EXPECT_EQ(umn_process_observer_add_flags(&ignore_event, nullptr, 0x80000000u), -EINVAL);
  g_diagnostics = 0;
  umn_set_diagnostic_hook(&count_diagnostic, nullptr);
  EXPECT_EQ(umn_process_observer_add(nullptr, nullptr), -EINVAL);
  umn_set_diagnostic_hook(nullptr, nullptr);
  EXPECT_EQ(g_diagnostics, 1);
  umn_process_observer_remove(0);  // no slot to free: must not crash
}

// The userfaultfd monitor cannot start: NULL with errno ENOSYS; the other monitor calls are inert.
TEST(NoHooks, UffdMonitorStartFailsWithEnosys) {
  errno = 0;
  EXPECT_EQ(umn_uffd_monitor_start(umn_mm_process()), nullptr);
  EXPECT_EQ(errno, ENOSYS);
  EXPECT_EQ(umn_uffd_monitor_register(nullptr, nullptr, 4096), -ENOSYS);
  EXPECT_EQ(umn_uffd_monitor_events(nullptr), 0ul);
}

// umn_mm_process() is a usable address space (explicit invalidations reach its notifiers), but munmap()
// reaches no one: nothing feeds it.
TEST(NoHooks, ProcessAddressSpaceWorksButMunmapIsNotDelivered) {
  static const umn_interval_notifier_ops ops = {&count_invalidation, nullptr, nullptr};
  umn_mm* mm = umn_mm_process();
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(umn_mm_process(), mm);
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  const auto start = reinterpret_cast<uint64_t>(page);
  umn_interval_notifier sub{};
  ASSERT_EQ(umn_interval_notifier_insert(&sub, mm, start, 4096, &ops), 0);
  g_invalidations = 0;
  ASSERT_EQ(munmap(page, 4096), 0);
  EXPECT_EQ(g_invalidations, 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, start, start + 4096);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(g_invalidations, 1);
  umn_interval_notifier_remove(&sub);
}

// The names do not depend on the hooks.
TEST(NoHooks, NamesAreAvailable) {
  EXPECT_STREQ(umn_process_call_name(UMN_CALL_MUNMAP), "munmap");
  EXPECT_STREQ(umn_process_call_name(UMN_CALL_COUNT), "?");
  EXPECT_STREQ(umn_notifier_event_name(UMN_NOTIFY_UNMAP), "UNMAP");
  EXPECT_STREQ(umn_notifier_event_name(UMN_NOTIFY_EXCLUSIVE), "EXCLUSIVE");
}

}  // namespace
