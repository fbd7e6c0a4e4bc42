// invalidate_bench.cc - the interval-tree side of an invalidation, and insert/remove, as N grows.
//
//   BM_Invalidate<Layout>/N/k   range_start + range_end hitting k of N page-sized notifiers; the
//                               callback takes the notifier's user lock and calls set_seq, as a driver.
//     Layout Sequential: notifiers sit in memory in address order (an array of device objects).
//     Layout Scattered:  memory order is a random permutation of address order (objects allocated in
//                        no particular order), so a descent misses the cache at most levels at 1e6.
//   BM_InsertRemove/N           insert a notifier next to N others, then remove it.
//   BM_StdMultimap/N            the same with std::multimap (allocating, not intrusive), for scale.
// Targets (issue 2): t(1e6)/t(1e3) <= 10 for k = 1; cost per extra hit flat in k.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <vector>

#include "baseline.hpp"
#include "umn/umn.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kStride = 2 * kPage;  // gaps between notifiers
constexpr size_t kQueries = 1 << 16;

struct Device {
  umn_interval_notifier notifier;  // first member
  std::mutex lock;
};

bool invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
  auto* device = reinterpret_cast<Device*>(sub);
  std::lock_guard guard(device->lock);
  umn_interval_set_seq(sub, cur_seq);
  return true;
}
const umn_interval_notifier_ops kOps = {invalidate, nullptr, nullptr};

struct Population {
  umn_mm* mm = umn_mm_create();
  std::unique_ptr<Device[]> devices;
  std::vector<uint32_t> queries;  // random notifier indices, in address order

  Population(size_t n, bool scattered) : devices(new Device[n]) {
    std::mt19937_64 rng(42);
    std::vector<uint32_t> slot(n);  // address order -> memory slot
    std::iota(slot.begin(), slot.end(), 0);
    if (scattered) std::shuffle(slot.begin(), slot.end(), rng);
    std::vector<uint32_t> insert_order(n);
    std::iota(insert_order.begin(), insert_order.end(), 0);
    std::shuffle(insert_order.begin(), insert_order.end(), rng);
    for (uint32_t i : insert_order)
      umn_interval_notifier_insert(&devices[slot[i]].notifier, mm, kStride * (i + 1), kPage, &kOps);
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(n - 1));
    queries.resize(kQueries);
    for (auto& q : queries) q = pick(rng);
  }
};

Population& population(size_t n, bool scattered) {
  static std::map<std::pair<size_t, bool>, std::unique_ptr<Population>> cache;
  auto& p = cache[{n, scattered}];
  if (!p) p = std::make_unique<Population>(n, scattered);
  return *p;
}

void run_invalidations(benchmark::State& state, bool scattered) {
  const size_t n = static_cast<size_t>(state.range(0));
  const uint64_t k = static_cast<uint64_t>(state.range(1));
  Population& p = population(n, scattered);
  size_t i = 0;
  for (auto _ : state) {
    uint64_t first = std::min<uint64_t>(p.queries[i++ & (kQueries - 1)], n - k);
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, p.mm, kStride * (first + 1), kStride * (first + k) + kPage);
    umn_notifier_invalidate_range_start(&range);
    umn_notifier_invalidate_range_end(&range);
  }
}

void BM_InvalidateSequential(benchmark::State& state) { run_invalidations(state, false); }
void BM_InvalidateScattered(benchmark::State& state) { run_invalidations(state, true); }

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1000, 10000, 100000, 1000000}) b->Args({n, 1});
  for (int64_t k : {2, 8, 64}) b->Args({100000, k});
}
BENCHMARK(BM_InvalidateSequential)->Apply(sizes);
BENCHMARK(BM_InvalidateScattered)->Apply(sizes);

void BM_InsertRemove(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Population& p = population(n, true);
  Device extra;
  size_t i = 0;
  for (auto _ : state) {
    uint64_t gap = kStride * (p.queries[i++ & (kQueries - 1)] + 1) + kPage;  // between two notifiers
    umn_interval_notifier_insert(&extra.notifier, p.mm, gap, kPage, &kOps);
    umn_interval_notifier_remove(&extra.notifier);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InsertRemove)->Arg(1000)->Arg(1000000);

void BM_StdMultimap(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::multimap<uint64_t, uint64_t> map;
  for (uint64_t i = 0; i < n; ++i) map.emplace(kStride * (i + 1), kStride * (i + 1) + kPage - 1);
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    uint64_t gap = kStride * (rng() % n + 1) + kPage;
    map.erase(map.emplace(gap, gap + kPage - 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StdMultimap)->Arg(1000000);

}  // namespace

int main(int argc, char** argv) {
  std::printf("sizeof(struct umn_interval_notifier) = %zu bytes (kernel: 88)\n", sizeof(umn_interval_notifier));
  std::vector<umn::bench::Ratio> ratios;
  for (const char* layout : {"Sequential", "Scattered"}) {
    std::string name = std::string("BM_Invalidate") + layout;
    ratios.push_back({name + "/1000000/1", name + "/1000/1", std::string("t(1e6)/t(1e3), k=1, ") + layout, 10, true});
    ratios.push_back({name + "/100000/1", name + "/1000/1", std::string("t(1e5)/t(1e3), k=1, ") + layout, 0, true});
  }
  ratios.push_back({"BM_InsertRemove/1000000", "BM_StdMultimap/1000000", "insert+remove vs std::multimap, N=1e6", 0});
  return umn::bench::run(argc, argv, ratios, [](const umn::bench::RecordingReporter& r) {
    // Cost per extra hit: (t(k) - t(1)) / (k - 1) at N = 1e5; flat in k means the walk is O(log n + k).
    for (const char* layout : {"Sequential", "Scattered"}) {
      std::string name = std::string("BM_Invalidate") + layout + "/100000/";
      double t1 = r.time_of(name + "1");
      std::printf("%-10s per extra hit (ns):", layout);
      for (int k : {2, 8, 64}) {
        double tk = r.time_of(name + std::to_string(k));
        if (t1 > 0 && tk > 0) std::printf("  k=%d: %.1f", k, (tk - t1) / (k - 1));
      }
      std::printf("\n");
    }
  });
}
