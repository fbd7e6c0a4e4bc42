// trace.cc - `umn trace [--log] [--verify] [--json] [-o FILE] -- CMD [ARGS...]`: runs CMD under the
// tracer (tracer.hpp) with libumn-preload.so, and summarises what the hooks of its processes announced
// (per call and event kind, bytes, hottest call sites) from the shared record (trace_record.hpp);
// --log lists every event; --verify stops every memory-changing system call of the tree from outside
// and reports each one the hooks did not announce (a miss).
// Exit status: 3 when --verify found misses; else 4 when some process could not be verified (no hooks
// in it, or its record could not be kept) or no process was traced; else CMD's own (128 + signal if
// killed); 2 on bad arguments.
#include <fmt/core.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "command_registry.hpp"
#include "trace/record_file.hpp"
#include "trace/tracer.hpp"

namespace {

using umn::trace::Image;
using umn::trace::Region;
using umn::trace::TraceRun;

constexpr int kStatusMisses = 3;
constexpr int kStatusUnverified = 4;

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
  std::vector<std::string> log, hook_problems;
  std::set<long> processes;
  unsigned long events = 0, bytes = 0, checks = 0;
};

// An absolute path: the traced programs may change directory before they exec others.
std::string find_preload() {
  std::error_code ec;
  if (!g_opt.preload.empty()) return std::filesystem::absolute(g_opt.preload, ec).string();
  if (const char* env = std::getenv("UMN_PRELOAD_PATH")) return std::filesystem::absolute(env, ec).string();
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const char* rel : {"../src/sources/libumn-preload.so", "../lib/libumn-preload.so",
                          "../lib/x86_64-linux-gnu/libumn-preload.so", "libumn-preload.so"}) {
    auto candidate = exe / rel;
    if (std::filesystem::exists(candidate, ec)) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return {};
}

// ---- reading the shared record --------------------------------------------------------------------

const Image* image_of_record(const TraceRun& run, int record) {
  for (const Image& image : run.images)
    if (image.record == record) return &image;
  return nullptr;
}

// A process whose installation failed or left sites it found uncovered (unknown sites -- a number not
// at the site, umn's own boundary among them -- are in every process and only listed).
void add_hook_problems(const umn::trace::ProcessRecord& record, Summary* s) {
  if (record.ready.load(std::memory_order_acquire) == umn::trace::kRecordClaimed) return;
  if (record.hooks_status != 0 || record.sites_foreign != 0 || record.sites_unsafe != 0 ||
      record.sites_undecoded != 0 || record.sites_failed != 0 || record.text_unscanned != 0 ||
      record.raw_syscall_covered == 0)
    s->hook_problems.push_back(fmt::format(
        "pid {}: install status {}, {} sites patched, {} shared, {} foreign, "
        "{} unsafe, {} failed, {} undecoded, {} unknown, {} executable mappings "
        "unscanned, raw syscall() {}",
        record.pid.load(), record.hooks_status, record.sites_patched, record.sites_shared, record.sites_foreign,
        record.sites_unsafe, record.sites_failed, record.sites_undecoded, record.sites_unknown, record.text_unscanned,
        record.raw_syscall_covered != 0 ? "covered" : "NOT covered"));
}

void add_record(const Region& region, const TraceRun& run, int index, Summary* s) {
  const umn::trace::ProcessRecord& record = region.records[index];
  add_hook_problems(record, s);
  for (unsigned c = 0; c < UMN_CALL_COUNT; ++c)
    for (unsigned e = 0; e < umn::trace::kEvents; ++e) {
      const unsigned long count = record.calls[c][e].count.load(std::memory_order_relaxed);
      if (count == 0) continue;
      const unsigned long bytes = record.calls[c][e].bytes.load(std::memory_order_relaxed);
      Tally& dst = s->by_call[umn_process_call_name(static_cast<umn_process_call>(c))]
                             [umn_notifier_event_name(static_cast<umn_notifier_event>(e))];
      dst.count += count;
      dst.bytes += bytes;
      s->events += count;
      s->bytes += bytes;
    }
  const Image* image = image_of_record(run, index);
  for (const umn::trace::Site& site : record.sites) {
    const uint64_t caller = site.caller.load(std::memory_order_relaxed);
    if (caller == 0) continue;
    Tally& dst =
        s->sites[image != nullptr ? umn::trace::describe_address(image->maps, caller) : fmt::format("?{:#x}", caller)];
    dst.count += site.count.load(std::memory_order_relaxed);
    dst.bytes += site.bytes.load(std::memory_order_relaxed);
  }
}

void add_log(const Region& region, const TraceRun& run, Summary* s) {
  const uint64_t claimed = region.header.next_log.load(std::memory_order_acquire);
  for (uint64_t i = 0; i < std::min<uint64_t>(claimed, umn::trace::kLogEntries); ++i) {
    const umn::trace::LogEntry& entry = region.log[i];
    if (entry.written.load(std::memory_order_acquire) == 0) continue;  // its process died while writing it
    std::string where = fmt::format("?{:#x}", entry.caller);
    for (const Image& image : run.images)
      if (image.pid == entry.pid && !image.maps.empty()) where = umn::trace::describe_address(image.maps, entry.caller);
    s->log.push_back(fmt::format(
        "{} {} {} {:#x} {:#x} {}", entry.pid, umn_process_call_name(static_cast<umn_process_call>(entry.call)),
        umn_notifier_event_name(static_cast<umn_notifier_event>(entry.event)), entry.start, entry.end, where));
  }
  if (claimed > umn::trace::kLogEntries)
    s->log.push_back(fmt::format("... {} more events not listed", claimed - umn::trace::kLogEntries));
}

// Why an image could not be verified.
std::string unhooked_reason(const Region& region, const Image& image) {
  if (image.record < 0)
    return "no record: the preload was not loaded (an environment without LD_PRELOAD or UMN_TRACE_FILE, such as "
           "`env -i`, or a statically linked executable)";
  const umn::trace::ProcessRecord& record = region.records[image.record];
  if (record.ready.load(std::memory_order_acquire) == umn::trace::kRecordUnhooked)
    return fmt::format("the hooks could not be installed: {} ({})", std::strerror(-record.hooks_status),
                       record.hooks_status);
  return "it ended before its hooks were installed";
}

Summary summarise(const Region& region, TraceRun* run) {
  umn::trace::settle_records(&region, run);
  Summary s;
  const uint32_t claimed =
      std::min(region.header.next_record.load(std::memory_order_acquire), umn::trace::kProcessRecords);
  for (uint32_t r = 0; r < claimed; ++r) add_record(region, *run, static_cast<int>(r), &s);
  if (g_opt.log) add_log(region, *run, &s);
  for (const Image& image : run->images) {
    s.processes.insert(image.pid);
    s.checks += image.checked;
    if (!image.hooked)
      run->problems.push_back(
          fmt::format("pid {} ({}): not verified: {}", image.pid, image.exe, unhooked_reason(region, image)));
  }
  if (run->images.empty()) run->problems.push_back("no process was traced");
  if (region.header.next_record.load() > umn::trace::kProcessRecords)
    run->problems.push_back(fmt::format("{} processes found the record table full",
                                        region.header.next_record.load() - umn::trace::kProcessRecords));
  if (uint32_t lost = region.header.thread_overflow.load(); lost != 0)
    run->problems.push_back(
        fmt::format("{} threads found the thread table full: their announcements were not recorded", lost));
  return s;
}

// ---- rendering ------------------------------------------------------------------------------------

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

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + json_string(items[i]);
  return out + "]";
}

std::vector<std::pair<std::string, Tally>> hottest(const Summary& s) {
  std::vector<std::pair<std::string, Tally>> sites(s.sites.begin(), s.sites.end());
  std::sort(sites.begin(), sites.end(), [](auto& a, auto& b) { return a.second.count > b.second.count; });
  if (sites.size() > g_opt.top) sites.resize(g_opt.top);
  return sites;
}

std::vector<std::string> miss_lines(const TraceRun& run) {
  std::vector<std::string> lines;
  for (const auto& miss : run.misses)
    lines.push_back(fmt::format("pid {} tid {} ({}): {} {} not announced{}", miss.pid, miss.tid, miss.exe, miss.syscall,
                                miss.detail, miss.where.empty() ? "" : " (syscall at " + miss.where + ")"));
  return lines;
}

std::string json_by_call(const Summary& s) {
  std::string out = "{";
  bool first = true;
  for (auto& [call, events] : s.by_call) {
    out += fmt::format("{}{}:{{", first ? "" : ",", json_string(call));
    first = false;
    bool first_event = true;
    for (auto& [event, t] : events) {
      out += fmt::format("{}{}:{{\"count\":{},\"bytes\":{}}}", first_event ? "" : ",", json_string(event), t.count,
                         t.bytes);
      first_event = false;
    }
    out += "}";
  }
  return out + "}";
}

std::string json_processes(const Region& region, const TraceRun& run) {
  std::string out = "[";
  for (size_t i = 0; i < run.images.size(); ++i) {
    const Image& image = run.images[i];
    uint64_t events = 0;
    if (image.record >= 0)
      for (auto& row : region.records[image.record].calls)
        for (auto& tally : row) events += tally.count.load(std::memory_order_relaxed);
    out += fmt::format(
        "{}{{\"pid\":{},\"ppid\":{},\"exe\":{},\"hooked\":{},\"ended\":{},\"events\":{},\"trapped\":{},"
        "\"checked\":{},\"before_hooks\":{},\"misses\":{}}}",
        i ? "," : "", image.pid, image.ppid, json_string(image.exe), image.hooked ? "true" : "false",
        json_string(image.ended), events, image.trapped, image.checked, image.before_hooks, image.misses);
  }
  return out + "]";
}

std::string json_syscalls(const TraceRun& run) {
  std::string out = "{";
  bool first = true;
  for (auto& [name, t] : run.syscalls) {
    out += fmt::format("{}{}:{{\"trapped\":{},\"checked\":{},\"before_hooks\":{},\"misses\":{}}}", first ? "" : ",",
                       json_string(name), t.trapped, t.checked, t.before_hooks, t.misses);
    first = false;
  }
  return out + "}";
}

std::string render_json(const Region& region, const Summary& s, const TraceRun& run, int status) {
  std::string out = "{\"command\":" + json_list(g_opt.command);
  out += fmt::format(",\"status\":{},\"exit_status\":{},\"processes\":{},\"events\":{},\"bytes\":{},\"misses\":{},",
                     run.status, status, s.processes.size(), s.events, s.bytes, run.misses.size());
  out += fmt::format("\"verified\":{},\"checks\":{},\"by_call\":{}", g_opt.verify ? "true" : "false", s.checks,
                     json_by_call(s));
  out += ",\"sites\":[";
  bool first = true;
  for (auto& [site, t] : hottest(s)) {
    out += fmt::format("{}{{\"site\":{},\"count\":{},\"bytes\":{}}}", first ? "" : ",", json_string(site), t.count,
                       t.bytes);
    first = false;
  }
  out += "],\"miss_list\":" + json_list(miss_lines(run)) + ",\"hook_problems\":" + json_list(s.hook_problems);
  out += ",\"problems\":" + json_list(run.problems) + ",\"process_list\":" + json_processes(region, run);
  return out + ",\"syscalls\":" + json_syscalls(run) + "}\n";
}

std::string render_text(const Summary& s, const TraceRun& run, int status) {
  std::string out;
  for (auto& line : s.log) out += "event " + line + "\n";
  out += fmt::format("umn trace: {} process(es), command exit status {}, umn trace exit status {}\n",
                     s.processes.size(), run.status, status);
  out += fmt::format("  {:<15} {:<16} {:>10} {:>12}\n", "call", "event", "count", "bytes");
  for (auto& [call, events] : s.by_call)
    for (auto& [event, t] : events)
      out += fmt::format("  {:<15} {:<16} {:>10} {:>12}\n", call, event, t.count, human(t.bytes));
  out += fmt::format("  {:<32} {:>10} {:>12}\n", "total", s.events, human(s.bytes));
  out += "hottest call sites:\n";
  for (auto& [site, t] : hottest(s)) out += fmt::format("  {:>8} {:>12}  {}\n", t.count, human(t.bytes), site);
  for (auto& problem : s.hook_problems) out += "hooks: " + problem + "\n";
  if (g_opt.verify) {
    out += fmt::format("verify: {} memory-changing calls checked from outside (ptrace + seccomp), {} misses\n",
                       s.checks, run.misses.size());
    for (auto& [name, t] : run.syscalls)
      out += fmt::format("  {:<22} trapped {:>8}  checked {:>8}  before hooks {:>6}  misses {}\n", name, t.trapped,
                         t.checked, t.before_hooks, t.misses);
    for (auto& line : miss_lines(run)) out += "  MISS " + line + "\n";
  }
  for (auto& problem : run.problems) out += "error: " + problem + "\n";
  return out;
}

CLI::App* add(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("trace", "run a program with the process hooks and summarise its invalidations");
  sub->add_flag("--log", g_opt.log, "list every event");
  sub->add_flag(
      "--verify", g_opt.verify,
      "stop every memory-changing system call (ptrace + seccomp) and report those the hooks did not announce");
  sub->add_flag("--json", g_opt.json, "print the summary as JSON");
  sub->add_option("-o,--output", g_opt.output, "write the summary to this file instead of stderr");
  sub->add_option("--top", g_opt.top, "how many call sites to list")->check(CLI::Range(1u, 1000u));
  sub->add_option("--preload", g_opt.preload, "path of libumn-preload.so (default: next to umn, or $UMN_PRELOAD_PATH)");
  sub->add_option("command", g_opt.command, "the program and its arguments (after --)")->required();
  return sub;
}

// Sets the environment the traced tree inherits (in the child, before exec).
void set_environment(const std::string& preload, const std::string& record_path) {
  std::string ld = preload;
  if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && old[0] != '\0') ld += std::string(":") + old;
  setenv("LD_PRELOAD", ld.c_str(), 1);
  setenv(umn::trace::kEnvFile, record_path.c_str(), 1);
}

int run() {
  const std::string preload = find_preload();
  if (preload.empty()) {
    fmt::print(stderr, "umn trace: libumn-preload.so not found; pass --preload PATH\n");
    return 2;
  }
  umn::trace::RecordFile file;
  if (!file.create(g_opt.log)) {
    fmt::print(stderr, "umn trace: cannot create the record file {}: {}\n", file.path(), std::strerror(errno));
    return 2;
  }
  TraceRun run = umn::trace::run_traced(file.region(), g_opt.verify, g_opt.command,
                                        [&] { set_environment(preload, file.path()); });
  Summary summary = summarise(*file.region(), &run);
  int status = run.status;
  if (!run.problems.empty()) status = kStatusUnverified;
  if (g_opt.verify && !run.misses.empty()) status = kStatusMisses;
  std::string text = g_opt.json ? render_json(*file.region(), summary, run, status) : render_text(summary, run, status);
  if (!g_opt.output.empty()) {
    std::ofstream(g_opt.output) << text;
  } else {
    fmt::print(stderr, "{}", text);
  }
  return status;
}

umn::cli::RegisterCommand registration(&add, &run);

}  // namespace
