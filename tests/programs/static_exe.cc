// static_exe.cc - a fully static executable (openucx/ucx #3210, "hooks with static linking"): libc's
// wrappers live in the executable's own text, which the patcher decodes like any other module. The
// executable also holds a site's byte pattern inside another instruction (issue 17.11: a bare byte scan
// rewrote the middle of that movabs): it must stay intact and keep its value.
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "umn/process.h"
#include "umn/umn.h"

// uint64_t umn_test_hidden_pattern(void): movabs $0x00050f0000000bb8,%rax; ret. The immediate holds
// "b8 0b 00 00 00 0f 05" (mov $SYS_munmap,%eax; syscall), which is not an instruction here.
asm(R"(
  .text
  .globl umn_test_hidden_pattern
  .type umn_test_hidden_pattern, @function
  .p2align 4
umn_test_hidden_pattern:
  .cfi_startproc
  movabs $0x00050f0000000bb8, %rax
  ret
  .cfi_endproc
  .size umn_test_hidden_pattern, .-umn_test_hidden_pattern
)");
extern "C" uint64_t umn_test_hidden_pattern();

namespace {
int g_calls = 0;

bool hidden_pattern_intact() {
  const unsigned char expected[] = {0x48, 0xb8, 0xb8, 0x0b, 0, 0, 0, 0x0f, 0x05, 0, 0xc3};
  return std::memcmp(reinterpret_cast<const void*>(&umn_test_hidden_pattern), expected, sizeof(expected)) == 0 &&
         umn_test_hidden_pattern() == 0x00050f0000000bb8u;
}
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
  const bool intact = hidden_pattern_intact();
  std::printf("static: status %d, %u sites patched, raw syscall %d, %d calls, movabs %s\n", info.status,
              info.sites_patched, info.raw_syscall_covered, g_calls, intact ? "intact" : "REWRITTEN");
  return info.status == 0 && g_calls == 3 && intact ? 0 : 1;
}
