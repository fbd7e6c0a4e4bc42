// trace.cc - `umn trace [--log] [--verify] [--json] [-o FILE] -- CMD [ARGS...]`: runs CMD with
// libumn-preload.so and summarises the invalidation events its processes caused (per call and event
// kind, bytes, hottest call sites); --log lists every event; --verify reports misses: mappings that
// vanished or lost read/write access without an event (src/sources/preload/trace.cc has the algorithm).
// Every process CMD starts (fork, exec: gcc -> cc1 -> as) is traced through the inherited environment.
// Exit status: CMD's own (128 + signal if killed), or 3 when --verify found misses; 2 on bad arguments.
#include <fmt/core.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "command_registry.hpp"

namespace {

struct Options {
  bool log = false;
  bool verify = false;
  bool json = false;
  unsigned top = 10;
  std::string output;
  std::string preload;
  std::vector<std::string> command;
} g_opt;

struct Tally {
  unsigned long count = 0, bytes = 0;
};

struct Summary {
  std::map<std::string, std::map<std::string, Tally>> by_call;
  std::map<std::string, Tally> sites;
  std::vector<std::string> misses, log, hook_problems;
  std::set<long> processes;
  unsigned long events = 0, bytes = 0, checks = 0, unverified = 0, miss_count = 0;
};

std::string find_preload() {
  if (!g_opt.preload.empty()) return g_opt.preload;
  if (const char* env = std::getenv("UMN_PRELOAD_PATH")) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const char* rel : {"../src/sources/libumn-preload.so", "../lib/libumn-preload.so",
                          "../lib/x86_64-linux-gnu/libumn-preload.so", "libumn-preload.so"}) {
    auto candidate = exe / rel;
    if (std::filesystem::exists(candidate, ec)) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return {};
}

// Runs the command with the tracer. Return: its exit status as a shell would report it.
int run_traced(const std::string& preload, const std::string& trace_file) {
  pid_t child = fork();
  if (child < 0) {
    fmt::print(stderr, "umn trace: fork: {}\n", std::strerror(errno));
    return 127;
  }
  if (child == 0) {
    std::string ld = preload;
    if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && old[0] != '\0') ld += std::string(":") + old;
    setenv("LD_PRELOAD", ld.c_str(), 1);
    setenv("UMN_TRACE_FILE", trace_file.c_str(), 1);
    setenv("UMN_TRACE_LOG", g_opt.log ? "1" : "0", 1);
    setenv("UMN_TRACE_VERIFY", g_opt.verify ? "1" : "0", 1);
    std::vector<char*> argv;
    for (auto& arg : g_opt.command) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    fmt::print(stderr, "umn trace: {}: {}\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

void parse_line(const std::string& line, Summary* s) {
  std::istringstream in(line);
  std::string kind;
  long pid = 0;
  in >> kind >> pid;
  if (kind == "L") {
    s->log.push_back(line.substr(2));
  } else if (kind == "P") {
    s->processes.insert(pid);
  } else if (kind == "H") {
    int status;
    unsigned patched, shared, foreign, unsafe;
    int raw;
    in >> status >> patched >> shared >> foreign >> unsafe >> raw;
    if (status != 0 || foreign != 0 || unsafe != 0 || raw == 0)
      s->hook_problems.push_back(fmt::format("pid {}: install status {}, {} sites patched, {} shared, {} foreign, "
                                             "{} unsafe, raw syscall() {}", pid, status, patched, shared, foreign,
                                             unsafe, raw != 0 ? "covered" : "NOT covered"));
  } else if (kind == "C") {
    std::string call, event;
    Tally t;
    in >> call >> event >> t.count >> t.bytes;
    Tally& dst = s->by_call[call][event];
    dst.count += t.count;
    dst.bytes += t.bytes;
    s->events += t.count;
    s->bytes += t.bytes;
  } else if (kind == "S") {
    Tally t;
    in >> t.count >> t.bytes;
    std::string site;
    std::getline(in >> std::ws, site);
    Tally& dst = s->sites[site];
    dst.count += t.count;
    dst.bytes += t.bytes;
  } else if (kind == "M") {
    std::string rest;
    std::getline(in >> std::ws, rest);
    s->misses.push_back(fmt::format("pid {}: {}", pid, rest));
  } else if (kind == "V") {
    unsigned long checks, misses, unverified;
    in >> checks >> misses >> unverified;
    s->checks += checks;
    s->miss_count += misses;
    s->unverified += unverified;
  }
}

std::string human(unsigned long bytes) {
  if (bytes >= (1ul << 30)) return fmt::format("{:.1f} GiB", bytes / double(1ul << 30));
  if (bytes >= (1ul << 20)) return fmt::format("{:.1f} MiB", bytes / double(1ul << 20));
  if (bytes >= (1ul << 10)) return fmt::format("{:.1f} KiB", bytes / double(1ul << 10));
  return fmt::format("{} B", bytes);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::vector<std::pair<std::string, Tally>> hottest(const Summary& s) {
  std::vector<std::pair<std::string, Tally>> sites(s.sites.begin(), s.sites.end());
  std::sort(sites.begin(), sites.end(), [](auto& a, auto& b) { return a.second.count > b.second.count; });
  if (sites.size() > g_opt.top) sites.resize(g_opt.top);
  return sites;
}

std::string render_json(const Summary& s, int status) {
  std::string out = "{\"command\":[";
  for (size_t i = 0; i < g_opt.command.size(); ++i) out += (i ? "," : "") + json_string(g_opt.command[i]);
  out += fmt::format("],\"status\":{},\"processes\":{},\"events\":{},\"bytes\":{},\"misses\":{},", status,
                     s.processes.size(), s.events, s.bytes, g_opt.verify ? s.miss_count : 0);
  out += fmt::format("\"verified\":{},\"checks\":{},\"by_call\":{{", g_opt.verify ? "true" : "false", s.checks);
  bool first = true;
  for (auto& [call, events] : s.by_call) {
    out += fmt::format("{}{}:{{", first ? "" : ",", json_string(call));
    first = false;
    bool first_event = true;
    for (auto& [event, t] : events) {
      out += fmt::format("{}{}:{{\"count\":{},\"bytes\":{}}}", first_event ? "" : ",", json_string(event), t.count, t.bytes);
      first_event = false;
    }
    out += "}";
  }
  out += "},\"sites\":[";
  first = true;
  for (auto& [site, t] : hottest(s)) {
    out += fmt::format("{}{{\"site\":{},\"count\":{},\"bytes\":{}}}", first ? "" : ",", json_string(site), t.count, t.bytes);
    first = false;
  }
  out += "],\"miss_list\":[";
  for (size_t i = 0; i < s.misses.size(); ++i) out += (i ? "," : "") + json_string(s.misses[i]);
  out += "],\"hook_problems\":[";
  for (size_t i = 0; i < s.hook_problems.size(); ++i) out += (i ? "," : "") + json_string(s.hook_problems[i]);
  return out + "]}\n";
}

std::string render_text(const Summary& s, int status) {
  std::string out;
  for (auto& line : s.log) out += "event " + line + "\n";
  out += fmt::format("umn trace: {} process(es), exit status {}\n", s.processes.size(), status);
  if (s.processes.empty()) out += "warning: no process was traced (statically linked, or the preload failed to load)\n";
  out += fmt::format("  {:<11} {:<16} {:>10} {:>12}\n", "call", "event", "count", "bytes");
  for (auto& [call, events] : s.by_call)
    for (auto& [event, t] : events) out += fmt::format("  {:<11} {:<16} {:>10} {:>12}\n", call, event, t.count, human(t.bytes));
  out += fmt::format("  {:<28} {:>10} {:>12}\n", "total", s.events, human(s.bytes));
  out += "hottest call sites:\n";
  for (auto& [site, t] : hottest(s)) out += fmt::format("  {:>8} {:>12}  {}\n", t.count, human(t.bytes), site);
  for (auto& problem : s.hook_problems) out += "hooks: " + problem + "\n";
  if (g_opt.verify) {
    out += fmt::format("verify: {} checks against /proc/self/maps, {} misses{}\n", s.checks, s.miss_count,
                       s.unverified ? fmt::format(" ({} nested events not verified)", s.unverified) : "");
    for (auto& miss : s.misses) out += "  MISS " + miss + "\n";
  }
  return out;
}

CLI::App* add(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("trace", "run a program with the process hooks and summarise its invalidations");
  sub->add_flag("--log", g_opt.log, "list every event");
  sub->add_flag("--verify", g_opt.verify, "check a shadow of the mappings against /proc/self/maps after every event");
  sub->add_flag("--json", g_opt.json, "print the summary as JSON");
  sub->add_option("-o,--output", g_opt.output, "write the summary to this file instead of stderr");
  sub->add_option("--top", g_opt.top, "how many call sites to list")->check(CLI::Range(1u, 1000u));
  sub->add_option("--preload", g_opt.preload, "path of libumn-preload.so (default: next to umn, or $UMN_PRELOAD_PATH)");
  sub->add_option("command", g_opt.command, "the program and its arguments (after --)")->required();
  return sub;
}

int run() {
  const std::string preload = find_preload();
  if (preload.empty()) {
    fmt::print(stderr, "umn trace: libumn-preload.so not found; pass --preload PATH\n");
    return 2;
  }
  char path[] = "/tmp/umn-trace-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) {
    fmt::print(stderr, "umn trace: mkstemp: {}\n", std::strerror(errno));
    return 2;
  }
  close(fd);
  const int status = run_traced(preload, path);
  Summary summary;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) parse_line(line, &summary);
  unlink(path);
  std::string text = g_opt.json ? render_json(summary, status) : render_text(summary, status);
  if (!g_opt.output.empty()) {
    std::ofstream(g_opt.output) << text;
  } else {
    fmt::print(stderr, "{}", text);
  }
  if (g_opt.verify && summary.miss_count > 0) return 3;
  return status;
}

umn::cli::RegisterCommand registration(&add, &run);

}  // namespace
