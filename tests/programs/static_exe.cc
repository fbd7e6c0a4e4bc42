// static_exe.cc - a fully static executable (openucx/ucx #3210, "hooks with static linking"): libc's
// wrappers live in the executable's own text, which the patcher scans when no libc.so is mapped.
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "umn/process.h"
#include "umn/umn.h"

namespace {
int g_calls = 0;
bool invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long seq) {
  g_calls++;
  umn_interval_set_seq(sub, seq);
  return true;
}
}  // namespace

int main() {
  umn_mm* mm = umn_mm_process();
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  static const umn_interval_notifier_ops ops = {&invalidate, nullptr, nullptr};
  auto* p = static_cast<char*>(mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  umn_interval_notifier notifier{};
  umn_interval_notifier_insert(&notifier, mm, reinterpret_cast<uint64_t>(p), 3 * 4096, &ops);
  munmap(p, 4096);
  syscall(SYS_munmap, p + 4096, 4096);
  madvise(p + 2 * 4096, 4096, MADV_DONTNEED);
  umn_interval_notifier_remove(&notifier);
  std::printf("static: status %d, %u sites patched, raw syscall %d, %d calls\n", info.status, info.sites_patched,
              info.raw_syscall_covered, g_calls);
  return info.status == 0 && g_calls == 3 ? 0 : 1;
}
