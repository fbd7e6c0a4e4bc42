// report.cc - the table, CSV, JSON and targets of `umn sim`.
#include "sim/report.hpp"

#include <fmt/core.h>

namespace umn::cli::sim {

using umn::sim::DriverMode;
using umn::sim::ScenarioResult;

const ScenarioResult* Row::find(DriverMode mode) const {
  for (const ScenarioResult& result : results)
    if (result.mode == mode) return &result;
  return nullptr;
}

std::optional<double> Row::speedup() const {
  const ScenarioResult* single = find(DriverMode::kSinglePass);
  const ScenarioResult* two_pass = find(DriverMode::kTwoPass);
  if (single == nullptr || two_pass == nullptr || two_pass->latency.p50_us <= 0) return std::nullopt;
  return single->latency.p50_us / two_pass->latency.p50_us;
}

const ScenarioResult* Row::ideal_run() const {
  const ScenarioResult* two_pass = find(DriverMode::kTwoPass);
  if (two_pass != nullptr) return two_pass;
  return results.empty() ? nullptr : &results.front();
}

double ideal_us(const Row& row) {
  const ScenarioResult* run = row.ideal_run();
  return run == nullptr ? 0 : run->reference.p50_us;
}

double hardware_us(const Row& row) {
  const ScenarioResult* run = row.ideal_run();
  return run == nullptr ? 0 : run->hardware_tlb_p50_us;
}

namespace {

void check_row(const Row& row, Targets& targets) {
  for (const ScenarioResult& result : row.results) targets.no_stale &= result.stale == 0;
  const std::optional<double> speedup = row.speedup();
  if (!speedup) return;
  targets.checked = true;
  const double ideal = ideal_us(row);
  const double two_pass = row.find(DriverMode::kTwoPass)->latency.p50_us;
  if (row.devices == 8 || row.devices == 32) {
    const bool ok = two_pass <= 1.25 * ideal;
    targets.within_ideal &= ok;
    targets.notes.push_back(
        fmt::format("D={:<3} two-pass p50 {:.1f} us = {:.2f} x ideal {:.1f} us (target <= 1.25): {}", row.devices,
                    two_pass, two_pass / ideal, ideal, ok ? "met" : "NOT met"));
  }
  if (row.devices <= 32 && row.devices > 1) {
    const bool ok = *speedup >= 0.7 * row.devices;
    targets.speedup &= ok;
    targets.notes.push_back(fmt::format("D={:<3} speedup {:.2f} = {:.2f} x D (target >= 0.7): {}", row.devices,
                                        *speedup, *speedup / row.devices, ok ? "met" : "NOT met"));
  }
}

std::string cell(const ScenarioResult* result, bool p99) {
  if (result == nullptr) return fmt::format("{:>8}", "-");
  return fmt::format("{:8.1f}", p99 ? result->latency.p99_us : result->latency.p50_us);
}

uint64_t sum(const Row& row, uint64_t ScenarioResult::*field) {
  uint64_t total = 0;
  for (const ScenarioResult& result : row.results) total += result.*field;
  return total;
}

void print_header(std::FILE* out, const RunInfo& info) {
  fmt::print(out, "umn sim: invalidation latency (us, as umn_notifier_invalidate_range_start sees it)\n");
  fmt::print(out, "  TLB {} and preempt {} ({}), {} ranges, {} invalidations per cell, {} fault threads, seed {}\n",
             info.tlb_latency, info.preempt_latency, info.latency_dist, info.ranges, info.invalidations,
             info.fault_threads, info.seed);
  fmt::print(
      out,
      "  ideal = one device's invalidation as the CPU side sees it, p50 (TLB and preempt overlapped): a reference\n"
      "          range mirrored by one extra device, invalidated once per measured invalidation, interleaved\n"
      "          with them in the same runs (the two-pass runs', where they ran)\n"
      "  hw    = what the simulated hardware itself gave in those runs: TLB invalidation submit-to-signal p50\n"
      "  a row's modes take turns: 4 runs each (a quarter of the invalidations per run), merged\n\n");
}

}  // namespace

Targets check_targets(const std::vector<Row>& rows) {
  Targets targets;
  for (const Row& row : rows) check_row(row, targets);
  return targets;
}

void print_table(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows, const Targets& targets) {
  print_header(out, info);
  fmt::print(out, "{:>7} {:>17} {:>17} {:>17} {:>8} {:>7} {:>6} {:>6} {:>8} {:>9} {:>9}\n", "", "single-pass",
             "two-pass", "multiplexed", "", "", "", "", "", "", "mux lock");
  fmt::print(out, "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>8} {:>9} {:>9}\n", "devices",
             "p50", "p99", "p50", "p99", "p50", "p99", "speedup", "ideal", "hw", "stale", "retries", "fallbacks",
             "wait p99");
  for (const Row& row : rows) {
    const ScenarioResult* mux = row.find(DriverMode::kMultiplexed);
    const std::optional<double> speedup = row.speedup();
    fmt::print(out, "{:>7} {} {} {} {} {} {} {:>8} {:7.1f} {:6.1f} {:>6} {:>8} {:>9} {:>9}\n", row.devices,
               cell(row.find(DriverMode::kSinglePass), false), cell(row.find(DriverMode::kSinglePass), true),
               cell(row.find(DriverMode::kTwoPass), false), cell(row.find(DriverMode::kTwoPass), true),
               cell(mux, false), cell(mux, true), speedup ? fmt::format("{:.2f}x", *speedup) : "-", ideal_us(row),
               hardware_us(row), sum(row, &ScenarioResult::stale), sum(row, &ScenarioResult::retries),
               sum(row, &ScenarioResult::fallbacks), mux ? fmt::format("{:.0f}", mux->lock_wait_p99_us) : "-");
  }
  fmt::print(out, "\n");
  for (const std::string& note : targets.notes) fmt::print(out, "  {}\n", note);
  fmt::print(out, "  stale accesses: {}\n", targets.no_stale ? "0 in every mode (met)" : "NOT zero (a driver bug)");
}

void write_csv(std::FILE* out, const std::vector<Row>& rows) {
  fmt::print(
      out,
      "devices,mode,p50_us,p99_us,mean_us,max_us,reference_p50_us,ideal_us,speedup,stale,reads,retries,fallbacks,"
      "fallbacks_busy,deferred,faults,fault_timeouts,not_ready,lock_contended,lock_wait_p99_us,"
      "timer_lateness_p50_us,hardware_tlb_p50_us\n");
  for (const Row& row : rows) {
    const std::optional<double> speedup = row.speedup();
    for (const ScenarioResult& r : row.results)
      fmt::print(
          out,
          "{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{:.2f},{},{},{},{},{},{},{},{},{},{},{},{:.1f},{:.2f},{:.1f}\n",
          r.devices, umn::sim::to_string(r.mode), r.latency.p50_us, r.latency.p99_us, r.latency.mean_us,
          r.latency.max_us, r.reference.p50_us, ideal_us(row),
          r.mode == DriverMode::kTwoPass && speedup ? fmt::format("{:.3f}", *speedup) : "", r.stale, r.reads, r.retries,
          r.fallbacks, r.fallbacks_busy, r.deferred, r.faults, r.fault_timeouts, r.not_ready, r.lock_contended,
          r.lock_wait_p99_us, r.timer_lateness_p50_us, r.hardware_tlb_p50_us);
  }
}

namespace {

std::string json_result(const Row& row, const ScenarioResult& r) {
  const std::optional<double> speedup = row.speedup();
  return fmt::format(
      R"({{"devices":{},"mode":"{}","p50_us":{:.2f},"p99_us":{:.2f},"mean_us":{:.2f},"max_us":{:.2f},)"
      R"("reference_p50_us":{:.2f},"reference_p99_us":{:.2f},"ideal_us":{:.2f},"speedup":{},"stale":{},"reads":{},"retries":{},"fallbacks":{},"fallbacks_busy":{},)"
      R"("deferred":{},"faults":{},"fault_timeouts":{},"not_ready":{},"lock_contended":{},)"
      R"("lock_wait_p99_us":{:.1f},"timer_lateness_p50_us":{:.2f},"hardware_tlb_p50_us":{:.1f}}})",
      r.devices, umn::sim::to_string(r.mode), r.latency.p50_us, r.latency.p99_us, r.latency.mean_us, r.latency.max_us,
      r.reference.p50_us, r.reference.p99_us, ideal_us(row),
      r.mode == DriverMode::kTwoPass && speedup ? fmt::format("{:.3f}", *speedup) : "null", r.stale, r.reads, r.retries,
      r.fallbacks, r.fallbacks_busy, r.deferred, r.faults, r.fault_timeouts, r.not_ready, r.lock_contended,
      r.lock_wait_p99_us, r.timer_lateness_p50_us, r.hardware_tlb_p50_us);
}

}  // namespace

void write_json(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows, const Targets& targets) {
  fmt::print(out,
             R"({{"config":{{"tlb_latency":"{}","preempt_latency":"{}","latency_dist":"{}","ranges":{},)"
             R"("invalidations":{},"fault_threads":{},"seed":{}}},)",
             info.tlb_latency, info.preempt_latency, info.latency_dist, info.ranges, info.invalidations,
             info.fault_threads, info.seed);
  fmt::print(out, "\n\"ideal\":[");
  for (size_t i = 0; i < rows.size(); i++) {
    const ScenarioResult* run = rows[i].ideal_run();
    fmt::print(
        out,
        R"({}{{"devices":{},"from":"{}","ideal_us":{:.2f},"hardware_tlb_p50_us":{:.1f},"timer_lateness_p50_us":{:.2f}}})",
        i ? "," : "", rows[i].devices, run ? umn::sim::to_string(run->mode) : "", ideal_us(rows[i]),
        hardware_us(rows[i]), run ? run->timer_lateness_p50_us : 0.0);
  }
  fmt::print(out, "],\n\"results\":[");
  const char* separator = "\n";
  for (const Row& row : rows)
    for (const ScenarioResult& result : row.results) {
      fmt::print(out, "{}{}", separator, json_result(row, result));
      separator = ",\n";
    }
  fmt::print(out,
             "],\n\"targets\":{{\"checked\":{},\"two_pass_within_1_25x_ideal\":{},\"speedup_0_7xD\":{},"
             "\"zero_stale\":{}}}}}\n",
             targets.checked, targets.within_ideal, targets.speedup, targets.no_stale);
}

}  // namespace umn::cli::sim
