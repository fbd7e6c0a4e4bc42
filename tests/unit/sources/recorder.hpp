// recorder.hpp - test doubles for the process hooks: an interval notifier that records every
// invalidation of its range (without allocating) and reads the first watched byte while the memory is
// still there, and page-granular mappings filled with a pattern.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "umn/umn.h"

namespace umn::test {

constexpr size_t kPage = 4096;
constexpr unsigned char kPattern = 0xa5;

struct Record {
  umn_notifier_event event;
  uint64_t start, end;
  unsigned char first;  // the first watched byte of the range, read inside the callback
};

struct Recorder {
  umn_interval_notifier notifier{};  // first member: the callback casts back
  uint64_t start = 0, length = 0;
  bool read_memory = true;
  void (*extra)(Recorder*) = nullptr;  // optional action inside the callback
  std::atomic<int> next{0};   // records claimed
  std::atomic<int> count{0};  // records written: published after the write (callbacks may run on
                              // another thread, e.g. the uffd monitor's)
  Record records[64];

  static bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long seq) {
    auto* self = reinterpret_cast<Recorder*>(sub);
    int i = self->next.fetch_add(1);
    if (i < 64) {
      uint64_t at = range->start > self->start ? range->start : self->start;
      unsigned char first = 0;
      if (self->read_memory && range->event != UMN_NOTIFY_RELEASE) first = *reinterpret_cast<volatile unsigned char*>(at);
      self->records[i] = {range->event, range->start, range->end, first};
    }
    if (self->extra != nullptr) self->extra(self);
    umn_interval_set_seq(sub, seq);
    self->count.fetch_add(1, std::memory_order_release);  // pairs with the loads in calls()/wait_for
    return true;
  }
  static constexpr umn_interval_notifier_ops kOps = {&invalidate, nullptr, nullptr};

  int watch(const void* addr, size_t len) {
    start = reinterpret_cast<uint64_t>(addr);
    length = len;
    int err = umn_interval_notifier_insert(&notifier, umn_mm_process(), start, len, &kOps);
    // As a driver's fault path would: an insert racing another thread's invalidation is deferred until
    // that invalidation ends, and read_begin waits for it (umn.h), so the notifier is in the tree after.
    if (err == 0) (void)umn_interval_read_begin(&notifier);
    return err;
  }
  void unwatch() {
    if (length != 0) umn_interval_notifier_remove(&notifier);
    length = 0;
  }
  ~Recorder() { unwatch(); }
  int calls() const { return count.load(); }
};

// Record i of rec is `event` over [start, end), and (when the recorder reads memory) its callback still
// read the old contents: the event came before the memory went.
inline ::testing::AssertionResult event_is(const Recorder& rec, int i, umn_notifier_event event, uint64_t start,
                                           uint64_t end) {
  const Record& r = rec.records[i];
  if (r.event != event || r.start != start || r.end != end)
    return ::testing::AssertionFailure() << "record " << i << " is event " << r.event << " [0x" << std::hex
                                         << r.start << ", 0x" << r.end << "), expected event " << std::dec
                                         << event << " [0x" << std::hex << start << ", 0x" << end << ")";
  if (rec.read_memory && event != UMN_NOTIFY_RELEASE && r.first != kPattern)
    return ::testing::AssertionFailure() << "record " << i << ": the callback read 0x" << std::hex
                                         << unsigned{r.first} << ", not the old contents";
  return ::testing::AssertionSuccess();
}

// rec saw exactly one invalidation, and it is `event` over [start, end) before the memory went.
inline ::testing::AssertionResult one_event(const Recorder& rec, umn_notifier_event event, uint64_t start,
                                            uint64_t end) {
  if (rec.calls() != 1) return ::testing::AssertionFailure() << rec.calls() << " invalidations, expected 1";
  return event_is(rec, 0, event, start, end);
}

// n pages of private anonymous read/write memory filled with kPattern.
inline unsigned char* map_pages(size_t n, int flags = MAP_PRIVATE | MAP_ANONYMOUS) {
  void* p = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  std::memset(p, kPattern, n * kPage);
  return static_cast<unsigned char*>(p);
}

inline uint64_t u(const void* p) { return reinterpret_cast<uint64_t>(p); }

}  // namespace umn::test
