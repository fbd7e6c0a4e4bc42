// uffd_misuse_test.cc - the userfaultfd monitor's calls follow base/check.hpp's rule: a NULL handle is
// misuse, reported through the diagnostic hook and answered with the documented error (it was answered
// silently before), and umn_uffd_monitor_stop(NULL) is ignored, as umn/process.h says.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "umn/process.h"

namespace {

std::vector<std::string> g_calls;
void record_call(void*, const char* call, const char*) { g_calls.emplace_back(call); }

TEST(UffdMonitorMisuse, NullHandlesAreDiagnosedAndRefused) {
  g_calls.clear();
  umn_set_diagnostic_hook(&record_call, nullptr);
  errno = 0;
  EXPECT_EQ(umn_uffd_monitor_start(nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(umn_uffd_monitor_register(nullptr, nullptr, 4096), -EINVAL);
  EXPECT_EQ(umn_uffd_monitor_events(nullptr), 0ul);
  umn_uffd_monitor_stop(nullptr);
  umn_set_diagnostic_hook(nullptr, nullptr);
  EXPECT_EQ(g_calls,
            (std::vector<std::string>{"umn_uffd_monitor_start", "umn_uffd_monitor_register", "umn_uffd_monitor_events"}));
}

}  // namespace
