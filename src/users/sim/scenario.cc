// scenario.cc - the multi-device scenario and its one-device reference.
//
// Threads: the caller is the memory-management side (it invalidates); fault threads own devices
// round-robin (device d belongs to thread d % fault_threads): after every invalidation they are kicked,
// fault back in every range of their devices that needs a repin (which also resumes the preempted
// engines), then run a job on each device (a few reads of a random range), and sleep until the next kick
// or 200 us. Before each invalidation the memory-management side also waits until every fault thread
// has finished the round the last kick started, so that no mode gets the two cores to itself while
// another shares them with the refaults (the periodic rounds still overlap invalidations at random).
// A job's submission takes the device's notifier lock (as xe's exec path does): that is
// where sharing one lock between devices (kMultiplexed) shows up as waiting. Before each invalidation the memory-management side waits until the chosen range is mapped
// and the engines run on every device, so every invalidation has the same work to do (a TLB flush and a
// preemption per device) and single-pass, two-pass and multiplexed are compared on equal terms.
//
// The reference (the ideal): one more device mirrors one more range, through its own driver of the same
// mode; fault thread 0 looks after it like its other devices. Every measured invalidation is paired with
// one invalidation of the reference range, before or after it at random, prepared and timed the same
// way. Its p50 is one device's invalidation latency as the CPU side sees it under this run's conditions
// (load, timer lateness, wake-ups); an idle-machine calibration was not (it came out slower than a whole
// one-device invalidation, because every wake-up on idle vCPUs was slow).
#include "users/sim/scenario.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

namespace umn::sim {

LatencySummary summarize(std::vector<double>& samples_us) {
  LatencySummary summary;
  if (samples_us.empty()) return summary;
  std::sort(samples_us.begin(), samples_us.end());
  auto at = [&](double q) { return samples_us[static_cast<size_t>(q * static_cast<double>(samples_us.size() - 1))]; };
  summary.p50_us = at(0.5);
  summary.p99_us = at(0.99);
  summary.max_us = samples_us.back();
  summary.mean_us = std::accumulate(samples_us.begin(), samples_us.end(), 0.0) / static_cast<double>(samples_us.size());
  summary.count = samples_us.size();
  return summary;
}

namespace {

double micros(Nanos duration) { return static_cast<double>(duration.count()) / 1e3; }

class Scenario {
 public:
  explicit Scenario(const ScenarioConfig& config)
      : config_(config),
        hardware_(config.seed),
        memory_(0x10000000, uint64_t{config.ranges + 1} * config.pages_per_range),
        mm_(std::move(AddressSpace::create().value())),
        reference_device_(hardware_, memory_, config.device, config.devices),
        reference_span_{uint64_t{config.ranges} * config.pages_per_range, config.pages_per_range} {
    for (unsigned d = 0; d < config.devices; d++) {
      devices_.push_back(std::make_unique<Device>(hardware_, memory_, config.device, d));
      device_ptrs_.push_back(devices_.back().get());
    }
    for (unsigned r = 0; r < config.ranges; r++)
      ranges_.push_back({uint64_t{r} * config.pages_per_range, config.pages_per_range});
    driver_ = std::move(Driver::create(config.mode, mm_, memory_, device_ptrs_, ranges_).value());
    if (config.reference) {
      Device* reference = &reference_device_;
      reference_driver_ = std::move(Driver::create(config.mode, mm_, memory_, std::span(&reference, 1),
                                                   std::span(&reference_span_, 1)).value());
    }
  }

  ScenarioResult run();

 private:
  void fault_thread(unsigned index);
  bool refault(unsigned index);
  void run_jobs(unsigned index, std::mt19937_64& random);
  bool range_ready(unsigned range);
  bool reference_ready();
  template <class Ready>
  bool wait_ready(Ready ready);
  double invalidate(PageSpan span);
  double invalidate_reference();
  void kick();
  ScenarioResult collect(std::vector<double>& latencies);

  const ScenarioConfig config_;
  Hardware hardware_;
  UserMemory memory_;
  AddressSpace mm_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<Device*> device_ptrs_;
  std::vector<PageSpan> ranges_;
  std::unique_ptr<Driver> driver_;
  Device reference_device_;                  // mirrors only reference_span_
  PageSpan reference_span_;                  // the last range of memory_
  std::unique_ptr<Driver> reference_driver_;  // null when config_.reference is off
  std::atomic<bool> stop_{false};
  std::mutex kick_mutex_;
  std::condition_variable kicked_;
  uint64_t kicks_ = 0;  // guarded by kick_mutex_
  // Fault threads done with the round the last kick started: written under kick_mutex_ and
  // progress_mutex_ (increments), read under progress_mutex_ by wait_ready.
  std::atomic<unsigned> caught_up_{0};
  std::mutex progress_mutex_;
  std::condition_variable progress_;
  uint64_t not_ready_ = 0;  // mm thread only
};

bool Scenario::refault(unsigned index) {
  bool any = false;
  for (unsigned d = index; d < config_.devices; d += config_.fault_threads)
    for (unsigned r = 0; r < config_.ranges; r++)
      if (!driver_->ready(d, r)) any |= !driver_->fault_in(d, r, config_.fault_timeout);
  if (index == 0 && reference_driver_ && !reference_driver_->ready(0, 0))
    any |= !reference_driver_->fault_in(0, 0, config_.fault_timeout);
  return any;
}

void Scenario::run_jobs(unsigned index, std::mt19937_64& random) {
  for (unsigned d = index; d < config_.devices; d += config_.fault_threads) {
    const auto range = static_cast<unsigned>(random() % ranges_.size());
    if (!driver_->submit_job(d, range)) continue;
    const PageSpan span = ranges_[range];
    for (int i = 0; i < 4; i++) devices_[d]->read(0, span.first + random() % span.count);
  }
  if (index != 0 || !reference_driver_ || !reference_driver_->submit_job(0, 0)) return;
  for (int i = 0; i < 4; i++) reference_device_.read(0, reference_span_.first + random() % reference_span_.count);
}

void Scenario::fault_thread(unsigned index) {
  std::mt19937_64 random(config_.seed * 1000003 + index);
  uint64_t seen = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    refault(index);
    run_jobs(index, random);
    std::unique_lock lock(kick_mutex_);
    if (seen != kicks_) {
      seen = kicks_;
      {
        std::lock_guard guard(progress_mutex_);  // no lost wake-up against wait_ready's predicate
        caught_up_.fetch_add(1, std::memory_order_relaxed);
      }
      progress_.notify_all();
    }
    kicked_.wait_for(lock, std::chrono::microseconds(200), [&] { return kicks_ != seen; });
  }
}

bool Scenario::range_ready(unsigned range) {
  for (unsigned d = 0; d < config_.devices; d++)
    if (!driver_->ready(d, range) || !devices_[d]->running(0)) return false;
  return true;
}

bool Scenario::reference_ready() { return reference_driver_->ready(0, 0) && reference_device_.running(0); }

template <class Ready>
bool Scenario::wait_ready(Ready ready) {
  std::unique_lock lock(progress_mutex_);
  return progress_.wait_for(lock, config_.ready_timeout, [&] {
    return caught_up_.load(std::memory_order_relaxed) == config_.fault_threads && ready();
  });
}

double Scenario::invalidate(PageSpan span) {
  const uint64_t start = memory_.address(span.first);
  const auto begin = Clock::now();
  Invalidation invalidation(mm_, start, start + span.count * UserMemory::kPageSize);
  const auto end = Clock::now();
  memory_.remap(span);  // after range_start returned: the devices promised not to use the old pages
  const double latency = micros(end - begin);
  kick();
  return latency;
}

double Scenario::invalidate_reference() {
  if (!wait_ready([this] { return reference_ready(); })) not_ready_++;
  return invalidate(reference_span_);
}

void Scenario::kick() {
  {
    std::lock_guard guard(kick_mutex_);
    kicks_++;
    caught_up_.store(0, std::memory_order_relaxed);
  }
  kicked_.notify_all();
}

ScenarioResult Scenario::run() {
  const auto begin = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < config_.fault_threads; t++) threads.emplace_back([this, t] { fault_thread(t); });
  std::mt19937_64 random(config_.seed);
  std::vector<double> latencies;
  std::vector<double> references;
  latencies.reserve(config_.invalidations);
  references.reserve(config_.reference ? config_.invalidations : 0);
  for (unsigned i = 0; i < config_.invalidations; i++) {
    const auto range = static_cast<unsigned>(random() % config_.ranges);
    const bool reference_first = (random() & 1) != 0;
    if (reference_driver_ && reference_first) references.push_back(invalidate_reference());
    if (!wait_ready([&] { return range_ready(range); })) not_ready_++;
    latencies.push_back(invalidate(ranges_[range]));
    if (reference_driver_ && !reference_first) references.push_back(invalidate_reference());
  }
  stop_.store(true, std::memory_order_relaxed);
  kick();
  for (auto& thread : threads) thread.join();
  ScenarioResult result = collect(latencies);
  result.reference = summarize(references);
  result.samples_us = std::move(latencies);  // sorted by summarize
  result.reference_samples_us = std::move(references);
  result.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  return result;
}

ScenarioResult Scenario::collect(std::vector<double>& latencies) {
  ScenarioResult result;
  result.devices = config_.devices;
  result.mode = config_.mode;
  result.latency = summarize(latencies);
  for (auto& device : devices_) {
    result.stale += device->stale_accesses();
    result.reads += device->reads();
  }
  result.stale += reference_device_.stale_accesses();  // counted, but its driver's statistics are not
  result.reads += reference_device_.reads();
  DriverStats& stats = driver_->stats();
  result.retries = stats.retries.load();
  result.fallbacks_busy = stats.sync_busy.load();
  result.fallbacks = stats.sync_idle.load() + result.fallbacks_busy;
  result.deferred = stats.deferred.load();
  result.faults = stats.faults.load();
  result.fault_timeouts = stats.fault_timeouts.load();
  result.not_ready = not_ready_;
  result.lock_contended = stats.lock_waits.count();
  result.lock_wait_p99_us = stats.lock_waits.quantile_us(0.99);
  result.lock_wait_max_us = stats.lock_waits.max_us();
  result.timer_lateness_p50_us = hardware_.lateness_us(0.5);
  result.hardware_tlb_p50_us = hardware_.achieved_us(0.5);
  return result;
}

}  // namespace

ScenarioResult run_scenario(const ScenarioConfig& config) { return Scenario(config).run(); }

ScenarioResult merge(std::span<const ScenarioResult> parts) {
  ScenarioResult merged;
  merged.devices = parts.front().devices;
  merged.mode = parts.front().mode;
  for (const ScenarioResult& part : parts) {
    merged.samples_us.insert(merged.samples_us.end(), part.samples_us.begin(), part.samples_us.end());
    merged.reference_samples_us.insert(merged.reference_samples_us.end(), part.reference_samples_us.begin(),
                                       part.reference_samples_us.end());
    for (auto field : {&ScenarioResult::stale, &ScenarioResult::reads, &ScenarioResult::retries,
                       &ScenarioResult::fallbacks, &ScenarioResult::fallbacks_busy, &ScenarioResult::deferred,
                       &ScenarioResult::faults, &ScenarioResult::fault_timeouts, &ScenarioResult::not_ready,
                       &ScenarioResult::lock_contended})
      merged.*field += part.*field;
    merged.lock_wait_p99_us = std::max(merged.lock_wait_p99_us, part.lock_wait_p99_us);
    merged.lock_wait_max_us = std::max(merged.lock_wait_max_us, part.lock_wait_max_us);
    merged.timer_lateness_p50_us += part.timer_lateness_p50_us / static_cast<double>(parts.size());
    merged.hardware_tlb_p50_us += part.hardware_tlb_p50_us / static_cast<double>(parts.size());
    merged.seconds += part.seconds;
  }
  merged.latency = summarize(merged.samples_us);
  merged.reference = summarize(merged.reference_samples_us);
  return merged;
}

}  // namespace umn::sim
