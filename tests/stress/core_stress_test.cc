// core_stress_test.cc - the collision-retry protocol under concurrency, over mirrored "device page tables"
// (tests/support/mirror_device.hpp): fault threads fill device tables through read_begin / user lock /
// read_retry and access them; mutator threads invalidate page ranges (blockable and non-blocking), change
// the CPU pages between range_start and range_end, and check right after range_start that no device still
// maps the range; churn threads insert and remove devices meanwhile. Devices are single- and two-pass and
// overlap each other.
//
// Asserted: no translation survives a range_start (survivors == 0) and no device access ever uses a
// generation other than the page's current one (stale == 0); afterwards the address space is idle again.
// Sized for CI (about a second per parameter, also under TSan); UMN_STRESS_LONG=1 runs 30 s per parameter.
// The seed is fixed and printed (UMN_TEST_SEED replays), though thread interleavings are not replayable.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <random>
#include <thread>
#include <vector>

#include "support/async_call.hpp"
#include "support/diag_capture.hpp"
#include "support/mirror_device.hpp"
#include "support/seed.hpp"

namespace {

using umn::test::CpuPages;
using umn::test::MirrorDevice;

constexpr uint64_t kBase = 0x7f0000000000ull;
constexpr size_t kPages = 64;
constexpr size_t kDevices = 8;

struct StressParams {
  int fault_threads;
  int mutator_threads;
  int churn_threads;
};

void PrintTo(const StressParams& p, std::ostream* os) {
  *os << p.fault_threads << " fault, " << p.mutator_threads << " mutator, " << p.churn_threads << " churn threads";
}

std::chrono::milliseconds run_time() {
  const char* long_run = std::getenv("UMN_STRESS_LONG");
  return std::chrono::milliseconds(long_run != nullptr && long_run[0] == '1' ? 30000 : 1000);
}

// Totals over all threads, read after they joined.
struct Totals {
  std::atomic<uint64_t> survivors{0}, mutations{0}, eagain{0}, churns{0};
};

class CoreStress : public ::testing::TestWithParam<StressParams> {
 protected:
  void SetUp() override {
    seed_ = umn::test::test_seed(0x5eed5eedull);
    mm_ = umn_mm_create();
    ASSERT_NE(mm_, nullptr);
    for (size_t i = 0; i < kDevices; ++i) {
      // Overlapping windows of 16 pages every 7 pages; even devices single-pass, odd ones two-pass.
      const size_t first = std::min(i * 7, kPages - 16);
      MirrorDevice::Options options;
      options.mode = i % 2 == 0 ? MirrorDevice::Mode::kSinglePass : MirrorDevice::Mode::kTwoPass;
      // The last device (highest start, so walked last) refuses every non-blocking range: -EAGAIN after
      // the others' first passes. The rest refuse only when their lock is contended.
      options.refuse_nonblock = i == kDevices - 1;
      devices_.push_back(std::make_unique<MirrorDevice>(mm_, cpu_, first, 16, options));
      // A real fault walks page tables between its snapshot and its commit: widen that window.
      devices_.back()->between_snapshot_and_commit = [] { std::this_thread::yield(); };
      raw_.push_back(devices_.back().get());
      ASSERT_EQ(devices_.back()->insert(), 0);
    }
  }
  void TearDown() override {
    devices_.clear();
    umn_mm_destroy(mm_);
  }

  void fault_loop(uint64_t seed);
  void mutator_loop(uint64_t seed);
  void churn_loop(uint64_t seed);
  void run();
  uint64_t total_hits() {
    uint64_t hits = 0;
    for (MirrorDevice* dev : raw_) hits += dev->counters.hits.load(std::memory_order_relaxed);
    return hits;
  }

  uint64_t seed_ = 0;
  umn_mm* mm_ = nullptr;
  CpuPages cpu_{kBase, kPages};
  std::vector<std::unique_ptr<MirrorDevice>> devices_;
  std::vector<MirrorDevice*> raw_;
  std::atomic<bool> stop_{false};
  Totals totals_;
  umn::test::DiagCapture diags_;
};

// Faults a random page of a random device in, then uses it (and its neighbours) a few times.
void CoreStress::fault_loop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!stop_.load(std::memory_order_relaxed)) {
    MirrorDevice& dev = *raw_[rng() % kDevices];
    const size_t page = dev.first_page() + rng() % 16;
    dev.fault(page, 64);
    for (int i = 0; i < 4; ++i) dev.access(dev.first_page() + (page - dev.first_page() + i) % 16);
    std::this_thread::yield();  // pacing only: lets the other roles run on a small machine
  }
}

// Invalidates random ranges, sometimes non-blocking, sometimes holding them open to overlap others.
void CoreStress::mutator_loop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!stop_.load(std::memory_order_relaxed)) {
    const size_t count = 1 + rng() % 12;
    const size_t first = rng() % (kPages - count + 1);
    const bool blockable = rng() % 4 != 0;
    const unsigned hold = static_cast<unsigned>(rng() % 4);
    auto result = umn::test::mutate(mm_, cpu_, first, count, blockable, raw_, [hold] {
      for (unsigned i = 0; i < hold; ++i) std::this_thread::yield();
    });
    totals_.mutations.fetch_add(1, std::memory_order_relaxed);
    totals_.survivors.fetch_add(result.survivors, std::memory_order_relaxed);
    if (result.err != 0) totals_.eagain.fetch_add(1, std::memory_order_relaxed);
    // Pacing only: gaps between ranges let epochs close, so readers and removers make progress too.
    if (rng() % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
  }
}

// Removes and re-inserts random odd-numbered devices (even ones stay inserted throughout).
void CoreStress::churn_loop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  while (!stop_.load(std::memory_order_relaxed)) {
    MirrorDevice& dev = *raw_[1 + 2 * (rng() % (kDevices / 2))];
    dev.remove();
    std::this_thread::yield();
    EXPECT_EQ(dev.insert(), 0);
    totals_.churns.fetch_add(1, std::memory_order_relaxed);
  }
}

void CoreStress::run() {
  const StressParams p = GetParam();
  std::vector<std::thread> threads;
  uint64_t s = seed_;
  for (int i = 0; i < p.fault_threads; ++i) threads.emplace_back([this, s = ++s] { fault_loop(s); });
  for (int i = 0; i < p.mutator_threads; ++i) threads.emplace_back([this, s = ++s] { mutator_loop(s); });
  for (int i = 0; i < p.churn_threads; ++i) threads.emplace_back([this, s = ++s] { churn_loop(s); });
  // Runs for run_time(), and on a slow or loaded machine (TSan) on until a minimum of work was done, so
  // that the checks are never vacuous; the hard limit keeps a starved run from hanging.
  const auto begin = std::chrono::steady_clock::now();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the duration, not ordering
    const auto elapsed = std::chrono::steady_clock::now() - begin;
    const bool enough = totals_.mutations.load() >= 200 && total_hits() >= 200;
    if ((elapsed >= run_time() && enough) || elapsed >= std::chrono::minutes(3)) break;
  }
  stop_.store(true);
  for (auto& t : threads) t.join();
}

// After the storm the address space is idle: a fresh fault of every device succeeds at the first attempt
// without waiting, and its translation is current.
void expect_idle(std::vector<MirrorDevice*>& devices) {
  for (MirrorDevice* dev : devices) ASSERT_EQ(dev->insert(), 0);
  umn::test::AsyncCall faults([&] {
    for (MirrorDevice* dev : devices) EXPECT_TRUE(dev->fault(dev->first_page(), 1));
  });
  ASSERT_TRUE(faults.finishes());
  for (MirrorDevice* dev : devices) EXPECT_EQ(dev->access(dev->first_page()), MirrorDevice::Access::kHit);
}

// No translation survives an invalidation and no access is stale, whatever the thread mix; afterwards the
// address space is idle again.
TEST_P(CoreStress, NoStaleTranslationSurvivesAnInvalidation) {
  run();
  uint64_t stale = 0, hits = 0, first_passes = 0, second_passes = 0, retries = 0;
  for (MirrorDevice* dev : raw_) {
    // Every record handed out by a first pass got its second pass (also on the -EAGAIN path).
    EXPECT_EQ(dev->counters.records_handed_out.load(), dev->counters.second_passes.load());
    stale += dev->counters.stale.load();
    hits += dev->counters.hits.load();
    first_passes += dev->counters.first_passes.load();
    second_passes += dev->counters.second_passes.load();
    retries += dev->counters.retries.load();
  }
  std::printf("mutations %llu (eagain %llu), churns %llu, hits %llu, retries %llu, passes %llu/%llu\n",
              static_cast<unsigned long long>(totals_.mutations.load()),
              static_cast<unsigned long long>(totals_.eagain.load()),
              static_cast<unsigned long long>(totals_.churns.load()), static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(retries), static_cast<unsigned long long>(first_passes),
              static_cast<unsigned long long>(second_passes));
  EXPECT_EQ(totals_.survivors.load(), 0u);
  EXPECT_EQ(stale, 0u);
  EXPECT_EQ(diags_.count(), 0u);
  // The run did something: otherwise the two checks above prove nothing.
  EXPECT_GT(totals_.mutations.load(), 0u);
  EXPECT_GT(hits, 0u);
  EXPECT_GT(first_passes, 0u);
  EXPECT_GT(second_passes, 0u);
  expect_idle(raw_);
}

INSTANTIATE_TEST_SUITE_P(Threads, CoreStress,
                         ::testing::Values(StressParams{1, 1, 0}, StressParams{2, 2, 1}, StressParams{4, 3, 2}),
                         [](const ::testing::TestParamInfo<StressParams>& param_info) {
                           const StressParams& p = param_info.param;
                           return "f" + std::to_string(p.fault_threads) + "_m" + std::to_string(p.mutator_threads) +
                                  "_c" + std::to_string(p.churn_threads);
                         });

}  // namespace
