// baseline.hpp - same-run ratios for Google Benchmark: every benchmark's time is recorded, then each
// benchmark is compared against a baseline measured in the same process (these machines are noisy, so
// a ratio against a baseline from another run means nothing).
//
// Use: int main(argc, argv) { return umn::bench::run(argc, argv, {{"BM_Ours/threads:2", "BM_Base/threads:2",
//      "read side, 2 threads", 4.0}}); }
// Locking: single-threaded setup and report. Context: benchmark binaries only.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

namespace umn::bench {

// One printed comparison: how many times faster `subject` is than `baseline` (baseline time / subject
// time), and the target that ratio must reach (0: informative only).
struct Ratio {
  std::string subject;
  std::string baseline;
  std::string what;
  double target = 0;
  bool lower_is_better = false;  // when set, prints subject/baseline and checks <= target
};

class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs)
      if (run.run_type == Run::RT_Iteration || run.aggregate_name == "median")
        times_[run.benchmark_name()] = run.GetAdjustedRealTime();
    ConsoleReporter::ReportRuns(runs);
  }
  // Real time per iteration in the benchmark's time unit, or a negative value when it did not run.
  // With repetitions, the median of the repetitions.
  [[nodiscard]] double time_of(const std::string& name) const {
    if (auto it = times_.find(name + "_median"); it != times_.end()) return it->second;
    auto it = times_.find(name);
    return it == times_.end() ? -1 : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

// Prints each ratio; returns the number of targets missed (for information: benchmarks never fail CI).
inline int print_ratios(const RecordingReporter& reporter, const std::vector<Ratio>& ratios) {
  int missed = 0;
  std::printf("\n%-48s %10s %8s %s\n", "same-run comparison", "ratio", "target", "verdict");
  for (const Ratio& r : ratios) {
    double subject = reporter.time_of(r.subject);
    double baseline = reporter.time_of(r.baseline);
    if (subject <= 0 || baseline <= 0) {
      std::printf("%-48s %10s %8s (not run: %s vs %s)\n", r.what.c_str(), "-", "-", r.subject.c_str(),
                  r.baseline.c_str());
      continue;
    }
    double ratio = r.lower_is_better ? subject / baseline : baseline / subject;
    bool met = r.target <= 0 || (r.lower_is_better ? ratio <= r.target : ratio >= r.target);
    missed += met ? 0 : 1;
    std::printf("%-48s %9.2fx %s%6.2fx %s\n", r.what.c_str(), ratio, r.lower_is_better ? "<=" : ">=", r.target,
                r.target <= 0 ? "info" : (met ? "met" : "MISSED"));
  }
  return missed;
}

// Runs the benchmarks, prints the ratios, then calls `more` (if any) for derived figures.
template <class More = void (*)(const RecordingReporter&)>
int run(int argc, char** argv, const std::vector<Ratio>& ratios, More more = nullptr) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RecordingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  print_ratios(reporter, ratios);
  if constexpr (!std::is_same_v<More, void (*)(const RecordingReporter&)>) {
    more(reporter);
  } else if (more != nullptr) {
    more(reporter);
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace umn::bench
