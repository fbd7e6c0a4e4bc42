// regcache_bench.cc - umn's registration cache side by side with UCX's ucs_rcache (Debian libucx-dev
// 1.13.1), same driver, no-op counting reg/dereg, plus io_uring writes through cached fixed buffers.
//
// Run: build/test/bench/regcache_bench   (every row), or `regcache_bench W4` / `regcache_bench W3n`
// (that row alone). It runs itself
// as child processes, one per backend (`--backend=umn`, `--backend=ucx`), one after the other, then W4
// in pairs of children (w4_pairs): each backend patches libc process-wide (umn's syscall-site hooks,
// UCX's bistro function patches), so each runs alone with its own hooks, as an application would. The
// parent prints both columns and the ratios of this one run. Each figure is the median of kReps
// repetitions, in thread CPU time (see now_ns()). Never set UCX_MEM_MMAP_HOOK_MODE=reloc (livelocks).
//
// Workloads (ns per operation unless noted):
//   W1 get+put hit on one 16 KiB region                       W2 hits over 4096 one-page regions (hashed)
//   W3 mmap -> get (miss: registration) -> put -> munmap, get and munmap timed apart (median round, TSC)
//   W3n a miss with n = 0, 64, 1024, 4096, 16384 regions already cached (one child per backend)
//   W4 one munmap over 4096 cached one-page regions (us; paired children, see w4_pairs)
//                                                             W5 uncached madvise(DONTNEED) with the cache
//   W6 two threads hitting distinct regions, in lockstep (per op, slower thread; see w6_two_threads)
//   W7 hits while another thread churns mmap/get/put/munmap
//   W8 a getter against mmap(MAP_FIXED) replacing its range for kRaceSeconds: registrations returned
//      after their memory was replaced (stale: reg pins the first page and records its frame from
//      /proc/self/pagemap, which needs root), with umn's retry count
//   io_uring (umn process): 4 KiB and 64 KiB writes through the cache's fixed buffers, raw fixed
//      buffers, plain writes.
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ucx/rcache_params.h"
#include "umn/process.h"
#include "umn/regcache.h"
#include "umn/uring_buffers.h"

namespace {

constexpr size_t kPage = 4096;
constexpr int kReps = 5;
constexpr double kRaceSeconds = 2.0;

// The calling thread's CPU time (user + system): the development VM is shared (load averages of 10-18
// on 2 vCPUs were seen), and wall-clock time per operation there mostly measures time spent preempted.
// Both backends are timed the same way; a thread blocked in the kernel waiting for a lock is not
// charged, which can only favour UCX (its hits take locks, umn's do not).
double now_ns() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// Time stamp counter, for W3's sub-microsecond intervals (thread CPU time is a system call here); W3
// reports the median interval, so the rounds that were preempted do not count.
double g_ns_per_tick = 0;
void calibrate_tsc() {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t c0 = __builtin_ia32_rdtsc();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) {}
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  g_ns_per_tick = ns / static_cast<double>(__builtin_ia32_rdtsc() - c0);
}
uint64_t ticks() { return __builtin_ia32_rdtsc(); }

// Wall-clock time, for W8's fixed-duration race.
double wall_ns() {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

char* map_pages(size_t pages, void* at = nullptr) {
  void* p = mmap(at, pages * kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (at != nullptr ? MAP_FIXED : 0), -1, 0);
  if (p == MAP_FAILED) std::abort();
  std::memset(p, 1, pages * kPage);
  return static_cast<char*>(p);
}

template <class Fn>
double median_of(Fn fn, int reps = kReps) {
  std::vector<double> runs;
  for (int i = 0; i < reps; ++i) runs.push_back(fn());
  std::sort(runs.begin(), runs.end());
  return runs[static_cast<size_t>(reps / 2)];
}

// The physical frame behind addr (/proc/self/pagemap; 0 if unknown: not root, or not present).
int g_pagemap = -1;
uint64_t frame_of(const void* addr) {
  uint64_t entry = 0;
  const auto offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / kPage * sizeof(entry));
  if (pread(g_pagemap, &entry, sizeof(entry), offset) != sizeof(entry) || (entry >> 63) == 0) return 0;
  return entry & ((uint64_t{1} << 55) - 1);
}

// What a device's registration does to the first page: pin it (a write fault, as FOLL_WRITE pinning
// does) and remember the frame it got.
bool g_pin = false;  // W8 only: the other workloads use a no-op reg
uint64_t pin_first_page(uint64_t start) {
  if (!g_pin) return 0;
  auto* first = reinterpret_cast<volatile char*>(start);
  first[0] = first[0];
  return frame_of(reinterpret_cast<const void*>(start));
}

// W8's clocks: `started` = k before the k-th replacement, `replaced` = k after it returned and the new
// page was touched.
std::atomic<unsigned long> g_started{0}, g_replaced{0};
std::atomic<unsigned long> g_regs{0}, g_deregs{0};

// ---- the two backends ---------------------------------------------------------------------------

class Backend {
 public:
  virtual ~Backend() = default;
  virtual void* get(const void* addr, size_t len) = 0;  // nullptr on failure
  virtual void put(void* region) = 0;
  virtual uint64_t frame(void* region) = 0;  // the frame reg pinned
  virtual unsigned long retries() { return 0; }
};

class UmnBackend final : public Backend {
 public:
  UmnBackend() {
    if (umn_process_hooks_install() != 0 || umn_regcache_create(umn_mm_process(), nullptr, &kOps, nullptr, &rc_) != 0) {
      std::fprintf(stderr, "umn: cannot create the cache\n");
      std::exit(1);
    }
  }
  ~UmnBackend() override { umn_regcache_destroy(rc_); }
  void* get(const void* addr, size_t len) override {
    umn_regcache_region* region = nullptr;
    return umn_regcache_get(rc_, addr, len, &region) == 0 ? region : nullptr;
  }
  void put(void* region) override { umn_regcache_put(rc_, static_cast<umn_regcache_region*>(region)); }
  uint64_t frame(void* region) override {
    return reinterpret_cast<uintptr_t>(static_cast<umn_regcache_region*>(region)->handle);
  }
  unsigned long retries() override {
    struct umn_regcache_stats stats {};
    umn_regcache_stats(rc_, &stats);
    return stats.retries;
  }

 private:
  static int reg(void*, umn_regcache_region* region) {
    g_regs.fetch_add(1, std::memory_order_relaxed);
    region->handle = reinterpret_cast<void*>(pin_first_page(region->start));
    return 0;
  }
  static void dereg(void*, umn_regcache_region*) { g_deregs.fetch_add(1, std::memory_order_relaxed); }
  static constexpr umn_regcache_ops kOps = {&UmnBackend::reg, &UmnBackend::dereg, nullptr};
  umn_regcache* rc_ = nullptr;
};

struct UcxRegion {
  ucs_rcache_region_t super;
  uint64_t frame;
};

class UcxBackend final : public Backend {
 public:
  UcxBackend() {
    if (umn_ucx_rcache_create(&kOps, sizeof(UcxRegion), "bench", &rc_) != UCS_OK) {
      std::fprintf(stderr, "ucx: ucs_rcache_create failed\n");
      std::exit(1);
    }
  }
  ~UcxBackend() override { ucs_rcache_destroy(rc_); }
  void* get(const void* addr, size_t len) override {
    ucs_rcache_region_t* region = nullptr;
    return ucs_rcache_get(rc_, const_cast<void*>(addr), len, PROT_READ | PROT_WRITE, nullptr, &region) == UCS_OK
               ? region
               : nullptr;
  }
  void put(void* region) override { ucs_rcache_region_put(rc_, static_cast<ucs_rcache_region_t*>(region)); }
  uint64_t frame(void* region) override { return static_cast<UcxRegion*>(region)->frame; }

 private:
  static ucs_status_t reg(void*, ucs_rcache_t*, void*, ucs_rcache_region_t* region, uint16_t) {
    g_regs.fetch_add(1, std::memory_order_relaxed);
    auto* ours = reinterpret_cast<UcxRegion*>(region);
    ours->frame = pin_first_page(ours->super.super.start);
    return UCS_OK;
  }
  static void dereg(void*, ucs_rcache_t*, ucs_rcache_region_t*) { g_deregs.fetch_add(1, std::memory_order_relaxed); }
  static void dump(void*, ucs_rcache_t*, ucs_rcache_region_t*, char* buf, size_t) { buf[0] = 0; }
  static constexpr ucs_rcache_ops_t kOps = {&UcxBackend::reg, &UcxBackend::dereg, &UcxBackend::dump};
  ucs_rcache_t* rc_ = nullptr;
};

// ---- workloads ----------------------------------------------------------------------------------

double hits(Backend& b, const char* buf, long iterations) {
  double t0 = now_ns();
  for (long i = 0; i < iterations; ++i) b.put(b.get(buf + 64, 512));
  return (now_ns() - t0) / static_cast<double>(iterations);
}

double w2_scattered(Backend& b, char* area, long iterations) {
  double t0 = now_ns();
  for (long i = 0; i < iterations; ++i) {
    size_t index = (static_cast<uint64_t>(i) * 2654435761u) % 4096;
    b.put(b.get(area + 2 * index * kPage, kPage));
  }
  return (now_ns() - t0) / static_cast<double>(iterations);
}

void w3_miss(Backend& b, double* get_ns, double* munmap_ns) {
  constexpr int kRounds = 5000;
  std::vector<uint64_t> gets, munmaps;
  for (int i = 0; i < kRounds; ++i) {
    char* p = map_pages(4);
    uint64_t t0 = ticks();
    void* region = b.get(p, 4 * kPage);
    uint64_t t1 = ticks();
    b.put(region);
    uint64_t t2 = ticks();
    munmap(p, 4 * kPage);
    uint64_t t3 = ticks();
    gets.push_back(t1 - t0);
    munmaps.push_back(t3 - t2);
  }
  std::sort(gets.begin(), gets.end());
  std::sort(munmaps.begin(), munmaps.end());
  *get_ns = static_cast<double>(gets[kRounds / 2]) * g_ns_per_tick;
  *munmap_ns = static_cast<double>(munmaps[kRounds / 2]) * g_ns_per_tick;
}

double w4_munmap_4096(Backend& b) {
  char* area = map_pages(8192);
  for (size_t i = 0; i < 4096; ++i) b.put(b.get(area + 2 * i * kPage, kPage));
  double t0 = now_ns();
  munmap(area, 8192 * kPage);
  double t1 = now_ns();
  b.put(b.get(map_pages(1), kPage));  // the next miss: both caches drain their deferred work here
  return (t1 - t0) / 1000.0;
}

// W3n: one miss (get of an uncached one-page range, put, the region stays cached) with n one-page
// regions already cached. Each repetition caches n regions in a fresh area (untouched: reg is a no-op),
// then times kW3nMisses further misses one by one (TSC; the median of every repetition's misses counts,
// so misses during which the thread was preempted do not), then munmaps everything.
constexpr size_t kW3nSizes[] = {0, 64, 1024, 4096, 16384};
constexpr size_t kW3nMisses = 64;

double w3n_miss(Backend& b, size_t n) {
  std::vector<uint64_t> samples;
  for (int rep = 0; rep < kReps; ++rep) {
    const size_t pages = 2 * (n + kW3nMisses);
    void* mapped =
        mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapped == MAP_FAILED) std::abort();
    char* area = static_cast<char*>(mapped);
    for (size_t i = 0; i < n; ++i) b.put(b.get(area + 2 * i * kPage, kPage));
    for (size_t i = n; i < n + kW3nMisses; ++i) {
      const uint64_t t0 = ticks();
      void* region = b.get(area + 2 * i * kPage, kPage);
      b.put(region);
      samples.push_back(ticks() - t0);
    }
    munmap(area, pages * kPage);
    b.put(b.get(map_pages(1), kPage));  // the next miss: both caches drain their deferred work here
  }
  std::sort(samples.begin(), samples.end());
  return static_cast<double>(samples[samples.size() / 2]) * g_ns_per_tick;
}

double w5_madvise(char* page) {
  constexpr int kCalls = 100000;
  double t0 = now_ns();
  for (int i = 0; i < kCalls; ++i) madvise(page, kPage, MADV_DONTNEED);
  return (now_ns() - t0) / kCalls;
}

// W6: the two threads start every chunk together (a spinning two-party barrier, untimed: both are on a
// CPU when it opens), so the timed chunks run concurrently even on a loaded machine; each chunk is timed
// with the TSC and the median chunk counts (chunks in which a thread was preempted do not).
double w6_two_threads(Backend& b, const char* one, const char* two) {
  constexpr int kChunks = 2000, kChunkOps = 256;
  std::atomic<int> done[2] = {0, 0};
  double per_op[2] = {0, 0};
  auto run = [&](int self, const char* buf) {
    std::vector<uint64_t> chunks;
    for (int c = 0; c < kChunks; ++c) {
      done[self].store(c + 1, std::memory_order_release);
      while (done[1 - self].load(std::memory_order_acquire) < c + 1) __builtin_ia32_pause();
      const uint64_t t0 = ticks();
      for (int i = 0; i < kChunkOps; ++i) b.put(b.get(buf + 64, 512));
      chunks.push_back(ticks() - t0);
    }
    std::sort(chunks.begin(), chunks.end());
    per_op[self] = static_cast<double>(chunks[kChunks / 2]) * g_ns_per_tick / kChunkOps;
  };
  std::thread first(run, 0, one);
  std::thread second(run, 1, two);
  first.join();
  second.join();
  return std::max(per_op[0], per_op[1]);
}

double w7_hits_under_churn(Backend& b, const char* buf) {
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      char* p = map_pages(4);
      b.put(b.get(p, 4 * kPage));
      munmap(p, 4 * kPage);
    }
  });
  double ns = hits(b, buf, 2000000);
  stop = true;
  churn.join();
  return ns;
}

struct RaceResult {
  unsigned long gets = 0, stale = 0, failed = 0, replacements = 0, retries = 0;
};

// A get is stale when no replacement was in flight from before the get until after the check (so the
// mapping did not change meanwhile), yet the region's registration pinned another frame than the one
// mapped: it registered memory that had been replaced before the get began.
RaceResult w8_race(Backend& b) {
  constexpr size_t kLength = 4 * kPage;
  char* range = map_pages(4);
  RaceResult result;
  std::atomic<bool> stop{false};
  std::thread replacer([&] {
    for (unsigned long k = g_replaced.load() + 1; !stop.load(std::memory_order_relaxed); ++k) {
      g_started.store(k, std::memory_order_seq_cst);
      mmap(range, kLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      range[0] = 1;
      g_replaced.store(k, std::memory_order_seq_cst);
      // A quiet gap between replacements, so that gets with no replacement in flight exist.
      for (const double until = wall_ns() + 20000; wall_ns() < until;) {}
    }
  });
  const unsigned long first_replacement = g_replaced.load();
  const double deadline = wall_ns() + kRaceSeconds * 1e9;
  const unsigned long retries_before = b.retries();
  while (wall_ns() < deadline) {
    const unsigned long started_before = g_started.load(std::memory_order_seq_cst);
    const unsigned long replaced_before = g_replaced.load(std::memory_order_seq_cst);
    void* region = b.get(range, kLength);
    if (region == nullptr) {
      result.failed++;
      continue;
    }
    result.gets++;
    const uint64_t mapped = frame_of(range);
    const bool quiet = started_before == replaced_before && g_started.load(std::memory_order_seq_cst) == started_before;
    result.stale += quiet && mapped != 0 && b.frame(region) != mapped ? 1 : 0;
    b.put(region);
  }
  stop = true;
  replacer.join();
  result.replacements = g_replaced.load() - first_replacement;
  result.retries = b.retries() - retries_before;
  munmap(range, kLength);
  return result;
}

// ---- io_uring (umn process only) ------------------------------------------------------------------

struct UringRig {
  io_uring ring{};
  int fd = -1;
  UringRig() {
    fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    if (fd < 0 || io_uring_queue_init(8, &ring, 0) != 0) {
      std::fprintf(stderr, "io_uring unavailable\n");
      std::exit(1);
    }
  }
  ~UringRig() {
    io_uring_queue_exit(&ring);
    close(fd);
  }
  void write(const char* buf, size_t len, int index) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (index >= 0) {
      io_uring_prep_write_fixed(sqe, fd, buf, static_cast<unsigned>(len), 0, index);
    } else {
      io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), 0);
    }
    io_uring_submit(&ring);
    io_uring_cqe* cqe = nullptr;
    io_uring_wait_cqe(&ring, &cqe);
    if (cqe->res != static_cast<int>(len)) std::abort();
    io_uring_cqe_seen(&ring, cqe);
  }
};

void uring_rows(std::map<std::string, double>& out) {
  constexpr int kWrites = 20000;
  for (size_t len : {size_t{4096}, size_t{65536}}) {
    char* buf = map_pages(len / kPage);
    const std::string size = len == 4096 ? "4k" : "64k";
    out["uring_cached_" + size] = median_of([&] {
      UringRig rig;
      umn_uring_buffers* bufs = nullptr;
      if (umn_uring_buffers_create(&rig.ring, 4, nullptr, &bufs) != 0) std::abort();
      double t0 = now_ns();
      for (int i = 0; i < kWrites; ++i) {
        umn_uring_buffer fixed{};
        if (umn_uring_buffers_get(bufs, buf, len, &fixed) != 0) std::abort();
        rig.write(buf, len, static_cast<int>(fixed.index));
        umn_uring_buffers_put(bufs, &fixed);
      }
      double ns = (now_ns() - t0) / kWrites;
      umn_uring_buffers_destroy(bufs);
      return ns;
    });
    out["uring_raw_" + size] = median_of([&] {
      UringRig rig;
      iovec iov = {buf, len};
      if (io_uring_register_buffers(&rig.ring, &iov, 1) != 0) std::abort();
      double t0 = now_ns();
      for (int i = 0; i < kWrites; ++i) rig.write(buf, len, 0);
      return (now_ns() - t0) / kWrites;
    });
    out["uring_plain_" + size] = median_of([&] {
      UringRig rig;
      double t0 = now_ns();
      for (int i = 0; i < kWrites; ++i) rig.write(buf, len, -1);
      return (now_ns() - t0) / kWrites;
    });
    munmap(buf, len);
  }
}

// ---- one backend, in this process -----------------------------------------------------------------

// `only` == "W4": that row alone, median of kW4Reps repetitions (see w4_pairs); empty: every other row.
constexpr int kW4Reps = 9;

int run_backend(const std::string& name, const std::string& only) {
  std::map<std::string, double> out;
  g_pagemap = open("/proc/self/pagemap", O_RDONLY);
  calibrate_tsc();
  if (only == "W4") {
    Backend* backend = name == "umn" ? static_cast<Backend*>(new UmnBackend) : new UcxBackend;
    out["W4"] = median_of([&] { return w4_munmap_4096(*backend); }, kW4Reps);
    delete backend;
    for (const auto& [key, value] : out) std::printf("%s %.3f\n", key.c_str(), value);
    return 0;
  }
  if (only == "W3n") {
    Backend* backend = name == "umn" ? static_cast<Backend*>(new UmnBackend) : new UcxBackend;
    for (size_t n : kW3nSizes) out["W3n_" + std::to_string(n)] = w3n_miss(*backend, n);
    delete backend;
    for (const auto& [key, value] : out) std::printf("%s %.3f\n", key.c_str(), value);
    return 0;
  }
  char* scratch = map_pages(1);
  out["W5_bare"] = median_of([&] { return w5_madvise(scratch); });
  Backend* backend = name == "umn" ? static_cast<Backend*>(new UmnBackend) : new UcxBackend;
  Backend& b = *backend;
  char* one = map_pages(4);
  char* two = map_pages(4);
  b.put(b.get(one + 64, 512));
  b.put(b.get(two + 64, 512));
  out["W1"] = median_of([&] { return hits(b, one, 2000000); });
  char* area = map_pages(8192);
  for (size_t i = 0; i < 4096; ++i) b.put(b.get(area + 2 * i * kPage, kPage));
  out["W2"] = median_of([&] { return w2_scattered(b, area, 2000000); });
  munmap(area, 8192 * kPage);
  double get_ns = 0, munmap_ns = 0;
  std::vector<double> gets, munmaps;
  for (int i = 0; i < kReps; ++i) {
    w3_miss(b, &get_ns, &munmap_ns);
    gets.push_back(get_ns);
    munmaps.push_back(munmap_ns);
  }
  std::sort(gets.begin(), gets.end());
  std::sort(munmaps.begin(), munmaps.end());
  out["W3_get"] = gets[kReps / 2];
  out["W3_munmap"] = munmaps[kReps / 2];
  out["W5"] = median_of([&] { return w5_madvise(scratch); });
  out["W6"] = median_of([&] { return w6_two_threads(b, one, two); });
  out["W7"] = median_of([&] { return w7_hits_under_churn(b, one); });
  g_pin = true;
  RaceResult race = w8_race(b);
  g_pin = false;
  out["W8_gets"] = static_cast<double>(race.gets);
  out["W8_stale"] = static_cast<double>(race.stale);
  out["W8_failed"] = static_cast<double>(race.failed);
  out["W8_replacements"] = static_cast<double>(race.replacements);
  out["W8_retries"] = static_cast<double>(race.retries);
  out["W8_frames_known"] = frame_of(one) != 0 ? 1 : 0;
  if (name == "umn") uring_rows(out);
  out["regs"] = static_cast<double>(g_regs.load());
  out["deregs"] = static_cast<double>(g_deregs.load());
  delete backend;
  for (const auto& [key, value] : out) std::printf("%s %.3f\n", key.c_str(), value);
  return 0;
}

// ---- the parent: both children, one table ---------------------------------------------------------

std::map<std::string, double> run_child(const char* self, const char* backend, const std::string& only) {
  std::string command = std::string(self) + " --backend=" + backend + (only.empty() ? "" : " " + only);
  std::map<std::string, double> out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char key[64];
  double value;
  while (std::fscanf(pipe, "%63s %lf", key, &value) == 2) out[key] = value;
  if (pclose(pipe) != 0) std::fprintf(stderr, "%s backend failed\n", backend);
  return out;
}

// W4 is a munmap of 32 MiB: its time is mostly the kernel's page freeing, which swings by tens of percent
// with what the other processes of a shared machine do, so one child per backend compares two
// different moments. It runs in kW4Pairs pairs of child processes instead (umn then ucx, then ucx
// then umn, ...), both children of a pair back to back; each column is the median of its children's
// medians and the ratio the median of the pairs' ratios. Return: false if a child failed.
constexpr int kW4Pairs = 5;

bool w4_pairs(const char* self, std::map<std::string, double>& umn, std::map<std::string, double>& ucx) {
  std::vector<double> umns, ucxs, ratios;
  for (int pair = 0; pair < kW4Pairs; ++pair) {
    const bool umn_first = pair % 2 == 0;
    std::map<std::string, double> first = run_child(self, umn_first ? "umn" : "ucx", "W4");
    std::map<std::string, double> second = run_child(self, umn_first ? "ucx" : "umn", "W4");
    if (first.count("W4") == 0 || second.count("W4") == 0) return false;
    umns.push_back(umn_first ? first["W4"] : second["W4"]);
    ucxs.push_back(umn_first ? second["W4"] : first["W4"]);
    ratios.push_back(umns.back() / ucxs.back());
  }
  for (auto* v : {&umns, &ucxs, &ratios}) std::sort(v->begin(), v->end());
  umn["W4"] = umns[kW4Pairs / 2];
  ucx["W4"] = ucxs[kW4Pairs / 2];
  umn["W4_ratio"] = ratios[kW4Pairs / 2];
  std::string each;
  for (double r : ratios) each += " " + std::to_string(r).substr(0, 4);
  std::printf("W4 pairs, umn/ucx (sorted):%s\n", each.c_str());
  return true;
}

struct Row {
  const char* key;
  const char* what;
  double target;  // ucx/umn must be >= target; 0: information; negative: umn/ucx must be <= -target
};

// The W8 race and io_uring tables. Return: 1 if W8's target was missed.
int print_w8_and_uring(std::map<std::string, double>& umn, std::map<std::string, double>& ucx) {
  std::printf("\nW8 race, %.0f s: a getter against mmap(MAP_FIXED) replacing its 16 KiB range\n", kRaceSeconds);
  std::printf("%-8s %10s %13s %10s %12s %10s %8s\n", "backend", "gets", "replacements", "stale", "stale/s", "retries",
              "failed");
  for (auto* side : {&umn, &ucx}) {
    auto& m = *side;
    std::printf("%-8s %10.0f %13.0f %10.0f %12.0f %10.0f %8.0f\n", side == &umn ? "umn" : "ucx", m["W8_gets"],
                m["W8_replacements"], m["W8_stale"], m["W8_stale"] / kRaceSeconds, m["W8_retries"], m["W8_failed"]);
  }
  if (umn["W8_frames_known"] == 0) std::printf("(frames unknown: run as root to detect stale registrations)\n");
  const bool w8_met = umn["W8_stale"] == 0 && umn["W8_gets"] > 0 && umn["W8_frames_known"] != 0;
  std::printf("W8 target: umn 0 stale: %s\n", w8_met ? "met" : "MISSED");
  std::printf("\nio_uring writes (ns per write, umn process)   %10s %10s %10s\n", "cached", "raw fixed", "plain");
  for (const char* size : {"4k", "64k"}) {
    std::string s = size;
    std::printf("%-46s %10.0f %10.0f %10.0f\n", (s == "4k" ? "4 KiB" : "64 KiB"), umn["uring_cached_" + s],
                umn["uring_raw_" + s], umn["uring_plain_" + s]);
  }
  return w8_met ? 0 : 1;
}

// The W3n table: a miss's cost against the number of regions cached. Goals (this project's, not issue
// 11's targets, so not counted in "targets missed"): umn's miss at 4096 no slower than UCX's in the same
// run, and umn's at 16384 within 2x of its own at 0. Return: both met.
bool print_w3n(std::map<std::string, double>& umn, std::map<std::string, double>& ucx) {
  std::printf("\nW3n miss (get+put of an uncached page) with n regions cached (ns)\n");
  std::printf("%8s %12s %12s %9s\n", "n", "umn", "ucx 1.13.1", "ucx/umn");
  for (size_t n : kW3nSizes) {
    const std::string key = "W3n_" + std::to_string(n);
    std::printf("%8zu %12.0f %12.0f %8.2fx\n", n, umn[key], ucx[key], umn[key] > 0 ? ucx[key] / umn[key] : 0);
  }
  const double vs_ucx = ucx["W3n_4096"] / umn["W3n_4096"], growth = umn["W3n_16384"] / umn["W3n_0"];
  const bool met = vs_ucx >= 1.0 && growth <= 2.0;
  std::printf("W3n goals (not counted below): ucx/umn at 4096 %.2f (>=1.00), umn 16384/0 %.2f (<=2.00): %s\n", vs_ucx,
              growth, met ? "met" : "not met");
  return met;
}

void print_table(std::map<std::string, double>& umn, std::map<std::string, double>& ucx) {
  static const Row rows[] = {
      {"W1", "W1 hit, one 16 KiB region (ns)", 2.0},
      {"W2", "W2 hits over 4096 one-page regions (ns)", 2.0},
      {"W3_get", "W3 get = miss + registration (ns)", 1.0},
      {"W3_munmap", "W3 munmap of a cached region (ns)", 0},
      {"W4", "W4 one munmap over 4096 cached regions (us)", -1.10},
      {"W5", "W5 uncached madvise, cache present (ns)", 0},
      {"W5_bare", "W5 same madvise before any cache/hooks (ns)", 0},
      {"W6", "W6 two threads, distinct regions (ns/op)", 5.0},
      {"W7", "W7 hits while a thread churns (ns)", 2.0},
  };
  int missed = 0;
  std::printf("%-46s %12s %12s %9s %8s %s\n", "workload", "umn", "ucx 1.13.1", "ucx/umn", "target", "verdict");
  for (const Row& row : rows) {
    if (umn.count(row.key) == 0) continue;  // not run (a single-row run)
    double u = umn[row.key], x = ucx[row.key];
    double ratio = u > 0 ? x / u : 0;
    const char* verdict = "info";
    char target[16] = "-";
    if (row.target > 0) {
      std::snprintf(target, sizeof(target), ">=%.2f", row.target);
      verdict = ratio >= row.target ? "met" : "MISSED";
    } else if (row.target < 0) {
      std::snprintf(target, sizeof(target), "<=%.2f", -row.target);
      ratio = umn.count(std::string(row.key) + "_ratio") != 0 ? umn[std::string(row.key) + "_ratio"] : u / x;
      verdict = ratio <= -row.target ? "met" : "MISSED";
    }
    missed += std::strcmp(verdict, "MISSED") == 0 ? 1 : 0;
    std::printf("%-46s %12.1f %12.1f %8.2fx %8s %s%s\n", row.what, u, x, ratio, target, verdict,
                row.target < 0 ? " (umn/ucx)" : "");
  }
  if (umn.count("W8_gets") != 0) missed += print_w8_and_uring(umn, ucx);
  if (umn.count("W3n_0") != 0) print_w3n(umn, ucx);
  std::printf("\ntargets missed: %d\n", missed);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string only = argc > 2 ? argv[2] : argc > 1 && std::strncmp(argv[1], "--", 2) != 0 ? argv[1] : "";
  if (!only.empty() && only != "W4" && only != "W3n") {
    std::fprintf(stderr, "usage: %s [W4|W3n]\n", argv[0]);
    return 2;
  }
  if (argc > 1 && std::strncmp(argv[1], "--backend=", 10) == 0) return run_backend(argv[1] + 10, only);
  std::map<std::string, double> umn, ucx;
  if (only != "W4") {
    umn = run_child(argv[0], "umn", "W3n");
    ucx = run_child(argv[0], "ucx", "W3n");
    if (umn.empty() || ucx.empty()) return 1;
    if (only == "W3n") return print_w3n(umn, ucx) ? 0 : 1;
  }
  if (only.empty()) {
    umn.merge(run_child(argv[0], "umn", only));
    ucx.merge(run_child(argv[0], "ucx", only));
  }
  if (!w4_pairs(argv[0], umn, ucx)) return 1;
  if (umn.empty() || ucx.empty()) return 1;
  print_table(umn, ucx);
  return 0;
}
