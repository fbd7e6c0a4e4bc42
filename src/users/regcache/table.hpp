// table.hpp - a registration cache's regions and the immutable sorted array its hits search.
//
// Locking
//   Region::refs and Region::state are atomics written lock-free (hits, puts, the notifier); every
//   other Region field is written under the cache lock before the region is published in a Table and
//   is immutable afterwards (start, end), or guarded by the cache lock (registered, live links).
//   A Table and its Leafs are immutable once published: writers build a new Table (sharing the leaves
//   they do not touch) under the cache lock, publish it with a release store, and retire the old Table
//   and the replaced leaves through RCU. The Index is updated in place under the cache lock (see it).
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
#include <cstring>
#include <new>
#include <utility>

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
  umn_regcache_region pub{};                   // first member: a umn_regcache_region* is a Region*
  uint32_t kind = kRegionKind;                 // immutable; see HandleKind
  std::atomic<uint32_t> state{kPending};       // lock-free; see RegionState
  std::atomic<uint64_t> refs{kCachedRef};      // lock-free; see the layout above
  std::atomic<uint64_t> last_release{0};       // relaxed: LRU stamp, written by put, read by eviction
  std::atomic<uint32_t> parked{kNeverParked};  // seq_cst CAS by the first parked hit and by release
  bool registered = false;                     // guarded by the cache lock: reg succeeded
  bool orphan = false;                         // guarded by the cache lock: on the cache's orphan list
  Region* live_prev = nullptr;                 // guarded by the cache lock: list of live regions
  Region* live_next = nullptr;
  Region* orphan_next = nullptr;  // guarded by the cache lock: counted refs gone, holds seen
  char padding[48] = {};          // see above: 128 bytes in all

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
  } while (
      !region->refs.compare_exchange_weak(refs, refs + 1 + kHit, std::memory_order_acquire, std::memory_order_relaxed));
  return true;
}

// A hint from page number to a region over that page, probed by hits before they search the table:
// direct-mapped (every page of regions up to kIndexedPages pages, the first page of larger ones; a
// collision keeps the later region). Unlike the table it is updated in place: writers (under the cache
// lock) set the slots of a region entering the table and clear those of one leaving it, before it is
// retired. A hit validates what it reads (bounds, then state kValid), so a stale slot costs a search,
// never a wrong answer. Successive tables share one index; it is replaced (and the old one retired)
// when the regions outgrow it.
class Index {
 public:
  static constexpr uint64_t kIndexedPages = 8;
  static constexpr unsigned kPageShift = 12;

  // An index for up to `regions` regions before it should grow, or nullptr.
  static Index* create(size_t regions) noexcept {
    unsigned bits = 4;
    while ((size_t{1} << bits) < 2 * regions) ++bits;
    void* memory = ::operator new(sizeof(Index) + (size_t{1} << bits) * sizeof(std::atomic<Region*>), std::nothrow);
    return memory == nullptr ? nullptr : new (memory) Index(bits);
  }
  static void destroy(Index* index) noexcept { ::operator delete(index); }

  [[nodiscard]] size_t capacity() const noexcept { return size_t{1} << (bits_ - 1); }
  // The region in addr's slot of the index whose slots() and bits() are given (a Table keeps a copy of
  // them: one dependent load less on the hit path). Context: read-side section or cache lock.
  // Acquire: pairs with add (the region's fields are seen).
  static Region* probe(const std::atomic<Region*>* slots, size_t bits, uint64_t addr) noexcept {
    return slots[slot_of(addr >> kPageShift, bits)].load(std::memory_order_acquire);
  }
  [[nodiscard]] size_t bits() const noexcept { return bits_; }
  [[nodiscard]] const std::atomic<Region*>* slots() const noexcept {
    return reinterpret_cast<const std::atomic<Region*>*>(this + 1);
  }
  // Context: cache lock.
  void add(Region* region) noexcept {
    for_pages(region, [&](std::atomic<Region*>& slot) { slot.store(region, std::memory_order_release); });
  }
  // Context: cache lock, before the region is retired (the retirement's epoch advance orders it).
  void remove(const Region* region) noexcept {
    for_pages(region, [&](std::atomic<Region*>& slot) {
      if (slot.load(std::memory_order_relaxed) == region) slot.store(nullptr, std::memory_order_relaxed);
    });
  }

 private:
  explicit Index(unsigned bits) noexcept : bits_(bits) {
    for (size_t i = 0; i < (size_t{1} << bits_); ++i) new (&slots()[i]) std::atomic<Region*>(nullptr);
  }
  template <class Fn>
  void for_pages(const Region* region, Fn&& fn) noexcept {
    const uint64_t first = region->start() >> kPageShift, last = (region->end() - 1) >> kPageShift;
    const uint64_t stop = last - first < kIndexedPages ? last : first;
    for (uint64_t page = first; page <= stop; ++page) fn(slots()[slot_of(page, bits_)]);
  }
  static size_t slot_of(uint64_t page, size_t bits) noexcept {
    return static_cast<size_t>((page * 0x9E3779B97F4A7C15ull) >> (64 - bits));
  }
  std::atomic<Region*>* slots() noexcept { return reinterpret_cast<std::atomic<Region*>*>(this + 1); }

  size_t bits_;  // size_t: the slots that follow are 8-byte aligned
};
static_assert(sizeof(Index) % alignof(std::atomic<Region*>) == 0);

// Finds, in ends[0, count) (sorted), the first entry above addr. Branch-free (the hits of a scattered
// workload make every branch of a plain binary search a coin toss): the answer stays in [base, base + n]
// while n halves.
inline size_t first_above(const uint64_t* ends, size_t count, uint64_t addr) noexcept {
  if (count == 0) return 0;
  const uint64_t* base = ends;
  for (size_t n = count; n > 1;) {
    const size_t half = n / 2;
    base = base[half] <= addr ? base + half : base;
    n -= half;
  }
  return static_cast<size_t>(base - ends) + (*base <= addr ? 1 : 0);
}

// Up to kMax consecutive cached regions, sorted by start: their ends (searched: 8 bytes per probe, no
// pointer chasing) then their pointers, allocated for `capacity` of them (a small cache allocates small
// leaves). Immutable once published in a Table.
class Leaf {
 public:
  static constexpr size_t kMax = 64;

  static Leaf* create(size_t capacity) noexcept {
    void* memory = ::operator new(sizeof(Leaf) + capacity * (sizeof(uint64_t) + sizeof(Region*)), std::nothrow);
    return memory == nullptr ? nullptr : new (memory) Leaf(capacity);
  }
  static void destroy(Leaf* leaf) noexcept { ::operator delete(leaf); }

  [[nodiscard]] size_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] const uint64_t* ends() const noexcept { return reinterpret_cast<const uint64_t*>(this + 1); }
  [[nodiscard]] Region* at(size_t i) const noexcept { return reinterpret_cast<Region* const*>(ends() + capacity_)[i]; }
  // Appends (in start order, within capacity). Only before publication.
  void append(Region* region) noexcept {
    auto* ends = reinterpret_cast<uint64_t*>(this + 1);
    ends[count_] = region->end();
    reinterpret_cast<Region**>(ends + capacity_)[count_++] = region;
    bytes_ += region->size();
  }

 private:
  explicit Leaf(size_t capacity) noexcept : capacity_(capacity) {}
  size_t capacity_;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};
static_assert(sizeof(Leaf) % alignof(uint64_t) == 0);  // the arrays that follow are aligned

// The cached regions, sorted by start and pairwise disjoint, in two levels: an array of leaves (each up
// to Leaf::kMax regions) with each leaf's last end. A miss copies this array (8 + 8 bytes per leaf) and
// rebuilds the leaves it touches, not every region. A lookup probes the index (one load) and falls back
// to two binary searches (the leaves' last ends, then the leaf's ends).
class Table {
 public:
  static Table* create(size_t leaves, Index* index) noexcept {
    void* memory = ::operator new(sizeof(Table) + leaves * (sizeof(uint64_t) + sizeof(Leaf*)), std::nothrow);
    return memory == nullptr ? nullptr : new (memory) Table(leaves, index);
  }
  static void destroy(Table* table) noexcept { ::operator delete(table); }

  [[nodiscard]] size_t count() const noexcept { return count_; }
  [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] Index* index() const noexcept { return index_; }
  [[nodiscard]] size_t leaf_count() const noexcept { return leaf_count_; }
  [[nodiscard]] Leaf* leaf(size_t i) const noexcept { return leaves()[i]; }
  // Appends a non-empty leaf (in order, within capacity). Only before publication.
  void append(Leaf* leaf) noexcept {
    last_ends()[leaf_count_] = leaf->ends()[leaf->count() - 1];
    leaves()[leaf_count_++] = leaf;
  }
  // Appends leaves [from, to) of `other`: a copy of its arrays, no leaf is read. Only before publication.
  void append(const Table& other, size_t from, size_t to) noexcept {
    std::memcpy(last_ends() + leaf_count_, other.last_ends() + from, (to - from) * sizeof(uint64_t));
    std::memcpy(leaves() + leaf_count_, other.leaves() + from, (to - from) * sizeof(Leaf*));
    leaf_count_ += to - from;
  }
  // The number of regions in the appended leaves and their bytes. Only before publication.
  void set_totals(size_t count, uint64_t bytes) noexcept {
    count_ = count;
    bytes_ = bytes;
  }
  // The first leaf whose last region ends above addr (leaf_count() if none).
  [[nodiscard]] size_t leaf_after(uint64_t addr) const noexcept { return first_above(last_ends(), leaf_count_, addr); }

  // The region covering [start, end), or nullptr. Context: read-side section or cache lock.
  [[nodiscard]] Region* find_covering(uint64_t start, uint64_t end) const noexcept {
    Region* candidate = Index::probe(index_slots_, index_bits_, start);
    if (candidate != nullptr && candidate->start() <= start && end <= candidate->end()) return candidate;
    const size_t l = leaf_after(start);
    if (l == leaf_count_) return nullptr;
    const Leaf* leaf = leaves()[l];
    const size_t i = first_above(leaf->ends(), leaf->count(), start);  // < count: the leaf ends above start
    if (end > leaf->ends()[i]) return nullptr;
    Region* region = leaf->at(i);
    return region->start() <= start ? region : nullptr;
  }

  // Calls fn(region) for each region overlapping [start, end), in order.
  template <class Fn>
  void for_each_overlapping(uint64_t start, uint64_t end, Fn&& fn) const noexcept {
    for (size_t l = leaf_after(start); l < leaf_count_; ++l) {
      const Leaf* leaf = leaves()[l];
      for (size_t i = first_above(leaf->ends(), leaf->count(), start); i < leaf->count(); ++i) {
        if (leaf->at(i)->start() >= end) return;
        fn(leaf->at(i));
      }
    }
  }

  // Calls fn(region) for every region, in order.
  template <class Fn>
  void for_each(Fn&& fn) const noexcept {
    for (size_t l = 0; l < leaf_count_; ++l)
      for (size_t i = 0; i < leaves()[l]->count(); ++i) fn(leaves()[l]->at(i));
  }

 private:
  Table(size_t capacity, Index* index) noexcept
      : capacity_(capacity), index_(index), index_slots_(std::as_const(*index).slots()), index_bits_(index->bits()) {}
  uint64_t* last_ends() noexcept { return reinterpret_cast<uint64_t*>(this + 1); }
  [[nodiscard]] const uint64_t* last_ends() const noexcept { return reinterpret_cast<const uint64_t*>(this + 1); }
  Leaf** leaves() noexcept { return reinterpret_cast<Leaf**>(last_ends() + capacity_); }
  [[nodiscard]] Leaf* const* leaves() const noexcept { return reinterpret_cast<Leaf* const*>(last_ends() + capacity_); }

  size_t capacity_;
  Index* index_;
  const std::atomic<Region*>* index_slots_;  // index_'s, copied: see Index::probe
  size_t index_bits_;
  size_t leaf_count_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};
static_assert(sizeof(Table) % alignof(uint64_t) == 0);  // the arrays that follow are aligned

}  // namespace umn::detail::regcache
