// table.hpp - a registration cache's regions and the immutable sorted array its hits search.
//
// Locking
//   Region::refs and Region::state are atomics written lock-free (hits, puts, the notifier); every
//   other Region field is written under the cache lock before the region is published in a Table and
//   is immutable afterwards (start, end), or guarded by the cache lock (registered, live links).
//   A Table is immutable once published: writers build a new one under the cache lock, publish it with
//   a release store, and retire the old one through RCU.
// Lifetime
//   A region lives while it has references: one per holder (get .. put) plus kCachedRef while it is in
//   the published table. The reference that brings refs to 0 deregisters it (under the cache lock) and
//   retires its memory through RCU, so a reader that found it in an old table can still read it.
// Context: everything here runs in cache calls or in the notifier (find/for_each_overlapping only).
// Memory ordering
//   Region::state: the acceptance of a miss (kPending -> kValid, release) pairs with the acquire load of
//   a hit, so a hit sees what reg wrote. The notifier's exchange to kInvalid is acq_rel.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "umn/regcache.h"

namespace umn::detail::regcache {

enum RegionState : uint32_t {
  kPending = 1,  // published by a miss, reg running: no hit returns it; the notifier may invalidate it
  kValid,        // accepted: hits return it
  kInvalid,      // an invalidation began over it (set by the notifier only): unreachable forever
  kDropped,      // left the cache without an invalidation (merged, evicted, reg failed, destroy)
};

// Region::refs layout: holders' references, the cache's own reference, and the hit count (counted in
// the same atomic operation that takes the hit's reference, so a hit writes one word).
inline constexpr uint64_t kUserRefMask = (uint64_t{1} << 24) - 1;
inline constexpr uint64_t kCachedRef = uint64_t{1} << 24;
inline constexpr uint64_t kRefMask = kUserRefMask | kCachedRef;
inline constexpr unsigned kHitShift = 25;
inline constexpr uint64_t kHit = uint64_t{1} << kHitShift;

struct Region {
  umn_regcache_region pub{};  // first member: a umn_regcache_region* is a Region*
  std::atomic<uint64_t> refs{kCachedRef};        // lock-free; see the layout above
  std::atomic<uint32_t> state{kPending};         // lock-free; see RegionState
  std::atomic<uint64_t> last_release{0};         // relaxed: LRU stamp, written by put, read by eviction
  bool registered = false;                       // guarded by the cache lock: reg succeeded
  Region* live_prev = nullptr;                   // guarded by the cache lock: list of live regions
  Region* live_next = nullptr;

  [[nodiscard]] uint64_t start() const noexcept { return pub.start; }
  [[nodiscard]] uint64_t end() const noexcept { return pub.end; }
  [[nodiscard]] uint64_t size() const noexcept { return pub.end - pub.start; }
  static Region* of(umn_regcache_region* region) noexcept { return reinterpret_cast<Region*>(region); }
};

// Takes a hit's reference unless the region already lost its last one. Return: taken.
inline bool try_get_hit(Region* region) noexcept {
  uint64_t refs = region->refs.load(std::memory_order_relaxed);
  do {
    if ((refs & kRefMask) == 0) return false;
    // Pairs with the release CAS in put: a hit after a put sees what the putter wrote.
  } while (!region->refs.compare_exchange_weak(refs, refs + 1 + kHit, std::memory_order_acquire,
                                               std::memory_order_relaxed));
  return true;
}

// The cached regions, sorted by start and pairwise disjoint.
class Table {
 public:
  static Table* create(size_t capacity) noexcept {
    void* memory = ::operator new(sizeof(Table) + capacity * sizeof(Region*), std::nothrow);
    return memory == nullptr ? nullptr : new (memory) Table();
  }
  static void destroy(Table* table) noexcept { ::operator delete(table); }

  [[nodiscard]] size_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] Region* at(size_t i) const noexcept { return slots()[i]; }
  // Appends (the caller appends in start order). Only before publication.
  void append(Region* region) noexcept {
    slots()[count_++] = region;
    bytes_ += region->size();
  }

  // The region covering [start, end), or nullptr. Context: RCU read side or cache lock.
  [[nodiscard]] Region* find_covering(uint64_t start, uint64_t end) const noexcept {
    size_t i = first_ending_after(start);
    if (i == count_) return nullptr;
    Region* region = slots()[i];
    return region->start() <= start && end <= region->end() ? region : nullptr;
  }

  // Calls fn(region) for each region overlapping [start, end), in order.
  template <class Fn>
  void for_each_overlapping(uint64_t start, uint64_t end, Fn&& fn) const noexcept {
    for (size_t i = first_ending_after(start); i < count_ && slots()[i]->start() < end; ++i) fn(slots()[i]);
  }

 private:
  Table() = default;
  Region** slots() noexcept { return reinterpret_cast<Region**>(this + 1); }
  [[nodiscard]] Region* const* slots() const noexcept { return reinterpret_cast<Region* const*>(this + 1); }

  // The first region whose end is above addr (ends are sorted too: the regions are disjoint).
  [[nodiscard]] size_t first_ending_after(uint64_t addr) const noexcept {
    size_t low = 0, high = count_;
    while (low < high) {
      size_t mid = (low + high) / 2;
      if (slots()[mid]->end() <= addr) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    return low;
  }

  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace umn::detail::regcache
