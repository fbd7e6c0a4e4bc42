// trace_record.hpp - the one definition of the `umn trace` record: a shared file that `umn trace`
// (tools/trace) creates and every traced process maps (src/sources/preload/trace.cc). The traced side
// writes what its hooks announced and counted; the tracer reads it while the processes run (the open
// announcements, to match each memory-changing system call it stops) and after they are gone (counts,
// call sites, event log). Nothing is written through a file descriptor, and nothing waits for a
// process's exit: a record survives exec, _exit, abort, SIGKILL and closed descriptors.
//
// Layout: one Region, created zero-filled (a sparse file, so untouched slots cost no memory).
//   - ThreadSlot: per live thread of the traced tree, keyed by kernel thread id (open addressing, linear
//     probe; a freed slot becomes a tombstone). It holds the announcements the thread has open: an
//     event's phase START adds one, its END removes it.
//   - ProcessRecord: per process image (claimed at start and in a fork child), the hook status, event
//     counts per call and kind, the hottest call sites.
//   - LogEntry: with --log, every event, in claim order.
//
// Locking: none; every field written by more than one party is atomic.
//   - ThreadSlot.tid: claimed by the thread itself (CAS 0 or tombstone -> tid), freed by the tracer once
//     that thread is dead (or its process exec'd). Only the owning thread adds or removes its
//     announcements; signal handlers nested on that thread go through the same atomics.
//   - Announcement.seq: 0 = free; the owning thread CASes it from 0 to kAnnouncementBusy, fills it in,
//     stores a fresh sequence number (release), and stores 0 again at END. The tracer reads slots of a thread only
//     while that thread is stopped by ptrace (a stop orders every prior write of the thread before the
//     tracer's reads), and writes consumed only then.
//   - ProcessRecord.ready: written last (release) by the traced process; the tracer reads it (acquire).
// Lifetime: the file lives as long as the `umn trace` run; a traced process maps it at start (and
// closes the descriptor at once) and keeps the mapping until it exits or execs.
// Context: the traced side runs inside the hooks: the helpers here are lock-free and async-signal-safe.
// Memory ordering: as above; sequence numbers only grow (ThreadSlot.issued).
#pragma once

#include <atomic>
#include <cstdint>

#include "umn/process.h"

namespace umn::trace {

inline constexpr uint64_t kMagic = 0x3164726f63657274ull;  // "trecord1"
inline constexpr uint32_t kVersion = 1;
inline constexpr unsigned kEvents = 8;        // enum umn_notifier_event values
inline constexpr unsigned kThreadSlots = 4096;  // threads alive at once in the traced tree
inline constexpr unsigned kOpenPerThread = 16;  // announcements open at once on one thread (nesting)
inline constexpr unsigned kProcessRecords = 4096;
inline constexpr unsigned kSitesPerProcess = 256;
inline constexpr unsigned kLogEntries = 1u << 20;
inline constexpr int32_t kTombstone = -1;

// The environment `umn trace` sets for the traced tree.
inline constexpr const char* kEnvFile = "UMN_TRACE_FILE";  // path of the Region file

// One range a hooked call announced at START, still open (its END has not run).
inline constexpr uint64_t kAnnouncementBusy = ~0ull;  // Announcement.seq while its owner fills it in

struct Announcement {
  std::atomic<uint64_t> seq;  // 0: free; kAnnouncementBusy: being filled in; else a sequence number
  uint64_t start, end;
  uint32_t call;   // enum umn_process_call
  uint32_t event;  // enum umn_notifier_event
};

struct ThreadSlot {
  std::atomic<int32_t> tid;        // 0 free, kTombstone freed, else the owning kernel thread id
  std::atomic<uint32_t> overflow;  // announcements dropped: all kOpenPerThread were open
  std::atomic<uint64_t> issued;    // last sequence number handed out by the owning thread
  std::atomic<uint64_t> consumed;  // tracer: announcements up to this seq were matched to a call
  Announcement open[kOpenPerThread];
};

struct Tally {
  std::atomic<uint64_t> count, bytes;
};

struct Site {
  std::atomic<uint64_t> caller;  // return address into the code that called libc (0: free)
  std::atomic<uint64_t> count, bytes;
};

// ready values
inline constexpr uint32_t kRecordClaimed = 0;  // filling in (or the process died before the hooks were up)
inline constexpr uint32_t kRecordHooked = 1;   // hooks installed and this record's observer registered
inline constexpr uint32_t kRecordUnhooked = 2;  // installation failed: hooks_status says why

struct ProcessRecord {
  std::atomic<int32_t> pid;
  int32_t hooks_status;  // umn_process_hooks_install()'s result
  uint32_t sites_patched, sites_shared, sites_foreign, sites_unsafe;
  uint32_t sites_unknown, sites_undecoded, sites_failed, text_unscanned;  // umn_process_hooks_info
  int32_t raw_syscall_covered;
  std::atomic<uint32_t> ready;  // kRecord*; written last (release)
  Tally calls[UMN_CALL_COUNT][kEvents];
  Site sites[kSitesPerProcess];
  std::atomic<uint64_t> sites_dropped;
};

struct LogEntry {
  std::atomic<uint32_t> written;  // 1 once the fields below are written (release)
  int32_t pid;
  uint32_t call, event;
  uint64_t start, end, caller;
};

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t log;  // 1: fill the event log
  uint64_t region_size;  // sizeof(Region) of the tracer: a preload of another layout refuses the file
  std::atomic<uint32_t> next_record;      // claims of ProcessRecord (may pass kProcessRecords)
  std::atomic<uint32_t> thread_overflow;  // threads that found no free ThreadSlot
  std::atomic<uint64_t> next_log;         // claims of LogEntry (may pass kLogEntries)
};

struct Region {
  Header header;
  ThreadSlot threads[kThreadSlots];
  ProcessRecord records[kProcessRecords];
  LogEntry log[kLogEntries];
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int32_t>::is_always_lock_free,
              "the region is shared between processes: its atomics must not use a lock");

inline unsigned thread_home(int32_t tid) noexcept {
  return static_cast<unsigned>((static_cast<uint64_t>(tid) * 0x9e3779b97f4a7c15ull) >> 40) % kThreadSlots;
}

// The slot of thread tid, or nullptr. Context: the tracer (any time), or thread tid itself.
inline ThreadSlot* find_thread(Region* region, int32_t tid) noexcept {
  for (unsigned probe = 0, i = thread_home(tid); probe < kThreadSlots; ++probe, i = (i + 1) % kThreadSlots) {
    int32_t seen = region->threads[i].tid.load(std::memory_order_acquire);
    if (seen == tid) return &region->threads[i];
    if (seen == 0) return nullptr;
  }
  return nullptr;
}

// The slot of the calling thread tid, claimed if it has none. Return: nullptr when the table is full.
// Context: only thread tid (a thread looks up its own id only, so it finds its slot before any empty
// one, and claims at most one).
inline ThreadSlot* claim_thread(Region* region, int32_t tid) noexcept {
  if (ThreadSlot* mine = find_thread(region, tid)) return mine;
  for (unsigned probe = 0, i = thread_home(tid); probe < kThreadSlots; ++probe, i = (i + 1) % kThreadSlots) {
    int32_t seen = region->threads[i].tid.load(std::memory_order_relaxed);
    if (seen != 0 && seen != kTombstone) continue;
    // Pairs with the acquire load in find_thread: the slot's fields were reset by free_thread first.
    if (region->threads[i].tid.compare_exchange_strong(seen, tid, std::memory_order_acq_rel)) return &region->threads[i];
  }
  region->header.thread_overflow.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

// Frees the slot of a thread that is dead (or whose process exec'd). Context: the tracer.
inline void free_thread(Region* region, int32_t tid) noexcept {
  ThreadSlot* slot = find_thread(region, tid);
  if (slot == nullptr) return;
  for (Announcement& open : slot->open) open.seq.store(0, std::memory_order_relaxed);
  slot->issued.store(0, std::memory_order_relaxed);
  slot->consumed.store(0, std::memory_order_relaxed);
  slot->overflow.store(0, std::memory_order_relaxed);
  // Pairs with the acq_rel CAS in claim_thread.
  slot->tid.store(kTombstone, std::memory_order_release);
}

}  // namespace umn::trace
