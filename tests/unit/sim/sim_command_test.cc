// sim_command_test.cc - `umn sim` as a user runs it: bad arguments exit 2 with a message, and a small
// valid run prints JSON with zero stale accesses. Runs the built binary (UMN_CLI_PATH).
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#ifdef UMN_CLI_PATH

namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Outcome run_umn(const std::string& args) {
  // One file pair per process and call: ctest runs these tests in parallel processes.
  static int calls = 0;
  const std::string base = ::testing::TempDir() + "umn_sim_cli_" + std::to_string(getpid()) + "_" +
                           std::to_string(calls++);
  const std::string command = std::string(UMN_CLI_PATH) + " " + args + " >" + base + ".out 2>" + base + ".err";
  const int raw = std::system(command.c_str());
  Outcome outcome{WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, slurp(base + ".out"), slurp(base + ".err")};
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return outcome;
}

class BadArguments : public ::testing::TestWithParam<const char*> {};

// Every kind of bad argument: a clear message on stderr and exit status 2, never a crash.
TEST_P(BadArguments, ExitTwoWithAMessage) {
  const Outcome outcome = run_umn(GetParam());
  EXPECT_EQ(outcome.status, 2) << GetParam();
  EXPECT_FALSE(outcome.err.empty()) << GetParam();
  EXPECT_TRUE(outcome.out.empty() || outcome.out.find("results") == std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Sim, BadArguments,
                         ::testing::Values("sim --devices 0", "sim --devices 1,x", "sim --modes",
                                           "sim --devices 100000", "sim --tlb-latency 5parsecs",
                                           "sim --tlb-latency 0us", "sim --preempt-latency -20us",
                                           "sim --latency-dist gaussian", "sim --modes single,triple",
                                           "sim --ranges 0", "sim --invalidations -1", "sim --fault-threads 0",
                                           "sim --seed banana", "sim --bogus", "sim --json extra",
                                           "sim --devices 1 --invalidations 1 --csv /nonexistent/dir/out.csv",
                                           "sim --devices 1 --invalidations 1 --plot /nonexistent/dir/p.svg"));

// A small run in JSON: exit 0, one result per device count and mode, no stale access.
TEST(SimCommand, SmallJsonRunReportsZeroStale) {
  const Outcome outcome = run_umn("sim --devices 1,2 --invalidations 20 --ranges 4 --json");
  ASSERT_EQ(outcome.status, 0) << outcome.err;
  EXPECT_NE(outcome.out.find(R"("results":[)"), std::string::npos);
  EXPECT_NE(outcome.out.find(R"("devices":2,"mode":"two-pass")"), std::string::npos);
  EXPECT_EQ(outcome.out.find(R"("stale":1)"), std::string::npos);
  EXPECT_NE(outcome.out.find(R"("zero_stale":true)"), std::string::npos);
}

// The number after `"key":` at or after `from` in text; NaN when absent.
double json_number(const std::string& text, const std::string& key, size_t from = 0) {
  const size_t at = text.find("\"" + key + "\":", from);
  if (at == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + at + key.size() + 3, nullptr);
}

// A row's ideal is the reference p50 of the same row's two-pass run, measured in that run; the JSON says
// where it came from, carries the hardware's own TLB latency, and has a "targets" object.
TEST(SimCommand, IdealIsTheTwoPassRunsReference) {
  const Outcome outcome = run_umn("sim --devices 2 --invalidations 20 --ranges 2 --modes single,two-pass --json");
  ASSERT_EQ(outcome.status, 0) << outcome.err;
  const std::string& out = outcome.out;
  const size_t ideal = out.find(R"("ideal":[{"devices":2,"from":"two-pass")");
  ASSERT_NE(ideal, std::string::npos) << out;
  const size_t two_pass = out.find(R"("devices":2,"mode":"two-pass")");
  ASSERT_NE(two_pass, std::string::npos) << out;
  const double reference = json_number(out, "reference_p50_us", two_pass);
  EXPECT_GT(reference, 0);
  EXPECT_DOUBLE_EQ(json_number(out, "ideal_us", ideal), reference);
  EXPECT_DOUBLE_EQ(json_number(out, "ideal_us", two_pass), reference);
  EXPECT_GT(json_number(out, "hardware_tlb_p50_us", ideal), 0);
  EXPECT_NE(out.find(R"("targets":{"checked":true,)"), std::string::npos);
}

// The table run writes CSV and SVG files too.
TEST(SimCommand, WritesCsvAndSvg) {
  const std::string csv = ::testing::TempDir() + "umn_sim.csv";
  const std::string svg = ::testing::TempDir() + "umn_sim.svg";
  const Outcome outcome =
      run_umn("sim --devices 1,2 --invalidations 10 --ranges 2 --modes two-pass,single --csv " + csv + " --plot " + svg);
  ASSERT_EQ(outcome.status, 0) << outcome.err;
  EXPECT_NE(outcome.out.find("speedup"), std::string::npos);
  EXPECT_EQ(slurp(csv).rfind("devices,mode,p50_us", 0), 0u);
  const std::string plot = slurp(svg);
  EXPECT_EQ(plot.rfind("<svg", 0), 0u);
  EXPECT_NE(plot.find("</svg>"), std::string::npos);
}

}  // namespace

#endif  // UMN_CLI_PATH
