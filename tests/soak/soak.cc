// soak.cc - the soak program behind scripts/soak: the stress mix on one address space for a fixed time.
//
//   umn_soak [--seconds N] [--faulters N] [--invalidators N] [--churners N] [--registrars N] [--getters N]
//
// Threads:
//   faulters      map a random device's pages through read_begin / read_retry (the device's user lock
//                 around read_retry and the install), like a driver's fault handler;
//   invalidators  invalidate a random range (blockable, sometimes non-blocking), change the page versions
//                 in between, as the mm does between range_start and range_end;
//   churners      insert a short-lived device, fault through it, remove it (removes wait for epochs);
//   registrars    register a short-lived classic device (umn_notifier_register), fault through it,
//                 unregister it (registration waits for ranges in flight);
//   getters       umn_notifier_get the one shared classic device of the address space, fault a window
//                 through it, zap the window, put (the last put frees it, later, through free_notifier);
// and a watchdog that aborts when no operation completes for 30 s (a hang).
// Half of the devices are two-pass with one finish record: a busy record means the synchronous fallback.
// Classic devices follow KVM's protocol: invalidate_range_start counts the range in progress and zaps it,
// invalidate_range_end bumps a sequence number and uncounts it; a fault installs only if no range is in
// progress and the sequence did not move since it read the pages.
// Checks: after each invalidation ends, no device (interval or classic) holds a translation of a page in
// its range built from a page version older than the one this invalidation wrote ("stale"); no classic
// callback runs after unregister returned or after free_notifier ("late"), no end comes without its start
// ("unbalanced"); at the end every device object is freed, every gotten device was given to free_notifier
// (after umn_notifier_synchronize), and the address space destroyed with nothing left ("leaks"); umn
// reports no diagnostic.
// Prints ops/s and p50/p99 latencies; exit status 1 if stale, leaks or diagnostics are not zero.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "umn/umn.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x10000000;
constexpr int kPages = 256;
constexpr int kDevicePages = 16;
constexpr int kStableDevices = 8;

using Clock = std::chrono::steady_clock;

std::atomic<uint64_t> g_page_version[kPages];  // the CPU page table: a version per page
std::atomic<long> g_live_devices{0};
std::atomic<uint64_t> g_stale{0};
std::atomic<uint64_t> g_progress{0};
std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_late{0};        // classic callbacks after unregister / free_notifier
std::atomic<uint64_t> g_unbalanced{0};  // classic ends without their start
std::atomic<long> g_gotten_unfreed{0};  // allocated by get, not yet given to free_notifier

struct Device {
  umn_interval_notifier notifier;  // first member
  umn_interval_notifier_finish record;
  std::mutex lock;  // the user lock
  bool record_busy = false;
  int first_page = 0;
  uint64_t mapped[kDevicePages] = {};  // 0 = no translation, else page version + 1
  Device() {
    g_live_devices++;
    std::memset(&notifier, 0, sizeof(notifier));
  }
  ~Device() { g_live_devices--; }
};

Device* device_of(umn_interval_notifier* sub) { return reinterpret_cast<Device*>(sub); }

void zap_locked(Device* dev, const umn_notifier_range* range) {
  for (int i = 0; i < kDevicePages; ++i) {
    const uint64_t addr = kBase + (dev->first_page + i) * kPage;
    if (addr < range->end && addr + kPage > range->start) dev->mapped[i] = 0;
  }
}

bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
  Device* dev = device_of(sub);
  if (!umn_notifier_range_blockable(range)) {
    if (!dev->lock.try_lock()) return false;  // would sleep
  } else {
    dev->lock.lock();
  }
  umn_interval_set_seq(sub, cur_seq);
  zap_locked(dev, range);
  dev->lock.unlock();
  return true;
}

// Two-pass: pass 1 sets the seq and hands out the record; pass 2 zaps. Busy record: do it all now.
bool invalidate_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                      umn_interval_notifier_finish** finish) {
  Device* dev = device_of(sub);
  if (!umn_notifier_range_blockable(range)) {
    if (!dev->lock.try_lock()) return false;
  } else {
    dev->lock.lock();
  }
  umn_interval_set_seq(sub, cur_seq);
  if (dev->record_busy) {
    zap_locked(dev, range);
  } else {
    dev->record_busy = true;
    *finish = &dev->record;
    // The range is needed in pass 2: zap the whole device there (over-invalidation is allowed).
  }
  dev->lock.unlock();
  return true;
}

void invalidate_finish(umn_interval_notifier_finish* finish) {
  Device* dev = device_of(finish->notifier);
  std::lock_guard guard(dev->lock);
  std::fill(std::begin(dev->mapped), std::end(dev->mapped), 0);
  dev->record_busy = false;
}

const umn_interval_notifier_ops kOnePass = {invalidate, nullptr, nullptr};
const umn_interval_notifier_ops kTwoPass = {nullptr, invalidate_start, invalidate_finish};

// A classic device mirrors the whole address space (kPages pages).
struct ClassicDevice {
  umn_notifier notifier;          // first member
  std::mutex lock;                // the user lock
  int in_progress = 0;            // ranges between start and end
  uint64_t seq = 0;               // bumped by every end
  bool dead = false;              // ->release ran: build nothing
  bool gotten = false;            // from classic_alloc (umn_notifier_get); set before umn sees it
  std::atomic<bool> gone{false};  // unregister returned / free_notifier ran: no callback may come
  uint64_t mapped[kPages] = {};   // 0 = no translation, else page version + 1
  ClassicDevice() {
    g_live_devices++;
    std::memset(&notifier, 0, sizeof(notifier));
  }
  ~ClassicDevice() { g_live_devices--; }
};
ClassicDevice* classic_of(umn_notifier* sub) { return reinterpret_cast<ClassicDevice*>(sub); }

// Every classic device the invalidators must check. Entries are erased (and freed) only under this lock,
// once no callback can reach them any more.
std::mutex g_classic_lock;
std::vector<ClassicDevice*> g_classic;

void zap_pages_locked(ClassicDevice* dev, uint64_t start, uint64_t end) {
  for (int p = 0; p < kPages; ++p) {
    const uint64_t addr = kBase + p * kPage;
    if (addr < end && addr + kPage > start) dev->mapped[p] = 0;
  }
}

void classic_release(umn_notifier* sub, umn_mm*) {
  ClassicDevice* dev = classic_of(sub);
  if (dev->gone.load()) g_late++;
  std::lock_guard guard(dev->lock);
  dev->dead = true;
  std::fill(std::begin(dev->mapped), std::end(dev->mapped), 0);
}
int classic_start(umn_notifier* sub, const umn_notifier_range* range) {
  ClassicDevice* dev = classic_of(sub);
  if (dev->gone.load()) g_late++;
  std::lock_guard guard(dev->lock);  // held briefly, never across a sleep: allowed when not blockable
  dev->in_progress++;
  zap_pages_locked(dev, range->start, range->end);
  return 0;
}
void classic_end(umn_notifier* sub, const umn_notifier_range*) {
  ClassicDevice* dev = classic_of(sub);
  if (dev->gone.load()) g_late++;
  std::lock_guard guard(dev->lock);
  dev->seq++;
  if (--dev->in_progress < 0) g_unbalanced++;
}
umn_notifier* classic_alloc(umn_mm*) {
  auto* dev = new ClassicDevice;
  dev->gotten = true;
  g_gotten_unfreed++;
  std::lock_guard guard(g_classic_lock);
  g_classic.push_back(dev);
  return &dev->notifier;
}
void classic_free(umn_notifier* sub) {
  classic_of(sub)->gone = true;  // erased and deleted by sweep_gotten (free_notifier must not sleep)
  g_gotten_unfreed--;
}
const umn_notifier_ops kClassicOps = {classic_release, nullptr, nullptr, nullptr, classic_start,
                                      classic_end,     nullptr, nullptr, nullptr};
const umn_notifier_ops kGetOps = {classic_release, nullptr, nullptr,       nullptr,     classic_start,
                                  classic_end,     nullptr, classic_alloc, classic_free};

// Deletes the gotten devices whose free_notifier ran.
void sweep_gotten() {
  std::lock_guard guard(g_classic_lock);
  std::erase_if(g_classic, [](ClassicDevice* dev) {
    if (!dev->gotten || !dev->gone.load()) return false;  // not notifier.ops: umn sets it after alloc
    delete dev;
    return true;
  });
}

// The classic fault path over pages [first, first + count). Return: true when installed.
bool classic_fault(ClassicDevice* dev, int first, int count, uint64_t* retries) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint64_t seq;
    {
      std::lock_guard guard(dev->lock);
      if (dev->dead) return false;
      seq = dev->seq;
      if (dev->in_progress > 0) {
        ++*retries;
        std::this_thread::yield();
        continue;
      }
    }
    uint64_t versions[kPages];
    for (int p = first; p < first + count; ++p) versions[p] = g_page_version[p].load(std::memory_order_acquire);
    std::lock_guard guard(dev->lock);
    if (dev->in_progress > 0 || dev->seq != seq) {
      ++*retries;
      continue;
    }
    for (int p = first; p < first + count; ++p) dev->mapped[p] = versions[p] + 1;
    return true;
  }
  return false;
}

// A latency recorder: keeps every sample up to a cap, then a uniform reservoir.
struct Latencies {
  std::vector<uint32_t> ns;
  uint64_t count = 0;
  std::mt19937 rng{7};
  void add(Clock::duration d) {
    const auto v = static_cast<uint32_t>(
        std::min<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count(), UINT32_MAX));
    ++count;
    if (ns.size() < 200000) {
      ns.push_back(v);
    } else if (std::uniform_int_distribution<uint64_t>(0, count - 1)(rng) < ns.size()) {
      ns[std::uniform_int_distribution<size_t>(0, ns.size() - 1)(rng)] = v;
    }
    g_progress.fetch_add(1, std::memory_order_relaxed);
  }
  void merge(const Latencies& other) {
    ns.insert(ns.end(), other.ns.begin(), other.ns.end());
    count += other.count;
  }
  double percentile_us(double p) {
    if (ns.empty()) return 0;
    std::sort(ns.begin(), ns.end());
    return ns[std::min(ns.size() - 1, static_cast<size_t>(p * ns.size()))] / 1000.0;
  }
};

// The fault path. Return: true when a translation was installed.
bool fault(Device* dev, uint64_t* retries) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const unsigned long seq = umn_interval_read_begin(&dev->notifier);
    uint64_t versions[kDevicePages];
    for (int i = 0; i < kDevicePages; ++i)
      versions[i] = g_page_version[dev->first_page + i].load(std::memory_order_acquire);
    std::lock_guard guard(dev->lock);
    if (umn_interval_read_retry(&dev->notifier, seq)) {
      ++*retries;
      continue;
    }
    for (int i = 0; i < kDevicePages; ++i) dev->mapped[i] = versions[i] + 1;
    return true;
  }
  return false;
}

struct Totals {
  Latencies fault, invalidate, insert_remove, register_unregister, get_put;
  uint64_t retries = 0, gave_up = 0, eagain = 0;
  std::mutex lock;
};

std::vector<Device*> g_devices;
umn_mm* g_mm;

Device* new_device(std::mt19937_64& rng, bool two_pass) {
  auto* dev = new Device;
  dev->first_page = static_cast<int>(rng() % (kPages - kDevicePages));
  const int err = umn_interval_notifier_insert(&dev->notifier, g_mm, kBase + dev->first_page * kPage,
                                               kDevicePages * kPage, two_pass ? &kTwoPass : &kOnePass);
  if (err != 0) {
    std::fprintf(stderr, "soak: insert failed: %d\n", err);
    std::abort();
  }
  return dev;
}

void faulter(Totals* totals, unsigned seed) {
  std::mt19937_64 rng(seed);
  Latencies lat;
  uint64_t retries = 0, gave_up = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    Device* dev = g_devices[rng() % g_devices.size()];
    const auto t0 = Clock::now();
    if (!fault(dev, &retries)) ++gave_up;
    lat.add(Clock::now() - t0);
  }
  std::lock_guard guard(totals->lock);
  totals->fault.merge(lat);
  totals->retries += retries;
  totals->gave_up += gave_up;
}

void invalidator(Totals* totals, unsigned seed) {
  std::mt19937_64 rng(seed);
  Latencies lat;
  uint64_t eagain = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const int first = static_cast<int>(rng() % kPages);
    const int count = 1 + static_cast<int>(rng() % 24);
    const int last = std::min(kPages, first + count);
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, g_mm, kBase + first * kPage, kBase + last * kPage);
    const auto t0 = Clock::now();
    if (rng() % 4 == 0) {
      if (umn_notifier_invalidate_range_start_nonblock(&range) != 0) {
        ++eagain;  // nothing changes; no end
        lat.add(Clock::now() - t0);
        continue;
      }
    } else {
      umn_notifier_invalidate_range_start(&range);
    }
    uint64_t written[kPages];
    for (int p = first; p < last; ++p) written[p] = g_page_version[p].fetch_add(1, std::memory_order_acq_rel) + 1;
    umn_notifier_invalidate_range_end(&range);
    lat.add(Clock::now() - t0);
    // No translation of a page in this range may predate the version written above.
    for (Device* dev : g_devices) {
      std::lock_guard guard(dev->lock);
      for (int i = 0; i < kDevicePages; ++i) {
        const int p = dev->first_page + i;
        if (p >= first && p < last && dev->mapped[i] != 0 && dev->mapped[i] - 1 < written[p]) g_stale++;
      }
    }
    std::lock_guard classic_guard(g_classic_lock);
    for (ClassicDevice* dev : g_classic) {
      std::lock_guard guard(dev->lock);
      for (int p = first; p < last; ++p)
        if (dev->mapped[p] != 0 && dev->mapped[p] - 1 < written[p]) g_stale++;
    }
  }
  std::lock_guard guard(totals->lock);
  totals->invalidate.merge(lat);
  totals->eagain += eagain;
}

void churner(Totals* totals, unsigned seed) {
  std::mt19937_64 rng(seed);
  Latencies lat;
  uint64_t retries = 0, gave_up = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const auto t0 = Clock::now();
    Device* dev = new_device(rng, rng() % 2 == 0);
    if (!fault(dev, &retries)) ++gave_up;
    umn_interval_notifier_remove(&dev->notifier);
    delete dev;
    lat.add(Clock::now() - t0);
  }
  std::lock_guard guard(totals->lock);
  totals->insert_remove.merge(lat);
  totals->retries += retries;
  totals->gave_up += gave_up;
}

void registrar(Totals* totals, unsigned seed) {
  std::mt19937_64 rng(seed);
  Latencies lat;
  uint64_t retries = 0, gave_up = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const auto t0 = Clock::now();
    auto* dev = new ClassicDevice;
    dev->notifier.ops = &kClassicOps;
    if (umn_notifier_register(&dev->notifier, g_mm) != 0) {
      std::fprintf(stderr, "soak: register failed\n");
      std::abort();
    }
    {
      std::lock_guard guard(g_classic_lock);
      g_classic.push_back(dev);
    }
    const int first = static_cast<int>(rng() % (kPages - kDevicePages));
    if (!classic_fault(dev, first, kDevicePages, &retries)) ++gave_up;
    umn_notifier_unregister(&dev->notifier, g_mm);  // calls ->release: everything zapped
    dev->gone = true;
    {
      std::lock_guard guard(g_classic_lock);
      std::erase(g_classic, dev);
    }
    delete dev;
    lat.add(Clock::now() - t0);
  }
  std::lock_guard guard(totals->lock);
  totals->register_unregister.merge(lat);
  totals->retries += retries;
  totals->gave_up += gave_up;
}

// A driver object (a buffer) holding the shared classic device through get/put; it maps its window and
// zaps it before its put (umn.h: the last put does not call ->release).
void getter(Totals* totals, unsigned seed) {
  std::mt19937_64 rng(seed);
  Latencies lat;
  uint64_t retries = 0, gave_up = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    const auto t0 = Clock::now();
    umn_notifier* sub = umn_notifier_get(&kGetOps, g_mm);
    if (UMN_IS_ERR_OR_NULL(sub)) {
      std::fprintf(stderr, "soak: get failed: error %ld\n", UMN_PTR_ERR(sub));
      std::abort();
    }
    ClassicDevice* dev = classic_of(sub);
    const int first = static_cast<int>(rng() % (kPages - kDevicePages));
    if (!classic_fault(dev, first, kDevicePages, &retries)) ++gave_up;
    {
      std::lock_guard guard(dev->lock);
      zap_pages_locked(dev, kBase + first * kPage, kBase + (first + kDevicePages) * kPage);
    }
    umn_notifier_put(sub);
    sweep_gotten();
    lat.add(Clock::now() - t0);
  }
  std::lock_guard guard(totals->lock);
  totals->get_put.merge(lat);
  totals->retries += retries;
  totals->gave_up += gave_up;
}

void diagnostic(void*, const char* call, const char* message) {
  std::fprintf(stderr, "soak: diagnostic from %s: %s\n", call, message);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  int faulters = 2, invalidators = 2, churners = 1, registrars = 1, getters = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (opt == "--faulters")
      faulters = std::atoi(argv[i + 1]);
    else if (opt == "--invalidators")
      invalidators = std::atoi(argv[i + 1]);
    else if (opt == "--churners")
      churners = std::atoi(argv[i + 1]);
    else if (opt == "--registrars")
      registrars = std::atoi(argv[i + 1]);
    else if (opt == "--getters")
      getters = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr,
                   "usage: umn_soak [--seconds N] [--faulters N] [--invalidators N] [--churners N] "
                   "[--registrars N] [--getters N]\n");
      return 2;
    }
  }
  umn_set_diagnostic_hook(diagnostic, nullptr);
  const unsigned long diags_before = umn_diagnostic_count();
  g_mm = umn_mm_create();
  std::mt19937_64 rng(20240906);
  for (int i = 0; i < kStableDevices; ++i) g_devices.push_back(new_device(rng, i % 2 == 1));
  std::printf(
      "soak: %.0f s, %d faulters, %d invalidators, %d churners, %d registrars, %d getters, %d devices "
      "(half two-pass), seed 20240906\n",
      seconds, faulters, invalidators, churners, registrars, getters, kStableDevices);
  std::fflush(stdout);

  Totals totals;
  std::vector<std::thread> threads;
  for (int i = 0; i < faulters; ++i) threads.emplace_back(faulter, &totals, 100 + i);
  for (int i = 0; i < invalidators; ++i) threads.emplace_back(invalidator, &totals, 200 + i);
  for (int i = 0; i < churners; ++i) threads.emplace_back(churner, &totals, 300 + i);
  for (int i = 0; i < registrars; ++i) threads.emplace_back(registrar, &totals, 400 + i);
  for (int i = 0; i < getters; ++i) threads.emplace_back(getter, &totals, 500 + i);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t last_progress = 0;
  auto last_change = Clock::now();
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t progress = g_progress.load();
    if (progress != last_progress) {
      last_progress = progress;
      last_change = Clock::now();
    } else if (Clock::now() - last_change > std::chrono::seconds(30)) {
      std::fprintf(stderr, "soak: HANG: no operation completed for 30 s\n");
      std::abort();
    }
  }
  g_stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  for (Device* dev : g_devices) {
    umn_interval_notifier_remove(&dev->notifier);
    delete dev;
  }
  umn_notifier_synchronize();  // every free_notifier queued by a last put has run
  const long unfreed = g_gotten_unfreed.load();
  sweep_gotten();
  umn_mm_destroy(g_mm);
  const long leaks = g_live_devices.load() + unfreed;
  const unsigned long diags = umn_diagnostic_count() - diags_before;

  const uint64_t ops = totals.fault.count + totals.invalidate.count + totals.insert_remove.count +
                       totals.register_unregister.count + totals.get_put.count;
  std::printf("operations %" PRIu64 " in %.1f s: %.0f ops/s\n", ops, elapsed, ops / elapsed);
  auto row = [&](const char* name, Latencies& lat) {
    std::printf("  %-22s %10" PRIu64 " ops %10.0f ops/s   p50 %8.1f us   p99 %8.1f us\n", name, lat.count,
                lat.count / elapsed, lat.percentile_us(0.50), lat.percentile_us(0.99));
  };
  row("fault (read_begin..)", totals.fault);
  row("invalidate start..end", totals.invalidate);
  row("insert+fault+remove", totals.insert_remove);
  row("register+fault+unreg", totals.register_unregister);
  row("get+fault+put", totals.get_put);
  std::printf("retries %" PRIu64 ", faults given up %" PRIu64 ", nonblock -EAGAIN %" PRIu64 "\n", totals.retries,
              totals.gave_up, totals.eagain);
  std::printf("stale = %" PRIu64 ", leaks = %ld, diagnostics = %lu, late callbacks = %" PRIu64
              ", unbalanced ends = %" PRIu64 ", hangs = 0\n",
              g_stale.load(), leaks, diags, g_late.load(), g_unbalanced.load());
  return g_stale.load() == 0 && leaks == 0 && diags == 0 && g_late.load() == 0 && g_unbalanced.load() == 0 ? 0 : 1;
}
