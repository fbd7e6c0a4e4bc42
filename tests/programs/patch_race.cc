// patch_race.cc - installing the hooks while other threads run the very code being patched (the UCX
// bistro race, PR #5855, and libfabric #10943). Without arguments, runs itself N times (fresh, unpatched
// processes through exec); as a child, starts threads that hammer munmap/madvise/mprotect/mmap/raw
// syscall(), installs the hooks in the middle, and then checks that a notifier sees a munmap.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "umn/process.h"
#include "umn/umn.h"

namespace {
std::atomic<bool> g_stop{false};
std::atomic<long> g_ops{0};
int g_calls = 0;

void hammer(int kind) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    void* p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    static_cast<char*>(p)[0] = 1;
    if (kind == 0) madvise(p, 4096, MADV_DONTNEED);
    if (kind == 1) mprotect(p, 4096, PROT_READ);
    // Unmap the whole range in one call: a hole left behind could be reused by another thread's mmap.
    if ((kind == 2 ? syscall(SYS_munmap, p, 8192) : munmap(p, 8192)) != 0) std::abort();
    g_ops.fetch_add(1, std::memory_order_relaxed);
  }
}

bool invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long seq) {
  g_calls++;
  umn_interval_set_seq(sub, seq);
  return true;
}

int child() {
  std::vector<std::thread> threads;
  for (int kind = 0; kind < 4; ++kind) threads.emplace_back(hammer, kind);
  while (g_ops.load() < 200) std::this_thread::yield();
  if (umn_process_hooks_install() != 0) return 2;  // patches while the threads run the sites
  long at_install = g_ops.load();
  while (g_ops.load() < at_install + 2000) std::this_thread::yield();
  g_stop = true;
  for (auto& thread : threads) thread.join();
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static const umn_interval_notifier_ops ops = {&invalidate, nullptr, nullptr};
  umn_interval_notifier notifier{};
  umn_interval_notifier_insert(&notifier, umn_mm_process(), reinterpret_cast<uint64_t>(p), 4096, &ops);
  munmap(p, 4096);
  umn_interval_notifier_remove(&notifier);
  return g_calls == 1 ? 0 : 3;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "child") == 0) return child();
  const int runs = argc > 1 ? std::atoi(argv[1]) : 20;
  for (int i = 0; i < runs; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/proc/self/exe", argv[0], "child", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "run %d failed: status %#x\n", i, status);
      return 1;
    }
  }
  std::printf("%d runs: installation under running threads OK\n", runs);
  return 0;
}
