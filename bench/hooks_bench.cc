// hooks_bench.cc - what the process hooks cost a munmap + mmap of one page.
//
//   BM_MunmapMmap_RawSyscall          baseline: the same two system calls issued directly (no libc, so
//                                     no hook), in the same process.
//   BM_MunmapMmap_HookedBare          libc's mmap/munmap through the patched sites, hooks installed, no
//                                     notifier ever inserted (the address space has no subscriptions).
//   BM_MunmapMmap_Hooked              hooks installed, one interval notifier elsewhere (not overlapping):
//                                     the case of a program using umn. Target (issue 4): <= 1.3x.
//   BM_MunmapMmapFixed_RawSyscall     baseline at a fixed address (MAP_FIXED_NOREPLACE).
//   BM_MunmapMmapFixed_Overlapping    the same through the hooks with one notifier over the page, whose
//                                     callback takes its lock and calls set_seq (one invalidation/iter).
//   BM_Process_Plain / _Preload       a child process that never calls umn runs 200k munmap+mmap, without
//                                     and with LD_PRELOAD=libumn-preload.so ("pays nothing measurable").
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include "baseline.hpp"
#include "umn/process.h"
#include "umn/umn.h"

namespace {

constexpr size_t kPage = 4096;

// Direct system calls: the kernel work of munmap/mmap without going through libc (hence no hook).
long raw_mmap(void* addr, int flags) {
  long ret;
  register long r10 asm("r10") = flags;
  register long r8 asm("r8") = -1;
  register long r9 asm("r9") = 0;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(SYS_mmap), "D"(addr), "S"(kPage), "d"(PROT_READ | PROT_WRITE), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
}
long raw_munmap(void* addr) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(SYS_munmap), "D"(addr), "S"(kPage) : "rcx", "r11", "memory");
  return ret;
}

struct Device {
  umn_interval_notifier notifier{};  // first member
  std::mutex lock;
};
bool invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long seq) {
  auto* device = reinterpret_cast<Device*>(sub);
  std::lock_guard guard(device->lock);
  umn_interval_set_seq(sub, seq);
  return true;
}
const umn_interval_notifier_ops kOps = {invalidate, nullptr, nullptr};
Device g_elsewhere, g_over;

void BM_MunmapMmap_RawSyscall(benchmark::State& state) {
  for (auto _ : state) {
    long p = raw_mmap(nullptr, MAP_PRIVATE | MAP_ANONYMOUS);
    raw_munmap(reinterpret_cast<void*>(p));
  }
}

void libc_loop(benchmark::State& state) {
  for (auto _ : state) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, kPage);
  }
}

void BM_MunmapMmap_HookedBare(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  libc_loop(state);
}

void BM_MunmapMmap_Hooked(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  static char elsewhere[kPage];
  if (g_elsewhere.notifier.mm == nullptr)
    umn_interval_notifier_insert(&g_elsewhere.notifier, umn_mm_process(), reinterpret_cast<uint64_t>(elsewhere), kPage, &kOps);
  libc_loop(state);
}

void* fixed_address() {
  static void* address = [] {
    void* p = mmap(nullptr, kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    raw_munmap(p);  // a free page to reuse; raw so that no invalidation is counted here
    return p;
  }();
  return address;
}

void BM_MunmapMmapFixed_RawSyscall(benchmark::State& state) {
  void* at = fixed_address();
  for (auto _ : state) {
    raw_mmap(at, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE);
    raw_munmap(at);
  }
}

void BM_MunmapMmapFixed_Overlapping(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  void* at = fixed_address();
  if (g_over.notifier.mm == nullptr)
    umn_interval_notifier_insert(&g_over.notifier, umn_mm_process(), reinterpret_cast<uint64_t>(at), kPage, &kOps);
  for (auto _ : state) {
    mmap(at, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    munmap(at, kPage);
  }
}

constexpr long kChildOps = 200000;

// The child: never calls umn. Prints nanoseconds per munmap+mmap.
int child_loop() {
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < kChildOps; ++i) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, kPage);
  }
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.3f\n", ns / kChildOps);
  return 0;
}

std::string preload_path() {
  if (const char* env = std::getenv("UMN_PRELOAD_PATH")) return env;
  auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  return (exe / "../src/sources/libumn-preload.so").string();
}

// Runs the child once; returns its ns/op, or a negative value.
double run_child(bool preload) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    if (preload) setenv("LD_PRELOAD", preload_path().c_str(), 1);
    execl("/proc/self/exe", "hooks_bench", "--child-loop", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[64] = {};
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? std::atof(buf) : -1;
}

void process_bench(benchmark::State& state, bool preload) {
  if (preload && !std::filesystem::exists(preload_path()))
    return state.SkipWithError("libumn-preload.so not found (set UMN_PRELOAD_PATH)");
  for (auto _ : state) {
    double ns = run_child(preload);
    if (ns < 0) return state.SkipWithError("child failed");
    state.SetIterationTime(ns * 1e-9);
  }
}
void BM_Process_Plain(benchmark::State& state) { process_bench(state, false); }
void BM_Process_Preload(benchmark::State& state) { process_bench(state, true); }

}  // namespace

// Order matters: the bare variant runs before any notifier is inserted.
BENCHMARK(BM_MunmapMmap_RawSyscall)->UseRealTime();
BENCHMARK(BM_MunmapMmap_HookedBare)->UseRealTime();
BENCHMARK(BM_MunmapMmap_Hooked)->UseRealTime();
BENCHMARK(BM_MunmapMmapFixed_RawSyscall)->UseRealTime();
BENCHMARK(BM_MunmapMmapFixed_Overlapping)->UseRealTime();
BENCHMARK(BM_Process_Plain)->UseManualTime()->Iterations(5);
BENCHMARK(BM_Process_Preload)->UseManualTime()->Iterations(5);

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child-loop") == 0) return child_loop();
  return umn::bench::run(argc, argv,
                         {{"BM_MunmapMmap_Hooked/real_time", "BM_MunmapMmap_RawSyscall/real_time",
                           "hooked munmap+mmap, notifier elsewhere", 1.3, true},
                          {"BM_MunmapMmap_HookedBare/real_time", "BM_MunmapMmap_RawSyscall/real_time",
                           "hooked munmap+mmap, no notifier at all", 1.3, true},
                          {"BM_MunmapMmapFixed_Overlapping/real_time", "BM_MunmapMmapFixed_RawSyscall/real_time",
                           "hooked munmap+mmap, one overlapping notifier", 0, true},
                          {"BM_Process_Preload/iterations:5/manual_time", "BM_Process_Plain/iterations:5/manual_time",
                           "program never calling umn, with the preload", 1.1, true}});
}
