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

// The fields a hit touches come first (48 bytes) and the object is 128 bytes: with malloc's 16-byte
// alignment and header, the hot bytes of two regions never share a cache line, so threads hitting
// different regions write different lines (alignas(64) would do it too, but costs an aligned
// allocation on every miss).
// What a get returns: a Region (the registered region itself, held through Region::refs) or a Hold
// (a per-thread parked reference to one, hold.hpp). Both start with the public fields then `kind`, so
// put can tell them apart.
enum HandleKind : uint32_t { kRegionKind = 0x52454731, kHoldKind = 0x484f4c44 };

// Region::parked: whether a hit ever parked a reference to the region in a hold (hold.hpp). A hit moves
// it kNeverParked -> kParked (one CAS per region, its first parked hit); when its last counted
// reference goes the cache moves it kNeverParked -> kClosed (then no hold can exist: it is freed at
// once) or, finding kParked, scans the holds (with the asymmetric fence) before freeing it.
enum ParkedState : uint32_t { kNeverParked = 0, kParked, kClosed };

struct Region {
  umn_regcache_region pub{};  // first member: a umn_regcache_region* is a Region*
  uint32_t kind = kRegionKind;                   // immutable; see HandleKind
  std::atomic<uint32_t> state{kPending};         // lock-free; see RegionState
  std::atomic<uint64_t> refs{kCachedRef};        // lock-free; see the layout above
  std::atomic<uint64_t> last_release{0};         // relaxed: LRU stamp, written by put, read by eviction
  std::atomic<uint32_t> parked{kNeverParked};    // seq_cst CAS by the first parked hit and by release
  bool registered = false;                       // guarded by the cache lock: reg succeeded
  bool orphan = false;                           // guarded by the cache lock: on the cache's orphan list
  Region* live_prev = nullptr;                   // guarded by the cache lock: list of live regions
  Region* live_next = nullptr;
  Region* orphan_next = nullptr;                 // guarded by the cache lock: counted refs gone, holds seen
  char padding[48] = {};                         // see above: 128 bytes in all

  [[nodiscard]] uint64_t start() const noexcept { return pub.start; }
  [[nodiscard]] uint64_t end() const noexcept { return pub.end; }
  [[nodiscard]] uint64_t size() const noexcept { return pub.end - pub.start; }
  static Region* of(umn_regcache_region* region) noexcept { return reinterpret_cast<Region*>(region); }
};
static_assert(sizeof(Region) == 128 && offsetof(Region, last_release) + 8 <= 48);
static_assert(offsetof(Region, kind) == sizeof(umn_regcache_region));

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

// The cached regions, sorted by start and pairwise disjoint. Layout: the header, then the regions'
// ends (searched: 8 bytes per probe, no pointer chasing), then the region pointers, then a
// direct-mapped index from page number to a region over that page (every page of regions up to
// kIndexedPages pages, the first page of larger ones; a collision keeps the later region). A lookup
// tries the index first (one load) and falls back to the binary search.
class Table {
 public:
  static constexpr uint64_t kIndexedPages = 8;
  static constexpr unsigned kPageShift = 12;

  static Table* create(size_t capacity) noexcept {
    unsigned bits = 4;
    while ((size_t{1} << bits) < 2 * capacity) ++bits;
    const size_t bytes = sizeof(Table) + capacity * (sizeof(uint64_t) + sizeof(Region*)) +
                         (size_t{1} << bits) * sizeof(Region*);
    void* memory = ::operator new(bytes, std::nothrow);
    return memory == nullptr ? nullptr : new (memory) Table(capacity, bits);
  }
  static void destroy(Table* table) noexcept { ::operator delete(table); }

  [[nodiscard]] size_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] Region* at(size_t i) const noexcept { return regions()[i]; }
  // Appends (the caller appends in start order, within capacity). Only before publication.
  void append(Region* region) noexcept {
    ends()[count_] = region->end();
    regions()[count_++] = region;
    bytes_ += region->size();
    const uint64_t first = region->start() >> kPageShift, last = (region->end() - 1) >> kPageShift;
    const uint64_t stop = last - first < kIndexedPages ? last : first;
    for (uint64_t page = first; page <= stop; ++page) index()[slot_of(page)] = region;
  }

  // The region covering [start, end), or nullptr. Context: read-side section or cache lock.
  [[nodiscard]] Region* find_covering(uint64_t start, uint64_t end) const noexcept {
    Region* candidate = index()[slot_of(start >> kPageShift)];
    if (candidate != nullptr && candidate->start() <= start && end <= candidate->end()) return candidate;
    size_t i = first_ending_after(start);
    if (i == count_ || end > ends()[i]) return nullptr;
    Region* region = regions()[i];
    return region->start() <= start ? region : nullptr;
  }

  // Calls fn(region) for each region overlapping [start, end), in order.
  template <class Fn>
  void for_each_overlapping(uint64_t start, uint64_t end, Fn&& fn) const noexcept {
    for (size_t i = first_ending_after(start); i < count_ && regions()[i]->start() < end; ++i) fn(regions()[i]);
  }

 private:
  Table(size_t capacity, unsigned index_bits) noexcept : capacity_(capacity), index_bits_(index_bits) {
    for (size_t i = 0; i < (size_t{1} << index_bits_); ++i) index()[i] = nullptr;
  }
  [[nodiscard]] size_t slot_of(uint64_t page) const noexcept {
    return static_cast<size_t>((page * 0x9E3779B97F4A7C15ull) >> (64 - index_bits_));
  }
  Region** index() noexcept { return regions() + capacity_; }
  [[nodiscard]] Region* const* index() const noexcept { return regions() + capacity_; }
  uint64_t* ends() noexcept { return reinterpret_cast<uint64_t*>(this + 1); }
  [[nodiscard]] const uint64_t* ends() const noexcept { return reinterpret_cast<const uint64_t*>(this + 1); }
  Region** regions() noexcept { return reinterpret_cast<Region**>(ends() + capacity_); }
  [[nodiscard]] Region* const* regions() const noexcept { return reinterpret_cast<Region* const*>(ends() + capacity_); }

  // The first region whose end is above addr (ends are sorted too: the regions are disjoint).
  // Branch-free (the hits of a scattered workload make every branch of a plain binary search a coin
  // toss): the answer stays in [base, base + n] while n halves.
  [[nodiscard]] size_t first_ending_after(uint64_t addr) const noexcept {
    const uint64_t* first = ends();
    if (count_ == 0) return 0;
    const uint64_t* base = first;
    for (size_t n = count_; n > 1;) {
      const size_t half = n / 2;
      base = base[half] <= addr ? base + half : base;
      n -= half;
    }
    return static_cast<size_t>(base - first) + (*base <= addr ? 1 : 0);
  }

  size_t capacity_;
  unsigned index_bits_;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace umn::detail::regcache
