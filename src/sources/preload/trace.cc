// trace.cc - the tracer behind `umn trace` (tools/trace): an observer of the process hooks that counts
// events per call and kind, per call site, optionally logs each event, and with verification keeps a
// shadow of the process's mappings to find unmaps and access losses that no event announced (misses).
//
// Environment (set by `umn trace`): UMN_TRACE_FILE (required; lines are appended to it),
// UMN_TRACE_LOG=1 (one line per event), UMN_TRACE_VERIFY=1 (the shadow check).
//
// Verification algorithm. S is the shadow: the mappings (with their read/write access) as of the last
// check. Each event is recorded in the in-flight table at START (before its syscall) and marked ended at
// END. A check, after every END and at exit, under the verify lock: read /proc/self/maps into M; every
// part of S that is not in M with at least the same read/write access was lost; a lost part must lie
// inside the ranges of the events recorded in the table (in flight, or ended since the last check),
// else it is a miss. Then S = M and the ended events are dropped. An event's START takes the same lock,
// so its syscall happens after any check that does not know about it: no false misses from races.
//
// Locking: g_verify_lock (a spin lock; never held across a callback) guards S, M and the event table.
// Context: the observer runs inside the hooks: no malloc, raw syscalls only, no stdio. The summary at
// exit (a destructor) may allocate.
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sources/sys/sys.hpp"
#include "umn/process.h"

namespace umn::trace {
namespace {

constexpr unsigned kEvents = 8;  // enum umn_notifier_event values
constexpr unsigned kSites = 1024;
constexpr unsigned kShadow = 32768;
constexpr unsigned kInFlight = 4096;
constexpr unsigned kMissRecords = 64;

int g_fd = -1;
bool g_log = false;
bool g_verify = false;
std::atomic<unsigned long> g_count[UMN_CALL_COUNT][kEvents];
std::atomic<unsigned long> g_bytes[UMN_CALL_COUNT][kEvents];

struct SiteCounter {
  std::atomic<uintptr_t> caller{0};
  std::atomic<unsigned long> count{0};
  std::atomic<unsigned long> bytes{0};
};
SiteCounter g_sites[kSites];
std::atomic<unsigned long> g_sites_dropped{0};

// ---- small formatting without stdio ---------------------------------------------------------------

struct Line {
  char buf[256];
  size_t len = 0;
  void str(const char* s) {
    while (*s != '\0' && len < sizeof(buf) - 1) buf[len++] = *s++;
  }
  void hex(uint64_t v) {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    str("0x");
    while (n > 0 && len < sizeof(buf) - 1) buf[len++] = tmp[--n];
  }
  void dec(uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0 && len < sizeof(buf) - 1) buf[len++] = tmp[--n];
  }
  void emit(int fd) {
    buf[len++] = '\n';
    sys::write_all(fd, buf, len);
  }
};

void count_site(uintptr_t caller, uint64_t bytes) noexcept {
  size_t h = (caller * 0x9e3779b97f4a7c15ull) >> 54;  // 10 bits
  for (unsigned probe = 0; probe < kSites; ++probe) {
    SiteCounter& site = g_sites[(h + probe) % kSites];
    uintptr_t seen = site.caller.load(std::memory_order_acquire);
    if (seen == 0 && site.caller.compare_exchange_strong(seen, caller, std::memory_order_acq_rel)) seen = caller;
    if (seen != caller) continue;
    site.count.fetch_add(1, std::memory_order_relaxed);
    site.bytes.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  g_sites_dropped.fetch_add(1, std::memory_order_relaxed);
}

// ---- verification ---------------------------------------------------------------------------------

struct Region {
  uint64_t start, end;
  unsigned access;  // kMapRead | kMapWrite
};

struct InFlight {
  uint64_t start, end;
  uint32_t generation;  // odd while the slot is used
  bool ended;
  umn_process_call call;
};

struct Miss {
  uint64_t start, end;
  unsigned lost;  // access bits lost; 3 for a mapping that vanished with read+write
  bool vanished;
  umn_process_call after;
  char path[64];
};

std::atomic<bool> g_verify_lock{false};
Region g_shadow[kShadow];
unsigned g_shadow_count = 0;
char g_shadow_paths[kShadow][24];  // the tail of each mapping's path, for the miss report
Region g_now[kShadow];
char g_now_paths[kShadow][24];
InFlight g_flight[kInFlight];
unsigned g_flight_hint = 0;
Miss g_misses[kMissRecords];
std::atomic<unsigned long> g_miss_count{0};
unsigned long g_checks = 0;
std::atomic<unsigned long> g_unverified{0};  // events seen while the verifier was busy on this thread
[[gnu::tls_model("initial-exec")]] thread_local bool t_in_verify = false;

struct VerifyLock {
  VerifyLock() noexcept {
    while (g_verify_lock.exchange(true, std::memory_order_acquire)) sched_yield();
    t_in_verify = true;
  }
  ~VerifyLock() {
    t_in_verify = false;
    g_verify_lock.store(false, std::memory_order_release);
  }
};

void copy_tail(char* dst, size_t size, const char* path) noexcept {
  size_t n = std::strlen(path);
  const char* from = n >= size ? path + n - (size - 1) : path;
  std::strncpy(dst, from, size - 1);
  dst[size - 1] = '\0';
}

unsigned read_maps(Region* out, char (*paths)[24]) noexcept {
  sys::MapsReader maps;
  sys::MapEntry entry;
  unsigned n = 0;
  while (maps.next(&entry) && n < kShadow) {
    unsigned access = entry.prot & (sys::kMapRead | sys::kMapWrite);
    if (access == 0) continue;
    out[n] = {entry.start, entry.end, access};
    copy_tail(paths[n], sizeof(paths[n]), entry.path);
    ++n;
  }
  return n;
}

// Is every byte of [a, b) inside some recorded event's range? Cuts the piece by each event in turn.
bool covered_by_events(uint64_t a, uint64_t b, unsigned from = 0) noexcept {
  if (a >= b) return true;
  for (unsigned i = from; i < kInFlight; ++i) {
    const InFlight& event = g_flight[i];
    if ((event.generation & 1) == 0 || event.end <= a || event.start >= b) continue;
    return covered_by_events(a, event.start < a ? a : event.start, i + 1) &&
           covered_by_events(event.end > b ? b : event.end, b, i + 1);
  }
  return false;
}

void record_miss(uint64_t a, uint64_t b, unsigned lost, bool vanished, const char* path,
                 umn_process_call after) noexcept {
  if (covered_by_events(a, b)) return;
  unsigned long n = g_miss_count.fetch_add(1, std::memory_order_relaxed);
  if (n >= kMissRecords) return;
  g_misses[n] = {a, b, lost, vanished, after, {}};
  copy_tail(g_misses[n].path, sizeof(g_misses[n].path), path);
}

// One shadow region against the new maps: every part that vanished or lost access.
void check_region(const Region& old, const char* path, unsigned* cursor, unsigned now_count,
                  umn_process_call after) noexcept {
  while (*cursor < now_count && g_now[*cursor].end <= old.start) ++*cursor;
  uint64_t at = old.start;
  for (unsigned j = *cursor; j < now_count && g_now[j].start < old.end; ++j) {
    const Region& cur = g_now[j];
    if (cur.start > at) record_miss(at, cur.start, old.access, true, path, after);
    uint64_t stop = cur.end < old.end ? cur.end : old.end;
    unsigned lost = old.access & ~cur.access;
    if (lost != 0) record_miss(cur.start > at ? cur.start : at, stop, lost, false, path, after);
    at = stop;
  }
  if (at < old.end) record_miss(at, old.end, old.access, true, path, after);
}

void check_locked(umn_process_call after) noexcept {
  unsigned now_count = read_maps(g_now, g_now_paths);
  if (now_count == 0) return;  // /proc unavailable: nothing to compare against
  g_checks++;
  unsigned cursor = 0;
  for (unsigned i = 0; i < g_shadow_count; ++i) check_region(g_shadow[i], g_shadow_paths[i], &cursor, now_count, after);
  std::memcpy(g_shadow, g_now, sizeof(Region) * now_count);
  std::memcpy(g_shadow_paths, g_now_paths, sizeof(g_now_paths[0]) * now_count);
  g_shadow_count = now_count;
  for (InFlight& event : g_flight)
    if ((event.generation & 1) != 0 && event.ended) event.generation++;  // drop: its effect is in S now
}

struct Ticket {
  unsigned slot;
  uint32_t generation;
};

void verify_start(const umn_process_event* event, Ticket* ticket) noexcept {
  ticket->slot = kInFlight;
  if (t_in_verify) {
    g_unverified.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  VerifyLock lock;
  for (unsigned n = 0; n < kInFlight; ++n) {
    unsigned i = (g_flight_hint + n) % kInFlight;
    InFlight& slot = g_flight[i];
    if ((slot.generation & 1) != 0) continue;
    slot.generation++;
    slot.start = event->start;
    slot.end = event->end;
    slot.ended = false;
    slot.call = event->call;
    g_flight_hint = i + 1;
    *ticket = {i, slot.generation};
    return;
  }
  g_unverified.fetch_add(1, std::memory_order_relaxed);
}

void verify_end(const umn_process_event* event, const Ticket* ticket) noexcept {
  if (ticket->slot >= kInFlight || t_in_verify) return;
  VerifyLock lock;
  InFlight& slot = g_flight[ticket->slot];
  if (slot.generation != ticket->generation) return;  // reset by fork in the child
  slot.ended = true;
  check_locked(event->call);
}

// ---- the observer ---------------------------------------------------------------------------------

// After a call that added mappings or access: check (misses since the last check show up now) and
// take the new maps as the shadow, so that later losses of these mappings are seen.
void verify_quiet(const umn_process_event* event) noexcept {
  if (t_in_verify) return;
  VerifyLock lock;
  check_locked(event->call);
}

void observer(void*, const umn_process_event* event, int phase, void* scratch) {
  auto* ticket = static_cast<Ticket*>(scratch);
  static_assert(sizeof(Ticket) <= UMN_PROCESS_SCRATCH_SIZE);
  if (phase == UMN_PROCESS_PHASE_QUIET) {
    if (g_verify && !sys::failed(event->result)) verify_quiet(event);
    return;
  }
  if (phase == UMN_PROCESS_PHASE_END) {
    if (g_verify) verify_end(event, ticket);
    return;
  }
  const uint64_t bytes = event->end - event->start;
  g_count[event->call][event->event].fetch_add(1, std::memory_order_relaxed);
  g_bytes[event->call][event->event].fetch_add(bytes, std::memory_order_relaxed);
  count_site(event->caller, bytes);
  if (g_log) {
    Line line;
    line.str("L ");
    line.dec(static_cast<uint64_t>(sys::getpid()));
    line.str(" ");
    line.str(umn_process_call_name(event->call));
    line.str(" ");
    line.str(umn_notifier_event_name(event->event));
    line.str(" ");
    line.hex(event->start);
    line.str(" ");
    line.hex(event->end);
    line.str(" ");
    line.hex(event->caller);
    line.emit(g_fd);
  }
  if (g_verify) verify_start(event, ticket);
}

void fork_child() {
  // The child counts its own events only; other threads' in-flight records died with them.
  for (auto& row : g_count)
    for (auto& c : row) c.store(0, std::memory_order_relaxed);
  for (auto& row : g_bytes)
    for (auto& c : row) c.store(0, std::memory_order_relaxed);
  for (SiteCounter& site : g_sites) {
    site.caller.store(0, std::memory_order_relaxed);
    site.count.store(0, std::memory_order_relaxed);
    site.bytes.store(0, std::memory_order_relaxed);
  }
  g_miss_count.store(0, std::memory_order_relaxed);
  g_verify_lock.store(false, std::memory_order_relaxed);
  for (InFlight& event : g_flight)
    if ((event.generation & 1) != 0) event.generation++;
}

// ---- the summary at exit ---------------------------------------------------------------------------

void describe_site(uintptr_t caller, char* out, size_t size) {
  Dl_info info{};
  if (caller == 0 || dladdr(reinterpret_cast<void*>(caller), &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(out, size, "?%#lx", static_cast<unsigned long>(caller));
    return;
  }
  const char* base = std::strrchr(info.dli_fname, '/');
  base = base != nullptr ? base + 1 : info.dli_fname;
  if (info.dli_sname != nullptr)
    std::snprintf(out, size, "%s!%s+%#lx", base, info.dli_sname,
                  static_cast<unsigned long>(caller - reinterpret_cast<uintptr_t>(info.dli_saddr)));
  else
    std::snprintf(out, size, "%s+%#lx", base,
                  static_cast<unsigned long>(caller - reinterpret_cast<uintptr_t>(info.dli_fbase)));
}

void put(const char* fmt, auto... args) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf), fmt, args...);
  if (n > 0) sys::write_all(g_fd, buf, static_cast<size_t>(n < static_cast<int>(sizeof(buf)) ? n : sizeof(buf) - 1));
}

void write_summary() {
  const long pid = sys::getpid();
  char exe[256];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  put("P %ld %ld %s\n", pid, static_cast<long>(getppid()), exe);
  put("H %ld %d %u %u %u %u %d\n", pid, info.status, info.sites_patched, info.sites_shared, info.sites_foreign,
      info.sites_unsafe, info.raw_syscall_covered);
  for (unsigned c = 0; c < UMN_CALL_COUNT; ++c)
    for (unsigned e = 0; e < kEvents; ++e)
      if (unsigned long count = g_count[c][e].load(std::memory_order_relaxed); count != 0)
        put("C %ld %s %s %lu %lu\n", pid, umn_process_call_name(static_cast<umn_process_call>(c)),
            umn_notifier_event_name(static_cast<umn_notifier_event>(e)), count,
            g_bytes[c][e].load(std::memory_order_relaxed));
  for (SiteCounter& site : g_sites) {
    uintptr_t caller = site.caller.load(std::memory_order_relaxed);
    if (caller == 0) continue;
    char where[200];
    describe_site(caller, where, sizeof(where));
    put("S %ld %lu %lu %s\n", pid, site.count.load(std::memory_order_relaxed),
        site.bytes.load(std::memory_order_relaxed), where);
  }
  if (!g_verify) return;
  unsigned long misses = g_miss_count.load(std::memory_order_relaxed);
  for (unsigned long i = 0; i < misses && i < kMissRecords; ++i) {
    const Miss& miss = g_misses[i];
    put("M %ld %#lx %#lx %s%s%s %s %s\n", pid, static_cast<unsigned long>(miss.start),
        static_cast<unsigned long>(miss.end), miss.vanished ? "vanished" : "lost-", 
        !miss.vanished && (miss.lost & sys::kMapRead) ? "r" : "", !miss.vanished && (miss.lost & sys::kMapWrite) ? "w" : "",
        miss.after == UMN_CALL_COUNT ? "exit" : umn_process_call_name(miss.after),
        miss.path[0] != '\0' ? miss.path : "[anon]");
  }
  put("V %ld %lu %lu %lu\n", pid, g_checks, misses, g_unverified.load(std::memory_order_relaxed));
}

[[gnu::destructor(102)]] void finish() {
  if (g_fd < 0) return;
  if (g_verify) {
    VerifyLock lock;
    check_locked(UMN_CALL_COUNT);
  }
  write_summary();
}

}  // namespace

void start_from_environment() noexcept {
  const char* file = std::getenv("UMN_TRACE_FILE");
  if (file == nullptr || file[0] == '\0') return;
  if (umn_process_hooks_install() != 0) return;  // disabled (UMN_PROCESS_HOOKS=0) or unsupported
  long fd = sys::open_append(file);
  if (sys::failed(fd)) return;
  g_fd = static_cast<int>(fd);
  const char* log = std::getenv("UMN_TRACE_LOG");
  const char* verify = std::getenv("UMN_TRACE_VERIFY");
  g_log = log != nullptr && log[0] == '1';
  g_verify = verify != nullptr && verify[0] == '1';
  if (g_verify) {
    VerifyLock lock;
    g_shadow_count = read_maps(g_shadow, g_shadow_paths);
  }
  pthread_atfork(nullptr, nullptr, &fork_child);
  umn_process_observer_add_flags(&observer, nullptr, g_verify ? UMN_PROCESS_OBSERVE_QUIET : 0u);
}

}  // namespace umn::trace
