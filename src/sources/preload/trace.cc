// trace.cc - the traced side of `umn trace` (tools/trace): an observer of the process hooks that writes
// into the shared record (trace_record.hpp) what the hooks announced and counted. It checks nothing
// itself: `umn trace --verify` stops every memory-changing system call of the traced tree from outside
// (ptrace + seccomp) and matches it against the announcements this observer has open on the calling
// thread (docs/process.md, "umn trace").
//
// Environment (set by `umn trace`): UMN_TRACE_FILE, the path of the record file. The file is mapped
// once and its descriptor closed at once: the process's own descriptors are never touched again, so a
// daemon that closes and reopens its descriptors cannot receive trace output, and nothing is lost when
// the process ends without running destructors (exec, _exit, abort, a signal).
//
// Per event: at START, count it in this process's record (per call and kind, per call site), log it if
// asked, and open an announcement in the calling thread's slot (keyed by the kernel thread id, so a fork
// child, a vfork child or a raw clone never shares its parent's slot); at END, close it.
//
// Locking: none (trace_record.hpp). Context: the observer runs inside the hooks: no malloc, raw
// syscalls only, no stdio, async-signal-safe.
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "sources/preload/trace_record.hpp"
#include "sources/sys/sys.hpp"
#include "umn/process.h"

namespace umn::trace {
namespace {

Region* g_region = nullptr;
// This process's record (nullptr when the table was full). Replaced in a fork child (fork_child).
std::atomic<ProcessRecord*> g_record{nullptr};

struct Ticket {
  ThreadSlot* slot;  // nullptr: no announcement open
  unsigned index;
  uint64_t seq;
};
static_assert(sizeof(Ticket) <= UMN_PROCESS_SCRATCH_SIZE);

void count_site(ProcessRecord* record, uint64_t caller, uint64_t bytes) noexcept {
  size_t home = (caller * 0x9e3779b97f4a7c15ull) >> 56;
  for (unsigned probe = 0; probe < kSitesPerProcess; ++probe) {
    Site& site = record->sites[(home + probe) % kSitesPerProcess];
    uint64_t seen = site.caller.load(std::memory_order_acquire);
    if (seen == 0 && site.caller.compare_exchange_strong(seen, caller, std::memory_order_acq_rel)) seen = caller;
    if (seen != caller) continue;
    site.count.fetch_add(1, std::memory_order_relaxed);
    site.bytes.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  record->sites_dropped.fetch_add(1, std::memory_order_relaxed);
}

void count(const umn_process_event* event) noexcept {
  ProcessRecord* record = g_record.load(std::memory_order_relaxed);
  if (record == nullptr) return;
  const uint64_t bytes = event->end - event->start;
  record->calls[event->call][event->event].count.fetch_add(1, std::memory_order_relaxed);
  record->calls[event->call][event->event].bytes.fetch_add(bytes, std::memory_order_relaxed);
  count_site(record, event->caller, bytes);
}

void log(const umn_process_event* event) noexcept {
  uint64_t n = g_region->header.next_log.fetch_add(1, std::memory_order_relaxed);
  if (n >= kLogEntries) return;  // the tracer reports next_log - kLogEntries events not listed
  LogEntry& entry = g_region->log[n];
  entry.pid = static_cast<int32_t>(sys::getpid());
  entry.call = event->call;
  entry.event = event->event;
  entry.start = event->start;
  entry.end = event->end;
  entry.caller = event->caller;
  entry.written.store(1, std::memory_order_release);  // Pairs with the tracer's acquire load.
}

// Opens an announcement of event on the calling thread. Calls whose events are not a system call of
// this thread are not announcements: fork's PROTECTION_PAGE (fork is not a memory-changing call the
// tracer checks) and a userfaultfd monitor's reports (after the fact, on the monitor thread).
void announce(const umn_process_event* event, Ticket* ticket) noexcept {
  ticket->slot = nullptr;
  if (event->call == UMN_CALL_FORK || event->call == UMN_CALL_UFFD) return;
  ThreadSlot* slot = claim_thread(g_region, static_cast<int32_t>(sys::gettid()));
  if (slot == nullptr) return;
  for (unsigned i = 0; i < kOpenPerThread; ++i) {
    Announcement& open = slot->open[i];
    uint64_t expected = 0;
    // Taken first, then filled: a signal handler interrupting us on this thread takes another entry.
    if (!open.seq.compare_exchange_strong(expected, kAnnouncementBusy, std::memory_order_relaxed)) continue;
    open.start = event->start;
    open.end = event->end;
    open.call = event->call;
    open.event = event->event;
    const uint64_t seq = slot->issued.fetch_add(1, std::memory_order_relaxed) + 1;
    open.seq.store(seq, std::memory_order_release);  // Pairs with the tracer's acquire load.
    *ticket = {slot, i, seq};
    return;
  }
  slot->overflow.fetch_add(1, std::memory_order_relaxed);
}

void close_announcement(const Ticket* ticket) noexcept {
  if (ticket->slot == nullptr) return;
  uint64_t expected = ticket->seq;  // no longer ours if the tracer freed the slot (exec) meanwhile
  ticket->slot->open[ticket->index].seq.compare_exchange_strong(expected, 0, std::memory_order_relaxed);
}

void observer(void*, const umn_process_event* event, int phase, void* scratch) {
  auto* ticket = static_cast<Ticket*>(scratch);
  if (phase == UMN_PROCESS_PHASE_END) {
    close_announcement(ticket);
    return;
  }
  if (phase != UMN_PROCESS_PHASE_START) return;
  count(event);
  if (g_region->header.log != 0) log(event);
  announce(event, ticket);
}

// Claims a record for this process. ready is published by the caller.
ProcessRecord* claim_record() noexcept {
  uint32_t n = g_region->header.next_record.fetch_add(1, std::memory_order_relaxed);
  if (n >= kProcessRecords) return nullptr;  // the tracer reports the process as not verifiable
  ProcessRecord* record = &g_region->records[n];
  record->pid.store(static_cast<int32_t>(sys::getpid()), std::memory_order_relaxed);
  return record;
}

// A fork child keeps the parent's hooks and observer; it counts into a record of its own. Until this
// handler has run (other atfork handlers first), its events count in the parent's record; its
// announcements are keyed by its own thread id from the start.
void fork_child() {
  ProcessRecord* parent = g_record.load(std::memory_order_relaxed);
  ProcessRecord* record = claim_record();
  if (record != nullptr && parent != nullptr) {
    record->hooks_status = parent->hooks_status;
    record->sites_patched = parent->sites_patched;
    record->sites_shared = parent->sites_shared;
    record->sites_foreign = parent->sites_foreign;
    record->sites_unsafe = parent->sites_unsafe;
    record->sites_unknown = parent->sites_unknown;
    record->sites_undecoded = parent->sites_undecoded;
    record->sites_failed = parent->sites_failed;
    record->text_unscanned = parent->text_unscanned;
    record->raw_syscall_covered = parent->raw_syscall_covered;
    record->ready.store(parent->ready.load(std::memory_order_relaxed), std::memory_order_release);
  }
  g_record.store(record, std::memory_order_relaxed);
}

Region* map_region(const char* path) noexcept {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return nullptr;
  void* at = mmap(nullptr, sizeof(Region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (at == MAP_FAILED) return nullptr;
  auto* region = static_cast<Region*>(at);
  const Header& header = region->header;
  if (header.magic == kMagic && header.version == kVersion && header.region_size == sizeof(Region)) return region;
  munmap(at, sizeof(Region));
  return nullptr;
}

}  // namespace

void start_from_environment() noexcept {
  const char* file = std::getenv(kEnvFile);
  if (file == nullptr || file[0] == '\0') return;
  g_region = map_region(file);
  if (g_region == nullptr) return;  // the tracer reports this process as one without a record
  ProcessRecord* record = claim_record();
  g_record.store(record, std::memory_order_relaxed);
  const int status = umn_process_hooks_install();  // 0, or disabled (UMN_PROCESS_HOOKS=0), unsupported...
  if (status == 0) {
    pthread_atfork(nullptr, nullptr, &fork_child);
    umn_process_observer_add(&observer, nullptr);
  }
  if (record == nullptr) return;
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  record->hooks_status = status;
  record->sites_patched = info.sites_patched;
  record->sites_shared = info.sites_shared;
  record->sites_foreign = info.sites_foreign;
  record->sites_unsafe = info.sites_unsafe;
  record->sites_unknown = info.sites_unknown;
  record->sites_undecoded = info.sites_undecoded;
  record->sites_failed = info.sites_failed;
  record->text_unscanned = info.text_unscanned;
  record->raw_syscall_covered = info.raw_syscall_covered;
  // Pairs with the tracer's acquire load: from here on, every hooked call of this image is announced.
  record->ready.store(status == 0 ? kRecordHooked : kRecordUnhooked, std::memory_order_release);
}

}  // namespace umn::trace
