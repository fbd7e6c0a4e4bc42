// sim_command.cc - `umn sim`: the multi-device invalidation scenario for a list of device counts and
// driver modes; prints a table (or JSON), and optionally writes CSV and an SVG plot. Bad arguments exit 2
// (CLI11 validation, through main.cc); a run with a stale access exits 1.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command_registry.hpp"
#include "sim/report.hpp"

namespace umn::cli::sim {
namespace {

using umn::sim::DriverMode;
using umn::sim::LatencyModel;

struct Options {
  std::vector<unsigned> devices{1, 2, 4, 8, 16, 32};
  std::string tlb_latency = "50us";
  std::string preempt_latency = "20us";
  std::string latency_dist = "fixed";
  unsigned ranges = 16;
  unsigned invalidations = 1000;
  unsigned fault_threads = 2;
  std::vector<std::string> modes{"single", "two-pass", "multiplexed"};
  unsigned long long seed = 1;
  std::string csv;
  bool json = false;
  std::string plot;
};

Options& options() {
  static Options instance;
  return instance;
}

// "50us", "0.2ms", "20000ns", "1s"; a bare number is microseconds. Nullopt when malformed.
std::optional<umn::sim::Nanos> parse_duration(const std::string& text) {
  static const std::regex pattern(R"(^([0-9]+(\.[0-9]+)?)(ns|us|ms|s)?$)");
  std::smatch match;
  if (!std::regex_match(text, match, pattern)) return std::nullopt;
  const double value = std::stod(match[1].str());
  const std::string unit = match[3].str();
  const double scale = unit == "ns" ? 1 : unit == "ms" ? 1e6 : unit == "s" ? 1e9 : 1e3;
  return umn::sim::Nanos(static_cast<int64_t>(value * scale));
}

const CLI::Validator kDuration(
    [](std::string& text) -> std::string {
      auto duration = parse_duration(text);
      if (!duration) return "not a duration (e.g. 50us, 0.2ms, 1s): " + text;
      if (duration->count() < 1000 || duration->count() > 1'000'000'000) return "must be between 1us and 1s: " + text;
      return {};
    },
    "DURATION");

CLI::App* add(CLI::App& app) {
  Options& opt = options();
  CLI::App* sim =
      app.add_subcommand("sim", "simulate D devices invalidating userptr ranges: single-pass, two-pass, multiplexed");
  sim->add_option("--devices", opt.devices, "device counts to run, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  sim->add_option("--tlb-latency", opt.tlb_latency, "TLB invalidation latency")
      ->check(kDuration)
      ->capture_default_str();
  sim->add_option("--preempt-latency", opt.preempt_latency, "preemption latency")
      ->check(kDuration)
      ->capture_default_str();
  sim->add_option("--latency-dist", opt.latency_dist, "latency distribution: fixed, uniform (0.5x..1.5x) or lognormal")
      ->check(CLI::IsMember({"fixed", "uniform", "lognormal"}))
      ->capture_default_str();
  sim->add_option("--ranges", opt.ranges, "user ranges, each mirrored by every device")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  sim->add_option("--invalidations", opt.invalidations, "measured invalidations per device count and mode")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  sim->add_option("--fault-threads", opt.fault_threads, "threads running the fault path and the jobs")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  sim->add_option("--modes", opt.modes, "driver modes, comma-separated: single, two-pass, multiplexed")
      ->delimiter(',')
      ->check(CLI::IsMember({"single", "two-pass", "multiplexed"}))
      ->capture_default_str();
  sim->add_option("--seed", opt.seed, "seed of the random choices and latency draws")->capture_default_str();
  sim->add_option("--csv", opt.csv, "also write the results as CSV to FILE");
  sim->add_flag("--json", opt.json, "print JSON instead of the table");
  sim->add_option("--plot", opt.plot, "also write an SVG plot of latency against devices to FILE.svg");
  return sim;
}

DriverMode mode_of(const std::string& name) {
  return name == "single"     ? DriverMode::kSinglePass
         : name == "two-pass" ? DriverMode::kTwoPass
                              : DriverMode::kMultiplexed;
}

umn::sim::ScenarioConfig scenario_config(const Options& opt) {
  const auto kind = opt.latency_dist == "uniform"     ? LatencyModel::Kind::kUniform
                    : opt.latency_dist == "lognormal" ? LatencyModel::Kind::kLogNormal
                                                      : LatencyModel::Kind::kFixed;
  umn::sim::ScenarioConfig config;
  config.device.tlb = {kind, *parse_duration(opt.tlb_latency)};
  config.device.preempt = {kind, *parse_duration(opt.preempt_latency)};
  config.ranges = opt.ranges;
  config.invalidations = opt.invalidations;
  config.fault_threads = opt.fault_threads;
  config.seed = opt.seed;
  return config;
}

void progress(const char* what, unsigned devices, size_t done, size_t total) {
  if (isatty(STDERR_FILENO) == 0) return;
  fmt::print(stderr, "\r\033[Kumn sim: {} D={} ({}/{})", what, devices, done, total);
  std::fflush(stderr);
}

// The modes of a row take turns, in kTurns runs each of a share of the invalidations, and each mode's
// runs are merged: on a shared machine the load drifts over seconds, and a row whose single-pass run
// had a quiet spell and whose two-pass run a busy one compared the machine, not the modes.
constexpr unsigned kTurns = 4;

std::vector<Row> run_all(const Options& opt) {
  umn::sim::ScenarioConfig config = scenario_config(opt);
  std::vector<Row> rows;
  const unsigned turns = std::min(kTurns, opt.invalidations);
  const size_t total = opt.devices.size() * opt.modes.size() * turns;
  size_t done = 0;
  for (unsigned devices : opt.devices) {
    config.devices = devices;
    std::vector<std::vector<umn::sim::ScenarioResult>> parts(opt.modes.size());
    for (unsigned turn = 0; turn < turns; turn++)
      for (size_t m = 0; m < opt.modes.size(); m++) {
        progress(opt.modes[m].c_str(), devices, done++, total);
        config.mode = mode_of(opt.modes[m]);
        config.invalidations = opt.invalidations / turns + (turn < opt.invalidations % turns ? 1 : 0);
        config.seed = opt.seed + turn;
        parts[m].push_back(umn::sim::run_scenario(config));
      }
    Row row{devices, {}};
    for (const auto& mode_parts : parts) row.results.push_back(umn::sim::merge(mode_parts));
    rows.push_back(std::move(row));
  }
  if (isatty(STDERR_FILENO) != 0) fmt::print(stderr, "\r\033[K");
  return rows;
}

// Opens path for writing, or says why not. Nullptr when path is empty or cannot be opened.
std::FILE* open_output(const std::string& path, bool* failed) {
  if (path.empty()) return nullptr;
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    fmt::print(stderr, "umn sim: cannot write {}: {}\n", path, std::strerror(errno));
    *failed = true;
  }
  return file;
}

RunInfo run_info(const Options& opt) {
  std::string command = fmt::format(
      "umn sim --devices {} --tlb-latency {} --preempt-latency {} --latency-dist {} --ranges {} --invalidations {} "
      "--fault-threads {} --modes {} --seed {}",
      fmt::join(opt.devices, ","), opt.tlb_latency, opt.preempt_latency, opt.latency_dist, opt.ranges,
      opt.invalidations, opt.fault_threads, fmt::join(opt.modes, ","), opt.seed);
  return {opt.tlb_latency,   opt.preempt_latency, opt.latency_dist, opt.ranges,
          opt.invalidations, opt.fault_threads,   opt.seed,         std::move(command)};
}

int run() {
  const Options& opt = options();
  bool failed = false;
  std::FILE* csv = open_output(opt.csv, &failed);
  std::FILE* plot = open_output(opt.plot, &failed);
  if (failed) return 2;  // a bad output path is a bad argument: nothing ran
  const std::vector<Row> rows = run_all(opt);
  const Targets targets = check_targets(rows);
  const RunInfo info = run_info(opt);
  if (opt.json)
    write_json(stdout, info, rows, targets);
  else
    print_table(stdout, info, rows, targets);
  if (csv != nullptr) write_csv(csv, rows), std::fclose(csv);
  if (plot != nullptr) write_svg(plot, info, rows), std::fclose(plot);
  return targets.no_stale ? 0 : 1;
}

const RegisterCommand kRegister(&add, &run);

}  // namespace
}  // namespace umn::cli::sim
