// hooks_bench.cc - what the process hooks cost.
//
// In this process, the unhooked variants run first, then the hooks are installed (by the first hooked
// variant) and the hooked ones run; benchmarks run in registration order, so this holds with
// --benchmark_repetitions (but not with --benchmark_enable_random_interleaving).
// Every munmap+mmap pair maps one read-write page into a guarded hole (see guarded_hole()), with
// MAP_FIXED_NOREPLACE, and unmaps it: identical kernel work in every variant.
//   BM_MunmapMmap_RawSyscall          the pair issued with our own syscall instructions: the kernel's
//                                     work alone (information).
//   BM_MunmapMmap_Libc                the same through libc, not hooked yet: the baseline. (On the
//                                     development VM this pair costs ~0.5 us more CPU time through libc
//                                     than with inline syscall instructions, with no umn in the process,
//                                     and as much through an out-of-line function of our own: the
//                                     call/return around the syscall costs it, not umn.)
//   BM_MunmapMmap_HookedBare          through libc's patched sites, no notifier ever inserted (the
//                                     address space has no subscriptions).
//   BM_MunmapMmap_Hooked              one interval notifier elsewhere (not overlapping): the case of a
//                                     program using umn. Target (issue 4): <= 1.3x.
//   BM_MunmapMmap_Overlapping         one notifier over the page, whose callback takes its lock and
//                                     calls set_seq (one invalidation per iteration).
//   BM_Quiet_Libc / _Hooked           mprotect to the protection a page already has: a hooked call that
//                                     causes no event (what every non-fixed mmap pays). The difference
//                                     is the cost of one hooked call.
//   BM_Event_Libc / _Hooked           munmap of a page where nothing is mapped: a hooked call that is
//                                     announced (start/end on the address space, notifier elsewhere).
//   BM_InsertRemove_Simulated / _Process
//                                     umn_interval_notifier_insert + _remove of one page on a simulated
//                                     address space and on umn_mm_process(), whose lock sections outside
//                                     the invalidate path block signals (docs/process.md, "Signals").
// In child processes that never call umn (BM_Process_Interleaved): each round runs, in a rotating order,
// the same loop of kChildOps munmap+mmap pairs four times: plain, with LD_PRELOAD=libumn-preload.so,
// plain again (the run-to-run noise), and with the hooks installed by the child itself (what an
// eagerly patching preload would cost). Ratios are taken per round, then the median over the rounds.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "baseline.hpp"
#include "sources/sys/sys.hpp"
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

// A one-page hole between two PROT_NONE pages of our own, reserved before the hooks exist. A read-write
// page mapped there cannot merge with its neighbours, so munmap never splits a mapping and the kernel's
// work does not depend on what else happens to be mapped nearby (it did: a one-page mmap(NULL) merged
// or not with its neighbour depending on the layout, which moved by more than the hooks cost).
char* guarded_hole() {
  auto* p = static_cast<char*>(mmap(nullptr, 3 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  raw_munmap(p + kPage);  // raw: no hook may see it
  return p + kPage;
}
char* pair_hole() {
  static char* at = guarded_hole();
  return at;
}

// MAP_FIXED_NOREPLACE is not MAP_FIXED: the mmap is a quiet hooked call, the munmap an announced one.
constexpr int kPairFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

void BM_MunmapMmap_RawSyscall(benchmark::State& state) {
  char* at = pair_hole();
  for (auto _ : state) {
    raw_mmap(at, kPairFlags);
    raw_munmap(at);
  }
}

void libc_loop(benchmark::State& state, char* at) {
  for (auto _ : state) {
    mmap(at, kPage, PROT_READ | PROT_WRITE, kPairFlags, -1, 0);
    munmap(at, kPage);
  }
}

bool hooks_installed() {
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  return info.status == 0;
}

void BM_MunmapMmap_Libc(benchmark::State& state) {
  if (hooks_installed()) return state.SkipWithError("hooks already installed (run the unhooked variants first)");
  libc_loop(state, pair_hole());
}

void BM_MunmapMmap_HookedBare(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  libc_loop(state, pair_hole());
}

// One notifier on a page no benchmark touches: the address space has subscriptions from then on.
void insert_elsewhere() {
  static char elsewhere[kPage];
  if (g_elsewhere.notifier.mm == nullptr)
    umn_interval_notifier_insert(&g_elsewhere.notifier, umn_mm_process(), reinterpret_cast<uint64_t>(elsewhere), kPage,
                                 &kOps);
}

void BM_MunmapMmap_Hooked(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  insert_elsewhere();
  libc_loop(state, pair_hole());
}

void BM_MunmapMmap_Overlapping(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  static char* at = guarded_hole();
  if (g_over.notifier.mm == nullptr)
    umn_interval_notifier_insert(&g_over.notifier, umn_mm_process(), reinterpret_cast<uint64_t>(at), kPage, &kOps);
  libc_loop(state, at);
}

// A read-write page for the quiet call, and a page-sized hole (nothing mapped) for the announced one.
char* quiet_page() {
  static char* page =
      static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  return page;
}
char* hole() {
  static char* at = guarded_hole();
  return at;
}

void BM_Quiet_Libc(benchmark::State& state) {
  if (hooks_installed()) return state.SkipWithError("hooks already installed (run the unhooked variants first)");
  for (auto _ : state) mprotect(quiet_page(), kPage, PROT_READ | PROT_WRITE);
}
void BM_Quiet_Hooked(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  for (auto _ : state) mprotect(quiet_page(), kPage, PROT_READ | PROT_WRITE);
}
void BM_Event_Libc(benchmark::State& state) {
  if (hooks_installed()) return state.SkipWithError("hooks already installed (run the unhooked variants first)");
  for (auto _ : state) munmap(hole(), kPage);
}
void BM_Event_Hooked(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  insert_elsewhere();
  for (auto _ : state) munmap(hole(), kPage);
}

// ---- in this process, interleaved ----------------------------------------------------------------------
// The sequential variants above compare runs made seconds apart, before and after installation; on a
// shared machine the load moves in between. Here the baseline is umn's own out-of-line raw system call
// (sources/sys: the call shape of a libc wrapper, never hooked), so it can alternate with the hooked
// libc call block by block, after installation, and each round gives one ratio.

constexpr int kInRounds = 101;
constexpr int kInBlock = 1000;

enum InKind { kPairBare, kPairElsewhere, kQuiet, kEvent, kOpen, kInKinds };
const char* const kInKindNames[kInKinds] = {
    "munmap+mmap, no notifier at all", "munmap+mmap, notifier elsewhere", "one quiet call (mprotect, no event)",
    "one announced call (munmap of a hole)", "open+close of /dev/null (openat watched)"};
struct InSample {
  double base, hooked;  // ns per operation in one round
};
std::vector<InSample> g_in[kInKinds];  // over all repetitions of BM_InProcess_Interleaved

template <class Base, class Hooked>
void interleave(InKind kind, Base base, Hooked hooked) {
  for (int round = 0; round < kInRounds; ++round) {
    double ns[2];
    for (int j = 0; j < 2; ++j) {
      const int which = (round + j) % 2;  // alternate which goes first
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < kInBlock; ++i) which == 0 ? base() : hooked();
      ns[which] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kInBlock;
    }
    g_in[kind].push_back({ns[0], ns[1]});
  }
}

void BM_InProcess_Interleaved(benchmark::State& state) {
  if (umn_process_hooks_install() != 0) return state.SkipWithError("hooks not installed");
  char* at = pair_hole();
  auto sys_pair = [at] {
    umn::sys::mmap(at, kPage, PROT_READ | PROT_WRITE, kPairFlags, -1, 0);
    umn::sys::munmap(at, kPage);
  };
  auto libc_pair = [at] {
    mmap(at, kPage, PROT_READ | PROT_WRITE, kPairFlags, -1, 0);
    munmap(at, kPage);
  };
  for (auto _ : state) {
    if (g_elsewhere.notifier.mm == nullptr) interleave(kPairBare, sys_pair, libc_pair);  // before any insert
    insert_elsewhere();
    interleave(kPairElsewhere, sys_pair, libc_pair);
    interleave(
        kQuiet, [] { umn::sys::mprotect(quiet_page(), kPage, PROT_READ | PROT_WRITE); },
        [] { mprotect(quiet_page(), kPage, PROT_READ | PROT_WRITE); });
    interleave(
        kEvent, [] { umn::sys::munmap(hole(), kPage); }, [] { munmap(hole(), kPage); });
    // openat is watched for O_TRUNC (issue 17.6): an open without it is classified and passed through.
    interleave(
        kOpen, [] { umn::sys::close(static_cast<int>(umn::sys::open_read("/dev/null"))); },
        [] { close(open("/dev/null", O_RDONLY | O_CLOEXEC)); });
  }
}

// ---- child processes ---------------------------------------------------------------------------------

constexpr long kChildOps = 50000;
constexpr int kRounds = 15;

// The child: never calls umn, unless told to install the hooks first. Prints wall and CPU (user + system)
// nanoseconds per munmap+mmap.
int child_loop(bool install) {
  if (install && umn_process_hooks_install() != 0) return 1;
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  auto start = std::chrono::steady_clock::now();
  char* at = pair_hole();
  for (long i = 0; i < kChildOps; ++i) {
    mmap(at, kPage, PROT_READ | PROT_WRITE, kPairFlags, -1, 0);
    munmap(at, kPage);
  }
  double wall = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  getrusage(RUSAGE_SELF, &after);
  auto ns = [](const timeval& t) { return t.tv_sec * 1e9 + t.tv_usec * 1e3; };
  double cpu = ns(after.ru_utime) - ns(before.ru_utime) + ns(after.ru_stime) - ns(before.ru_stime);
  std::printf("%.3f %.3f\n", wall / kChildOps, cpu / kChildOps);
  return 0;
}

std::string preload_path() {
  if (const char* env = std::getenv("UMN_PRELOAD_PATH")) return env;
  auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  return (exe / "../src/sources/libumn-preload.so").string();
}

enum Kind { kPlain, kPreload, kPlainAgain, kHooked, kKinds };
const char* const kKindNames[kKinds] = {"plain", "preload", "plain again", "hooks installed"};

struct ChildTime {
  double wall = -1, cpu = -1;  // ns per munmap+mmap
};

ChildTime run_child(Kind kind) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    if (kind == kPreload) setenv("LD_PRELOAD", preload_path().c_str(), 1);
    execl("/proc/self/exe", "hooks_bench", kind == kHooked ? "--child-loop-hooked" : "--child-loop",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[128] = {};
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ChildTime t;
  if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || std::sscanf(buf, "%lf %lf", &t.wall, &t.cpu) != 2)
    return {};
  return t;
}

std::vector<ChildTime> g_rounds[kKinds];  // one entry per round, over all repetitions of BM_Process_Interleaved

void BM_Process_Interleaved(benchmark::State& state) {
  if (!std::filesystem::exists(preload_path()))
    return state.SkipWithError("libumn-preload.so not found (set UMN_PRELOAD_PATH)");
  for (auto _ : state) {
    double total = 0;
    for (int round = 0; round < kRounds; ++round) {
      for (int i = 0; i < kKinds; ++i) {
        Kind kind = static_cast<Kind>((round + i) % kKinds);  // rotate: no kind always runs first
        ChildTime t = run_child(kind);
        if (t.wall < 0) return state.SkipWithError("child failed");
        g_rounds[kind].push_back(t);
        total += t.wall * kChildOps;
      }
    }
    state.SetIterationTime(total * 1e-9);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
}
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5)];
}

// Per-round ratio of kind against plain, in wall or CPU time.
std::vector<double> ratios(Kind kind, bool cpu) {
  std::vector<double> out;
  for (size_t i = 0; i < g_rounds[kind].size() && i < g_rounds[kPlain].size(); ++i) {
    const ChildTime& a = g_rounds[kind][i];
    const ChildTime& b = g_rounds[kPlain][i];
    out.push_back(cpu ? a.cpu / b.cpu : a.wall / b.wall);
  }
  return out;
}

// Derived figures: per-call costs in this process, and the child-process comparison.
void report(const umn::bench::RecordingReporter& reporter) {
  std::printf("\n%-48s %10s\n", "cost of one hooked call (subject - baseline)", "ns");
  const struct {
    const char* what;
    const char* subject;
    const char* baseline;
  } calls[] = {
      {"no event (mprotect to the same protection)", "BM_Quiet_Hooked/real_time", "BM_Quiet_Libc/real_time"},
      {"announced (munmap of a hole, notifier elsewhere)", "BM_Event_Hooked/real_time", "BM_Event_Libc/real_time"}};
  for (const auto& c : calls) {
    double subject = reporter.time_of(c.subject), baseline = reporter.time_of(c.baseline);
    if (subject > 0 && baseline > 0) std::printf("%-48s %10.0f\n", c.what, subject - baseline);
  }
  if (!g_in[kPairElsewhere].empty()) {
    std::printf("\nin this process, interleaved: %d-operation blocks, baseline = umn's raw syscall function\n",
                kInBlock);
    std::printf("%-40s %7s %12s %12s %12s %26s\n", "", "rounds", "base ns", "hooked ns", "hooked-base",
                "hooked / base: median [IQR]");
    for (int k = 0; k < kInKinds; ++k) {
      std::vector<double> base, hooked, diff, ratio;
      for (const InSample& x : g_in[k]) {
        base.push_back(x.base);
        hooked.push_back(x.hooked);
        diff.push_back(x.hooked - x.base);
        ratio.push_back(x.hooked / x.base);
      }
      if (ratio.empty()) continue;
      std::printf(
          "%-40s %7zu %12.0f %12.0f %12.0f %11.3fx [%.3f, %.3f]%s\n", kInKindNames[k], ratio.size(), median(base),
          median(hooked), median(diff), median(ratio), quantile(ratio, 0.25), quantile(ratio, 0.75),
          k == kPairElsewhere ? (median(ratio) <= 1.3 ? "  target <= 1.30x: met" : "  target <= 1.30x: MISSED") : "");
    }
  }
  if (g_rounds[kPlain].empty()) return;
  std::printf("\nchild processes never calling umn, %zu rounds of %ld munmap+mmap, rotating order\n",
              g_rounds[kPlain].size(), kChildOps);
  std::printf("%-16s %16s %16s %28s %28s\n", "child", "wall ns (median)", "cpu ns (median)",
              "wall / plain: median [IQR]", "cpu / plain: median [IQR]");
  for (int k = 0; k < kKinds; ++k) {
    std::vector<double> wall, cpu;
    for (const ChildTime& t : g_rounds[k]) wall.push_back(t.wall), cpu.push_back(t.cpu);
    std::vector<double> rw = ratios(static_cast<Kind>(k), false), rc = ratios(static_cast<Kind>(k), true);
    std::printf("%-16s %16.0f %16.0f %11.3fx [%.3f, %.3f] %11.3fx [%.3f, %.3f]\n", kKindNames[k], median(wall),
                median(cpu), median(rw), quantile(rw, 0.25), quantile(rw, 0.75), median(rc), quantile(rc, 0.25),
                quantile(rc, 0.75));
  }
  // "Nothing measurable": the preload's median ratio is within 3% of 1, and within the spread that two
  // identical plain runs show (the plain-again ratio's interquartile range), in wall and in CPU time.
  for (bool cpu : {false, true}) {
    std::vector<double> noise = ratios(kPlainAgain, cpu);
    double preload = median(ratios(kPreload, cpu));
    double lo = std::min(quantile(noise, 0.25), 0.97), hi = std::max(quantile(noise, 0.75), 1.03);
    std::printf("%-48s %9.3fx in [%.3f, %.3f]: %s\n",
                cpu ? "preload, never calling umn (cpu time)" : "preload, never calling umn (wall time)", preload, lo,
                hi, preload >= lo && preload <= hi ? "nothing measurable" : "MEASURABLE");
  }
  double hooked = median(ratios(kHooked, true));
  std::printf("%-48s %9.3fx (cpu time; target <= 1.30x: %s)\n", "child with the hooks installed", hooked,
              hooked <= 1.3 ? "met" : "MISSED");
}

// One insert + remove pair per iteration, on `mm`.
void insert_remove_loop(benchmark::State& state, umn_mm* mm) {
  static char page[kPage];
  Device device;
  for (auto _ : state) {
    umn_interval_notifier_insert(&device.notifier, mm, reinterpret_cast<uint64_t>(page), kPage, &kOps);
    umn_interval_notifier_remove(&device.notifier);
  }
}
void BM_InsertRemove_Simulated(benchmark::State& state) {
  umn_mm* mm = umn_mm_create();
  insert_remove_loop(state, mm);
  umn_mm_destroy(mm);
}
void BM_InsertRemove_Process(benchmark::State& state) { insert_remove_loop(state, umn_mm_process()); }

}  // namespace

// Order matters: every unhooked variant runs before the first hooked one installs the hooks, and the
// bare variant before any notifier is inserted.
BENCHMARK(BM_MunmapMmap_RawSyscall)->UseRealTime();
BENCHMARK(BM_MunmapMmap_Libc)->UseRealTime();
BENCHMARK(BM_Quiet_Libc)->UseRealTime();
BENCHMARK(BM_Event_Libc)->UseRealTime();
BENCHMARK(BM_MunmapMmap_HookedBare)->UseRealTime();
BENCHMARK(BM_InProcess_Interleaved)->Iterations(1);
BENCHMARK(BM_MunmapMmap_Hooked)->UseRealTime();
BENCHMARK(BM_MunmapMmap_Overlapping)->UseRealTime();
BENCHMARK(BM_Quiet_Hooked)->UseRealTime();
BENCHMARK(BM_Event_Hooked)->UseRealTime();
BENCHMARK(BM_Process_Interleaved)->UseManualTime()->Iterations(1);
BENCHMARK(BM_InsertRemove_Simulated)->UseRealTime();
BENCHMARK(BM_InsertRemove_Process)->UseRealTime();

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--child-loop") == 0) return child_loop(false);
  if (argc > 1 && std::strcmp(argv[1], "--child-loop-hooked") == 0) return child_loop(true);
  // Sequential ratios are information only (run seconds apart, they moved by 15% on a quiet machine);
  // the target is judged on the interleaved comparison printed by report().
  return umn::bench::run(argc, argv,
                         {{"BM_MunmapMmap_Hooked/real_time", "BM_MunmapMmap_Libc/real_time",
                           "hooked munmap+mmap, notifier elsewhere", 0, true},
                          {"BM_MunmapMmap_HookedBare/real_time", "BM_MunmapMmap_Libc/real_time",
                           "hooked munmap+mmap, no notifier at all", 0, true},
                          {"BM_MunmapMmap_Overlapping/real_time", "BM_MunmapMmap_Libc/real_time",
                           "hooked munmap+mmap, one overlapping notifier", 0, true},
                          {"BM_MunmapMmap_Libc/real_time", "BM_MunmapMmap_RawSyscall/real_time",
                           "unhooked libc munmap+mmap vs raw syscalls", 0, true},
                          {"BM_MunmapMmap_Hooked/real_time", "BM_MunmapMmap_RawSyscall/real_time",
                           "hooked (notifier elsewhere) vs raw syscalls", 0, true},
                          {"BM_InsertRemove_Process/real_time", "BM_InsertRemove_Simulated/real_time",
                           "insert+remove, process vs simulated mm", 0, true}},
                         report);
}
