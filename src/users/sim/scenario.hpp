// scenario.hpp - the multi-device scenario behind `umn sim`: D simulated devices mirror R user ranges
// of one simulated address space through a Driver; fault threads keep every range faulted in and run
// jobs that read it; the memory-management thread invalidates one range at a time, remaps its pages and
// measures how long umn_notifier_invalidate_range_start took (the invalidation latency as the CPU side
// sees it). Interleaved with those, in the same run, it invalidates a reference range mirrored by one
// extra device only, through a driver of the same mode: one device's latency under the same conditions,
// the "ideal" that `umn sim` compares against.
//
// Locking: run_scenario() is self-contained (its own Hardware, devices, threads).
// Lifetime: everything is created and joined inside the call.
// Context: blocks the calling thread for the length of the run; not from a umn callback.
// Memory ordering: results are read after every thread was joined.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "users/sim/device.hpp"
#include "users/sim/userptr.hpp"

namespace umn::sim {

struct ScenarioConfig {
  unsigned devices = 8;
  DriverMode mode = DriverMode::kTwoPass;
  DeviceConfig device;              // latencies and engines of every device
  unsigned ranges = 16;             // user ranges, each mirrored by every device
  unsigned pages_per_range = 16;
  unsigned invalidations = 1000;    // measured invalidations
  unsigned fault_threads = 2;       // threads running the fault path and the jobs
  uint64_t seed = 1;
  Nanos fault_timeout = std::chrono::milliseconds(100);  // bound on one fault-in's retries
  Nanos ready_timeout = std::chrono::milliseconds(50);   // wait for a range to be faulted in everywhere
  bool reference = true;  // interleave one-device reference invalidations (ScenarioResult::reference)
};

// Percentiles of a set of samples, in microseconds.
struct LatencySummary {
  double p50_us = 0;
  double p99_us = 0;
  double mean_us = 0;
  double max_us = 0;
  uint64_t count = 0;
};
// Summarises samples (sorted in place).
LatencySummary summarize(std::vector<double>& samples_us);

struct ScenarioResult {
  unsigned devices = 0;
  DriverMode mode = DriverMode::kTwoPass;
  LatencySummary latency;        // umn_notifier_invalidate_range_start, start to return
  // The same, for the one-device reference range: one invalidation per measured one, in random order
  // with it, same thread, same fault threads, same hardware timer (empty when config.reference is off).
  LatencySummary reference;
  uint64_t stale = 0;            // stale accesses over all devices: must be 0
  uint64_t reads = 0;            // job reads checked by the detector
  uint64_t retries = 0;          // fault attempts retried after read_retry
  uint64_t fallbacks = 0;        // two-pass first passes done synchronously (idle + busy)
  uint64_t fallbacks_busy = 0;   // of which because the finish record was in use
  uint64_t deferred = 0;         // two-pass first passes that deferred to the second pass
  uint64_t faults = 0;           // fault-ins
  uint64_t fault_timeouts = 0;   // fault-ins that hit ScenarioConfig::fault_timeout
  uint64_t not_ready = 0;        // invalidations issued before the range was faulted in everywhere
  uint64_t lock_contended = 0;   // notifier-lock acquisitions that had to wait
  double lock_wait_p99_us = 0;   // ... their 99th percentile wait
  double lock_wait_max_us = 0;
  double timer_lateness_p50_us = 0;  // how late the hardware timer completed operations
  double hardware_tlb_p50_us = 0;    // submission to signal of this run's TLB invalidations (both kinds)
  double seconds = 0;                // wall time of the run
  std::vector<double> samples_us;            // the measured latencies, sorted (for merge)
  std::vector<double> reference_samples_us;  // the reference's, sorted
};

// Runs the scenario. Context: blocks; spawns config.fault_threads threads and the hardware timer thread.
ScenarioResult run_scenario(const ScenarioConfig& config);

// One result from several runs of the same devices and mode (e.g. taking turns with other modes, so
// that load drift on a shared machine hits every mode alike): latencies and references summarised over
// all samples; counters and wall time summed; lock_wait_p99_us and lock_wait_max_us the largest of the
// parts; timer_lateness_p50_us and hardware_tlb_p50_us the mean of the parts' medians.
// Precondition: parts is not empty.
ScenarioResult merge(std::span<const ScenarioResult> parts);

}  // namespace umn::sim
