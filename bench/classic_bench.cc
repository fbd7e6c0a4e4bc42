// classic_bench.cc - cost of one invalidation (range_start + range_end) with 0, 1 and 8 classic notifiers
// and no interval notifier, against an otherwise empty address space, all in the same run; prints the
// ratios against the 0-notifier baseline and the derived costs (RCU walk entry, per subscriber).
//
//   BM_Invalidate_Bare            the address space has never had a subscription (the cheapest path)
//   BM_Invalidate_Classic/N       subscriptions exist, N classic notifiers with trivial start / end
//   BM_YoungQuery_Classic/N       umn_notifier_clear_young with N notifiers (the walk without the itree part)
//
// Run: build/classic/bench/classic_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "umn/umn.h"

namespace {

struct Trivial {
  umn_notifier c{};
  unsigned long calls = 0;
};

int on_start(umn_notifier* sub, const umn_notifier_range*) {
  reinterpret_cast<Trivial*>(sub)->calls++;
  return 0;
}
void on_end(umn_notifier* sub, const umn_notifier_range*) { reinterpret_cast<Trivial*>(sub)->calls++; }
int on_clear_young(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
  reinterpret_cast<Trivial*>(sub)->calls++;
  return 0;
}
const umn_notifier_ops kOps = {nullptr, nullptr, &on_clear_young, nullptr, &on_start,
                               &on_end, nullptr, nullptr,         nullptr};

// An address space with n registered trivial notifiers (subscriptions exist even for n == 0).
class Fixture {
 public:
  explicit Fixture(int n) : mm_(umn_mm_create()), subs_(static_cast<size_t>(n)) {
    Trivial probe;
    probe.c.ops = &kOps;
    umn_notifier_register(&probe.c, mm_);  // creates the subscriptions
    umn_notifier_unregister(&probe.c, mm_);
    for (Trivial& sub : subs_) {
      sub.c.ops = &kOps;
      umn_notifier_register(&sub.c, mm_);
    }
  }
  ~Fixture() {
    for (Trivial& sub : subs_) umn_notifier_unregister(&sub.c, mm_);
    umn_mm_destroy(mm_);
  }
  umn_mm* mm() const { return mm_; }

 private:
  umn_mm* mm_;
  std::vector<Trivial> subs_;
};

void invalidate_once(umn_mm* mm) {
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x10000, 0x20000);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
}

void BM_Invalidate_Bare(benchmark::State& state) {
  umn_mm* mm = umn_mm_create();
  for (auto _ : state) invalidate_once(mm);
  umn_mm_destroy(mm);
}
BENCHMARK(BM_Invalidate_Bare)->UseRealTime();

void BM_Invalidate_Classic(benchmark::State& state) {
  Fixture fixture(static_cast<int>(state.range(0)));
  invalidate_once(fixture.mm());  // registers this thread with urcu-bp outside the timing
  for (auto _ : state) invalidate_once(fixture.mm());
}
BENCHMARK(BM_Invalidate_Classic)->Arg(0)->Arg(1)->Arg(8)->UseRealTime();

void BM_YoungQuery_Classic(benchmark::State& state) {
  Fixture fixture(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(umn_notifier_clear_young(fixture.mm(), 0, 0x1000));
}
BENCHMARK(BM_YoungQuery_Classic)->Arg(0)->Arg(1)->Arg(8)->UseRealTime();

// Records real and CPU time of every run (the median when repeated) for the ratios.
class Recorder : public benchmark::ConsoleReporter {
 public:
  struct Times {
    double real = -1;
    double cpu = -1;
  };
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      const std::string name = run.run_name.str();
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (median || (run.run_type == Run::RT_Iteration && times_.count(name) == 0))
        times_[name] = {run.GetAdjustedRealTime(), run.GetAdjustedCPUTime()};
    }
    ConsoleReporter::ReportRuns(runs);
  }
  Times at(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? Times{} : it->second;
  }

 private:
  std::map<std::string, Times> times_;
};

double pick(const Recorder::Times& t, bool cpu) { return cpu ? t.cpu : t.real; }

// One table of ratios, on real or CPU time (CPU time is the stable one on a loaded machine: real time
// also counts the time the thread was preempted).
void print_ratios(const Recorder& rec, bool cpu) {
  const double bare = pick(rec.at("BM_Invalidate_Bare/real_time"), cpu);
  const double c0 = pick(rec.at("BM_Invalidate_Classic/0/real_time"), cpu);
  const double c1 = pick(rec.at("BM_Invalidate_Classic/1/real_time"), cpu);
  const double c8 = pick(rec.at("BM_Invalidate_Classic/8/real_time"), cpu);
  const double y0 = pick(rec.at("BM_YoungQuery_Classic/0/real_time"), cpu);
  const double y1 = pick(rec.at("BM_YoungQuery_Classic/1/real_time"), cpu);
  const double y8 = pick(rec.at("BM_YoungQuery_Classic/8/real_time"), cpu);
  if (c0 <= 0 || c1 <= 0 || c8 <= 0) return;  // filtered out
  std::printf("\nSame-run ratios, %s time in ns (baseline: 0 classic notifiers, subscriptions exist):\n",
              cpu ? "CPU" : "real");
  if (bare > 0) std::printf("  never-subscribed address space  %8.1f  (%.2fx baseline)\n", bare, bare / c0);
  std::printf("  0 classic notifiers (baseline)  %8.1f\n", c0);
  std::printf("  1 classic notifier              %8.1f  (%.2fx baseline)\n", c1, c1 / c0);
  std::printf("  8 classic notifiers             %8.1f  (%.2fx baseline)\n", c8, c8 / c0);
  std::printf("  RCU walk entry (1 - 0)          %8.1f  (two read-side sections: start, end)\n", c1 - c0);
  std::printf("  per extra subscriber (8 - 1)/7  %8.1f  (its start + end calls)\n", (c8 - c1) / 7);
  if (y0 > 0 && y1 > 0 && y8 > 0)
    std::printf("  young query: entry %.1f, per subscriber %.1f\n", y1 - y0, (y8 - y1) / 7);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Recorder recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);
  print_ratios(recorder, false);
  print_ratios(recorder, true);
  benchmark::Shutdown();
  return 0;
}
