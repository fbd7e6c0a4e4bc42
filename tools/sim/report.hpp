// report.hpp - what `umn sim` measured, and how it is printed: the table, CSV, JSON, the targets and the
// SVG plot. Single-threaded; called after the runs.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "users/sim/scenario.hpp"

namespace umn::cli::sim {

// One device count: one result per mode that ran.
struct Row {
  unsigned devices = 0;
  std::vector<umn::sim::ScenarioResult> results;

  [[nodiscard]] const umn::sim::ScenarioResult* find(umn::sim::DriverMode mode) const;
  // The run the row's ideal comes from: two-pass if it ran (its target compares against it), else the
  // first mode that ran; nullptr for an empty row.
  [[nodiscard]] const umn::sim::ScenarioResult* ideal_run() const;
  // single-pass p50 / two-pass p50, when both ran.
  [[nodiscard]] std::optional<double> speedup() const;
};

// The parameters echoed in the header and the JSON.
struct RunInfo {
  std::string tlb_latency;
  std::string preempt_latency;
  std::string latency_dist;
  unsigned ranges = 0;
  unsigned invalidations = 0;
  unsigned fault_threads = 0;
  unsigned long long seed = 0;
  std::string command;  // the command line, for the plot's caption
};

// The ideal of a row: one device's invalidation latency as the CPU side sees it, measured in the same
// run as the figure it is compared with (ideal_run()'s reference p50: one-device invalidations
// interleaved with the measured ones; scenario.hpp). 0 when the reference did not run.
double ideal_us(const Row& row);
// What the hardware itself gave in that run: TLB invalidation submit-to-signal p50 (us).
double hardware_us(const Row& row);

// The targets, checked on the rows: two-pass p50 within 1.25x of the ideal at D = 8 and 32,
// speedup >= 0.7 x D for D <= 32, no stale access.
struct Targets {
  bool checked = false;  // false when single and two-pass did not both run
  bool within_ideal = true;
  bool speedup = true;
  bool no_stale = true;
  std::vector<std::string> notes;  // one line per checked figure
};
Targets check_targets(const std::vector<Row>& rows);

void print_table(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows, const Targets& targets);
void write_csv(std::FILE* out, const std::vector<Row>& rows);
void write_json(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows, const Targets& targets);
void write_svg(std::FILE* out, const RunInfo& info, const std::vector<Row>& rows);

}  // namespace umn::cli::sim
