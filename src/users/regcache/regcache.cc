// regcache.cc - the registration cache (contract: include/umn/regcache.h; guide: docs/regcache.md).
//
// Algorithm
//   Lookup. The cached regions form an immutable two-level sorted array of disjoint intervals
//   (table.hpp: leaves of up to 64 regions), published through an atomic pointer and read under RCU,
//   with a page index in front, updated in place. A hit is an index probe (or two binary searches), a
//   state check, a reference parked or taken, and a second state check. A miss rebuilds only the leaves
//   it touches and copies the array of leaves (16 bytes per leaf); a purge rebuilds everything.
//   Notification. Interval notifiers are inserted per 1 GiB-aligned chunk of address space that holds
//   cached regions, not per region: a miss inserts one only the first time a chunk is used (chunks are
//   dropped by flush when empty). An insert on umn_mm_process() holds the thread's signals back
//   (two rt_sigprocmask calls, ~2 us here, src/core/subscriptions.hpp) so a munmapping signal handler
//   never runs inside the address space's lock; with chunks a cache miss does not pay that. The chunk's
//   callback finds the overlapping regions in the current table and marks each kInvalid with one
//   atomic exchange; it takes no lock, so it may run in a signal handler interrupting a cache call.
//   Misses (under the cache lock), the collision-retry protocol:
//     1. Purge: regions marked invalid leave the table (their dereg follows at their last reference).
//     2. Union with the overlapping valid regions; insert the chunks' notifiers if missing.
//     3. Publish the region kPending in a new table, then the handshake RMW, then read_begin on each chunk.
//     4. reg, then accept with CAS kPending -> kValid; if the notifier marked it kInvalid meanwhile,
//        dereg and retry (at most UMN_REGCACHE_MAX_RETRIES times, then -EBUSY).
//   Why no invalidation is missed: an invalidation whose callback walks the table after step 3's
//   publication finds the pending region and marks it; one whose callback walked an older table has
//   already called set_seq(cur_seq) on the chunk. An acq_rel read-modify-write of one cache-wide word
//   (`handshake`) by the callback between its set_seq and its table load, and by the miss between
//   publication and read_begin, orders the two (the RMWs are totally ordered and the later one
//   synchronizes with the earlier; a fence would do, but ThreadSanitizer cannot check fences): either
//   the callback sees the region, or read_begin sees the chunk's odd seq and waits
//   for that invalidation to end, after which reg registers the memory as it is then. An invalidation
//   that began before the chunk was inserted is handled by the core (insert then read_begin waits).
//   Locking: the cache's Mutex (base/lock.hpp) guards the fields marked UMN_GUARDED_BY(lock); every
//   *_locked function requires it (checked by clang's thread-safety analysis in build/tsa).
//   Deferred work. The notifier only marks regions and sets work_pending. The next get, put or flush
//   (get/put: if the lock is free) purges the table; dereg runs when the region's last reference goes,
//   always under the cache lock, never in the notifier.
//   Reclamation. Old tables, leaves and indexes and dead regions are retired in batches of kRetireBatch: a batch waits
//   until no hit can reach it (epoch.hpp: one membarrier per attempt, never waiting), then is freed by one liburcu
//   callback (the notifier reads under liburcu-bp). A miss neither waits nor wakes liburcu's thread each time.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/check.hpp"
#include "base/lock.hpp"
#include "core/rcu.hpp"
#include "umn/regcache.h"
#include "users/regcache/epoch.hpp"
#include "users/regcache/table.hpp"

namespace umn::detail::regcache {

// One interval notifier over a 1 GiB-aligned chunk of address space.
struct Chunk {
  umn_interval_notifier notifier{};  // first member: a notifier* is a Chunk*
  umn_regcache* cache = nullptr;
  uint64_t start = 0, end = 0;
};

inline constexpr unsigned kChunkShift = 30;
inline constexpr size_t kRetireBatch = 256;  // a miss retires two objects (a table and a leaf)

// An object whose memory RCU readers may still touch: freed after a grace period.
struct Retired {
  void* object;
  void (*free)(void*) noexcept;
};

// Retired objects wait here until no hit can reach them (epoch.hpp), then for a liburcu grace period
// (the notifier reads under liburcu-bp, which is safe in a signal handler), then are freed.
struct Batch {
  uintptr_t head[rcu::kHeadWords];  // first member: the rcu_head
  uint64_t tag = 0;                 // epoch::retire() after the objects were unlinked
  std::vector<Retired> items;
};

}  // namespace umn::detail::regcache

struct umn_regcache {
  umn_mm* mm = nullptr;
  umn_regcache_ops ops{};
  void* ctx = nullptr;
  size_t max_regions = 0;
  uint64_t max_bytes = 0;
  uint64_t align_mask = 0;

  umn::detail::Mutex lock;
  // Written under lock (release), read by hits and the notifier under RCU (acquire).
  std::atomic<umn::detail::regcache::Table*> table{nullptr};
  // Set (release) by the notifier after marking regions; exchanged (acq_rel) by purge before its scan.
  std::atomic<bool> work_pending{false};
  std::atomic<bool> released{false};  // the notifier saw RELEASE; read by misses
  // Written under lock; read (relaxed) by put as the LRU stamp.
  std::atomic<uint64_t> clock{0};
  std::atomic<uint64_t> invalidations{0};  // relaxed: the notifier counts
  // RMW'd (acq_rel) by the notifier between set_seq and its table load, and by a miss between
  // publication and read_begin: the RMWs are totally ordered, so one side synchronizes with the other.
  std::atomic<uint64_t> handshake{0};
  std::vector<umn::detail::regcache::Chunk*> chunks UMN_GUARDED_BY(lock);  // sorted by start
  // Reused by every table change (splice_locked, rebuild_locked): a miss allocates no vector.
  std::vector<umn::detail::regcache::Region*> kept UMN_GUARDED_BY(lock), removed UMN_GUARDED_BY(lock);
  std::vector<umn::detail::regcache::Leaf*> fresh_leaves UMN_GUARDED_BY(lock);
  std::vector<umn::detail::regcache::Retired> retired UMN_GUARDED_BY(lock);
  std::vector<umn::detail::regcache::Batch*> waiting UMN_GUARDED_BY(lock);  // see reclaim_locked
  umn::detail::regcache::Region* live UMN_GUARDED_BY(lock) = nullptr;       // every region not yet freed
  size_t live_count UMN_GUARDED_BY(lock) = 0;
  // Regions whose counted references are gone but which a hold may still park (release_region_locked).
  umn::detail::regcache::Region* orphans UMN_GUARDED_BY(lock) = nullptr;
  uint64_t id = 0;  // immutable: this cache's key in the per-thread hit counters (epoch::HitCount)
  // Puts that let go of a hold while an invalidation began (put_hold): each keeps the cache's memory
  // until it has taken the lock. Incremented (relaxed) inside a read-side section, so free_cache, which
  // drains the readers first, sees it; decremented under the lock.
  std::atomic<uint64_t> pins{0};
  bool destroyed UMN_GUARDED_BY(lock) = false;
  bool claimed UMN_GUARDED_BY(lock) = false;    // someone is freeing the destroyed cache's remains
  bool abandoned UMN_GUARDED_BY(lock) = false;  // ...and left that to the last pin
  uint64_t hits_retired UMN_GUARDED_BY(lock) = 0;
  uint64_t misses UMN_GUARDED_BY(lock) = 0;
  uint64_t retries UMN_GUARDED_BY(lock) = 0;
  uint64_t evictions UMN_GUARDED_BY(lock) = 0;
};

namespace umn::detail::regcache {
namespace {

using Cache = umn_regcache;

// ---- reclamation ----------------------------------------------------------------------------------

void free_batch(rcu_head* head) {
  rcu::callback_entered();
  auto* batch = reinterpret_cast<Batch*>(head);
  for (const Retired& item : batch->items) item.free(item.object);
  delete batch;
  rcu::callback_exited();
}

// Hands the batches no hit can reach any more to liburcu.
void reclaim_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  if (rc->waiting.empty()) return;
  const uint64_t oldest = epoch::oldest_active();
  std::erase_if(rc->waiting, [&](Batch* batch) {
    if (batch->tag >= oldest) return false;
    rcu::call(reinterpret_cast<rcu_head*>(batch->head), &free_batch);
    return true;
  });
}

// Out of memory for the bookkeeping: wait for the readers instead.
void free_now(Cache* rc, std::vector<Retired>& items) noexcept {
  const uint64_t tag = epoch::retire();
  while (epoch::oldest_active() <= tag) sched_yield();
  rcu::synchronize();
  for (const Retired& item : items) item.free(item.object);
  items.clear();
  (void)rc;
}

void flush_retired_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  if (!rc->retired.empty()) {
    auto* batch = new (std::nothrow) Batch;
    try {
      if (batch == nullptr) throw std::bad_alloc();
      rc->waiting.reserve(rc->waiting.size() + 1);
      batch->items.swap(rc->retired);
      batch->tag = epoch::retire();
      rc->waiting.push_back(batch);
    } catch (...) {
      delete batch;
      free_now(rc, rc->retired);
    }
  }
  reclaim_locked(rc);
}

// Everything retired is handed to liburcu (destroy). Readers never wait for the lock inside a
// section, so this ends.
void drain_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  flush_retired_locked(rc);
  while (!rc->waiting.empty()) {
    sched_yield();
    reclaim_locked(rc);
  }
}

void retire_locked(Cache* rc, void* object, void (*free)(void*) noexcept) noexcept UMN_REQUIRES(rc->lock) {
  try {
    rc->retired.push_back({object, free});
  } catch (...) {
    std::vector<Retired> one{{object, free}};
    free_now(rc, one);
    return;
  }
  if (rc->retired.size() >= kRetireBatch) flush_retired_locked(rc);
}

void free_table(void* table) noexcept { Table::destroy(static_cast<Table*>(table)); }
void free_leaf(void* leaf) noexcept { Leaf::destroy(static_cast<Leaf*>(leaf)); }
void free_index(void* index) noexcept { Index::destroy(static_cast<Index*>(index)); }
void free_region(void* region) noexcept { delete static_cast<Region*>(region); }

// ---- regions --------------------------------------------------------------------------------------

void link_live_locked(Cache* rc, Region* region) noexcept UMN_REQUIRES(rc->lock) {
  region->live_next = rc->live;
  if (rc->live != nullptr) rc->live->live_prev = region;
  rc->live = region;
  rc->live_count++;
}

void unlink_live_locked(Cache* rc, Region* region) noexcept UMN_REQUIRES(rc->lock) {
  if (region->live_prev != nullptr) region->live_prev->live_next = region->live_next;
  if (region->live_next != nullptr) region->live_next->live_prev = region->live_prev;
  if (rc->live == region) rc->live = region->live_next;
  rc->live_count--;
}

// The last reference went: dereg, fold the hit count, retire the memory.
void free_region_locked(Cache* rc, Region* region) noexcept UMN_REQUIRES(rc->lock) {
  if (region->registered) rc->ops.dereg(rc->ctx, &region->pub);
  rc->hits_retired += region->refs.load(std::memory_order_relaxed) >> kHitShift;
  unlink_live_locked(rc, region);
  retire_locked(rc, region, &free_region);
}

// ---- holds (parked references, epoch.hpp) ---------------------------------------------------------

// Whether any thread's hold parks `region`. Context: after epoch::fence(), under the cache lock.
bool parked_somewhere(const Region* region) noexcept {
  for (epoch::Reader* reader = epoch::first_reader(); reader != nullptr; reader = reader->next) {
    for (const epoch::Hold& hold : reader->holds) {
      // Acquire: pairs with the release store of put_hold (the holder's accesses happen-before dereg).
      if (hold.region.load(std::memory_order_acquire) == region) return true;
    }
  }
  return false;
}

// Frees the orphans no hold parks any more: one fence for all of them.
void process_orphans_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  if (rc->orphans == nullptr) return;
  // Every hold published by a hit whose state check saw the region valid is visible after it (the hit
  // stores its hold, then loads the state; the state left kValid before the counted references went).
  epoch::fence();
  Region** link = &rc->orphans;
  while (Region* region = *link) {
    if (parked_somewhere(region)) {
      link = &region->orphan_next;
      continue;
    }
    *link = region->orphan_next;
    region->orphan = false;
    free_region_locked(rc, region);
  }
}

// The counted references of `region` are gone (it is out of the table, not kValid): free it at once if
// no hit ever parked it (and close it to parking), else queue it for process_orphans_locked.
void release_region_locked(Cache* rc, Region* region) noexcept UMN_REQUIRES(rc->lock) {
  uint32_t never = kNeverParked;
  // seq_cst: ordered with the CAS of park() on the same word; either that hit sees kClosed or we see kParked.
  if (region->parked.compare_exchange_strong(never, kClosed, std::memory_order_seq_cst)) {
    free_region_locked(rc, region);
    return;
  }
  region->orphan = true;
  region->orphan_next = rc->orphans;
  rc->orphans = region;
}

// Drops `amount` references (kCachedRef, or 1 + kHit for a hit given back); releases on the last (the
// caller then calls process_orphans_locked).
void drop_locked(Cache* rc, Region* region, uint64_t amount) noexcept UMN_REQUIRES(rc->lock) {
  // acq_rel pairs with the other droppers: the last sees every holder's writes before dereg.
  uint64_t before = region->refs.fetch_sub(amount, std::memory_order_acq_rel);
  if (((before - amount) & kRefMask) == 0) release_region_locked(rc, region);
}

// The destroyed cache's remains are freed by exactly one caller: the one for which this returns true.
bool claim_free_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  if (!rc->destroyed || rc->claimed || rc->live_count != 0 || rc->pins.load(std::memory_order_relaxed) != 0)
    return false;
  rc->claimed = true;
  return true;
}

// ---- the table ------------------------------------------------------------------------------------

bool reachable(const Region* region) noexcept {
  uint32_t state = region->state.load(std::memory_order_acquire);
  return state == kValid || state == kPending;
}

// Replaces leaves [lo, hi) of the current table by leaves holding `kept` (sorted by start; `added`, if
// not null, among them: it enters the index), publishes the new table, and retires the old one and the
// replaced leaves. The regions in `removed` leave the index and lose the cache's reference. The index
// grows (a new one, filled from the new table) when the regions outgrow it. Return: -ENOMEM or 0.
int replace_leaves_locked(Cache* rc, size_t lo, size_t hi, const std::vector<Region*>& kept, Region* added,
                          const std::vector<Region*>& removed) noexcept UMN_REQUIRES(rc->lock) {
  Table* current = rc->table.load(std::memory_order_relaxed);
  const size_t fresh = (kept.size() + Leaf::kMax - 1) / Leaf::kMax;
  // Regions are usually added in address order: a leaf overflowing at the end of the table keeps
  // kMax regions and a new leaf takes the added one (not two half-full leaves), so leaves stay full.
  const bool append_at_end = fresh == 2 && hi == current->leaf_count() && kept.back() == added;
  std::vector<Leaf*>& leaves = rc->fresh_leaves;
  leaves.clear();
  try {
    leaves.reserve(fresh);
  } catch (...) {
    return -ENOMEM;
  }
  for (size_t k = 0; k < fresh; ++k) {
    const size_t first = append_at_end ? k * Leaf::kMax : k * kept.size() / fresh;
    const size_t last = append_at_end ? std::min((k + 1) * Leaf::kMax, kept.size()) : (k + 1) * kept.size() / fresh;
    Leaf* leaf = Leaf::create(last - first);
    if (leaf == nullptr) {
      for (Leaf* made : leaves) Leaf::destroy(made);
      return -ENOMEM;
    }
    for (size_t i = first; i < last; ++i) leaf->append(kept[i]);
    leaves.push_back(leaf);
  }
  size_t count = current->count();
  uint64_t bytes = current->bytes();
  for (size_t l = lo; l < hi; ++l) {
    count -= current->leaf(l)->count();
    bytes -= current->leaf(l)->bytes();
  }
  Index* old_index = current->index();
  Index* index = count + kept.size() > old_index->capacity() ? Index::create(2 * (count + kept.size())) : nullptr;
  Table* next = Table::create(current->leaf_count() - (hi - lo) + fresh, index != nullptr ? index : old_index);
  if (next == nullptr) {
    for (Leaf* made : leaves) Leaf::destroy(made);
    Index::destroy(index);
    return -ENOMEM;
  }
  next->append(*current, 0, lo);
  for (Leaf* leaf : leaves) {
    next->append(leaf);
    count += leaf->count();
    bytes += leaf->bytes();
  }
  next->append(*current, hi, current->leaf_count());
  next->set_totals(count, bytes);
  if (index != nullptr) {
    next->for_each([&](Region* region) { index->add(region); });
  } else if (added != nullptr) {
    old_index->add(added);
  }
  // Pairs with the acquire loads of hits and of the notifier.
  rc->table.store(next, std::memory_order_release);
  // The table last: a retire_locked may hand a full batch to liburcu, which may free it at once.
  for (size_t l = lo; l < hi; ++l) retire_locked(rc, current->leaf(l), &free_leaf);
  if (index != nullptr) retire_locked(rc, old_index, &free_index);
  retire_locked(rc, current, &free_table);
  for (Region* region : removed) {
    next->index()->remove(region);
    drop_locked(rc, region, kCachedRef);
  }
  process_orphans_locked(rc);
  return 0;
}

// Rebuilds the whole table from the regions for which keep(region) holds; drops the others. O(n).
// Return: -ENOMEM or 0.
template <class Keep>
int rebuild_locked(Cache* rc, Keep keep) noexcept UMN_REQUIRES(rc->lock) {
  Table* current = rc->table.load(std::memory_order_relaxed);
  std::vector<Region*>& kept = rc->kept;
  std::vector<Region*>& removed = rc->removed;
  kept.clear();
  removed.clear();
  try {
    kept.reserve(current->count());
    current->for_each([&](Region* region) { (keep(region) ? kept : removed).push_back(region); });
  } catch (...) {
    return -ENOMEM;
  }
  return replace_leaves_locked(rc, 0, current->leaf_count(), kept, nullptr, removed);
}

// Removes every region overlapping [start, end) (a valid one becomes kDropped) and inserts `added` (if
// not null; within [start, end)). Rebuilds only the leaves concerned: O(log n + n / Leaf::kMax) plus
// O(Leaf::kMax) per leaf touched. `purge`: also removes every unreachable region (the whole table is
// rebuilt, O(n): one rebuild where purge_locked then a splice would make two). Return: -ENOMEM or 0.
int splice_locked(Cache* rc, uint64_t start, uint64_t end, Region* added, bool purge) noexcept UMN_REQUIRES(rc->lock) {
  Table* current = rc->table.load(std::memory_order_relaxed);
  const size_t leaf_count = current->leaf_count();
  // The leaves from the first one ending after start (the last leaf if none) to the last one
  // starting before end; all of them for a purge.
  size_t lo = purge ? 0 : std::min(current->leaf_after(start), leaf_count == 0 ? 0 : leaf_count - 1), hi = lo;
  while (hi < leaf_count && (purge || hi == lo || current->leaf(hi)->at(0)->start() < end)) ++hi;
  std::vector<Region*>& kept = rc->kept;
  std::vector<Region*>& removed = rc->removed;
  kept.clear();
  removed.clear();
  try {
    kept.reserve((hi - lo) * Leaf::kMax + 1);
    bool placed = added == nullptr;
    for (size_t l = lo; l < hi; ++l) {
      const Leaf* leaf = current->leaf(l);
      for (size_t i = 0; i < leaf->count(); ++i) {
        Region* region = leaf->at(i);
        if ((region->end() > start && region->start() < end) || (purge && !reachable(region))) {
          removed.push_back(region);
          continue;
        }
        if (!placed && start < region->start()) {
          kept.push_back(added);
          placed = true;
        }
        kept.push_back(region);
      }
    }
    if (!placed) kept.push_back(added);
  } catch (...) {
    return -ENOMEM;
  }
  for (Region* region : removed) {
    uint32_t valid = kValid;
    region->state.compare_exchange_strong(valid, kDropped, std::memory_order_acq_rel);
  }
  return replace_leaves_locked(rc, lo, hi, kept, added, removed);
}

// Removes the regions the notifier marked (step 1 of a miss; also put, flush).
void purge_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  // Pairs with the release store in chunk_invalidate: a mark made before it is seen by the scan below.
  if (!rc->work_pending.exchange(false, std::memory_order_acq_rel)) return;
  if (rebuild_locked(rc, reachable) != 0) rc->work_pending.store(true, std::memory_order_relaxed);
}

// A get or put that finds work pending does it if nobody holds the lock (whoever does will see it).
void try_purge(Cache* rc) noexcept {
  if (!rc->lock.try_lock()) return;
  if (!rc->destroyed) {
    purge_locked(rc);
    process_orphans_locked(rc);
  }
  rc->lock.unlock();
}

// ---- the notifier ---------------------------------------------------------------------------------

bool event_invalidates(umn_notifier_event event) noexcept {
  return event != UMN_NOTIFY_PROTECTION_PAGE && event != UMN_NOTIFY_SOFT_DIRTY;
}

// Marks region kInvalid if it is reachable; calls ops->invalidate if it was valid. Return: 0 nothing
// done, 1 a pending region marked, 2 a valid region invalidated.
int invalidate_region(Cache* rc, Region* region) noexcept {
  uint32_t state = region->state.load(std::memory_order_relaxed);
  while (state == kValid || state == kPending) {
    // acq_rel: pairs with the acceptance CAS of a miss and the acquire loads of hits.
    if (region->state.compare_exchange_weak(state, kInvalid, std::memory_order_acq_rel)) {
      if (state == kValid && rc->ops.invalidate != nullptr) rc->ops.invalidate(rc->ctx, &region->pub);
      return state == kValid ? 2 : 1;
    }
  }
  return 0;
}

bool chunk_invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
  auto* chunk = reinterpret_cast<Chunk*>(sub);
  Cache* rc = chunk->cache;
  if (!event_invalidates(range->event)) return true;
  if (range->event == UMN_NOTIFY_RELEASE) rc->released.store(true, std::memory_order_relaxed);
  umn_interval_set_seq(sub, cur_seq);
  // Pairs with the same RMW in register_once_locked (store buffering, see the file comment).
  rc->handshake.fetch_add(1, std::memory_order_acq_rel);
  const uint64_t start = std::max(range->start, chunk->start), end = std::min(range->end, chunk->end);
  uint64_t marked = 0, invalidated = 0;
  {
    rcu::ReadGuard guard;
    Table* table = rc->table.load(std::memory_order_acquire);
    table->for_each_overlapping(start, end, [&](Region* region) {
      const int done = invalidate_region(rc, region);
      marked += done != 0 ? 1 : 0;
      invalidated += done == 2 ? 1 : 0;
    });
  }
  if (invalidated != 0) rc->invalidations.fetch_add(invalidated, std::memory_order_relaxed);
  // Pairs with the exchange in purge_locked.
  if (marked != 0) rc->work_pending.store(true, std::memory_order_release);
  return true;
}

const umn_interval_notifier_ops kChunkOps = {&chunk_invalidate, nullptr, nullptr};

Chunk* find_chunk_locked(Cache* rc, uint64_t start) noexcept UMN_REQUIRES(rc->lock) {
  auto it = std::lower_bound(rc->chunks.begin(), rc->chunks.end(), start,
                             [](const Chunk* chunk, uint64_t addr) { return chunk->start < addr; });
  return it != rc->chunks.end() && (*it)->start == start ? *it : nullptr;
}

int add_chunk_locked(Cache* rc, uint64_t start) noexcept UMN_REQUIRES(rc->lock) {
  auto* chunk = new (std::nothrow) Chunk;
  if (chunk == nullptr) return -ENOMEM;
  chunk->cache = rc;
  chunk->start = start;
  // The chunk at the very top of the address space stops one byte short (insert refuses to wrap).
  const uint64_t length =
      start + (uint64_t{1} << kChunkShift) == 0 ? (uint64_t{1} << kChunkShift) - 1 : uint64_t{1} << kChunkShift;
  chunk->end = start + length;
  try {
    rc->chunks.reserve(rc->chunks.size() + 1);
  } catch (...) {
    delete chunk;
    return -ENOMEM;
  }
  if (int err = umn_interval_notifier_insert(&chunk->notifier, rc->mm, start, length, &kChunkOps); err != 0) {
    delete chunk;
    return err;
  }
  auto it = std::lower_bound(rc->chunks.begin(), rc->chunks.end(), start,
                             [](const Chunk* c, uint64_t addr) { return c->start < addr; });
  rc->chunks.insert(it, chunk);
  return 0;
}

int ensure_chunks_locked(Cache* rc, uint64_t start, uint64_t end) noexcept UMN_REQUIRES(rc->lock) {
  for (uint64_t index = start >> kChunkShift; index <= (end - 1) >> kChunkShift; ++index) {
    if (find_chunk_locked(rc, index << kChunkShift) != nullptr) continue;
    if (int err = add_chunk_locked(rc, index << kChunkShift); err != 0) return err;
  }
  return 0;
}

// Waits for running invalidations of the chunks over [start, end) (step 3).
void wait_for_chunks_locked(Cache* rc, uint64_t start, uint64_t end) noexcept UMN_REQUIRES(rc->lock) {
  for (uint64_t index = start >> kChunkShift; index <= (end - 1) >> kChunkShift; ++index)
    (void)umn_interval_read_begin(&find_chunk_locked(rc, index << kChunkShift)->notifier);
}

// Removes every chunk no cached region overlaps (all of them when `all`).
void remove_chunks_locked(Cache* rc, bool all) noexcept UMN_REQUIRES(rc->lock) {
  Table* table = rc->table.load(std::memory_order_relaxed);
  std::erase_if(rc->chunks, [&](Chunk* chunk) {
    bool used = false;
    table->for_each_overlapping(chunk->start, chunk->end, [&](Region*) { used = true; });
    if (used && !all) return false;
    umn_interval_notifier_remove(&chunk->notifier);  // waits for a callback running on it
    delete chunk;
    return true;
  });
}

// ---- hits -----------------------------------------------------------------------------------------

// Counts a hit in this thread's counter for the cache (no shared write), or on the region when the
// thread's counters are all taken by other caches.
void count_parked_hit(Cache* rc, epoch::Reader* me, Region* region) noexcept {
  for (epoch::HitCount& count : me->hit_counts) {
    // Acquire: pairs with the release store of forget_hit_counts (a reused counter reads 0).
    const uint64_t id = count.cache_id.load(std::memory_order_acquire);
    if (id != rc->id && id != 0) continue;
    if (id == 0) count.cache_id.store(rc->id, std::memory_order_relaxed);
    count.hits.store(count.hits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  region->refs.fetch_add(kHit, std::memory_order_relaxed);
}

enum class Park { kParked, kFull, kInvalid };

// Parks a reference to `region` (found kValid) in a free hold of this thread: no read-modify-write
// but the region's first parked hit. Context: inside a read-side section (t_reader is set).
Park park(Cache* rc, Region* region, epoch::Hold** out) noexcept {
  epoch::Reader* me = epoch::t_reader;
  epoch::Hold* hold = nullptr;
  for (epoch::Hold& candidate : me->holds) {
    // Acquire: pairs with the release store of the put that freed it (its reads of pub came first).
    if (candidate.region.load(std::memory_order_acquire) == nullptr) {
      hold = &candidate;
      break;
    }
  }
  if (hold == nullptr) return Park::kFull;
  uint32_t parked = region->parked.load(std::memory_order_relaxed);
  // seq_cst: pairs with the CAS of release_region_locked (see ParkedState).
  if (parked != kParked && !region->parked.compare_exchange_strong(parked, kParked, std::memory_order_seq_cst) &&
      parked != kParked)
    return Park::kInvalid;  // closed: its counted references are gone
  hold->pub = region->pub;
  if (__builtin_expect(epoch::g_asymmetric, 1)) {
    hold->region.store(region, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the reclaimer's epoch::fence() does the rest
  } else {
    hold->region.exchange(region, std::memory_order_seq_cst);
  }
  // An invalidation that began before this load is seen; a reclaimer that made it invalid before this
  // load sees the hold after its fence.
  if (region->state.load(std::memory_order_seq_cst) != kValid) {
    hold->region.store(nullptr, std::memory_order_release);
    return Park::kInvalid;  // the caller's locked path frees the region if a reclaimer saw the hold
  }
  count_parked_hit(rc, me, region);
  *out = hold;
  return Park::kParked;
}

// A hit (a hold of this thread, or a counted reference when its holds are all taken), or nullptr.
// `locked`: the caller holds the cache lock.
umn_regcache_region* lookup(Cache* rc, uint64_t start, uint64_t end, bool locked) noexcept {
  Region* region;
  {
    epoch::ReadGuard guard;
    region = rc->table.load(std::memory_order_acquire)->find_covering(start, end);
    if (region == nullptr || region->state.load(std::memory_order_acquire) != kValid) return nullptr;
    epoch::Hold* hold = nullptr;
    switch (park(rc, region, &hold)) {
      case Park::kParked:
        return &hold->pub;
      case Park::kInvalid:
        return nullptr;
      case Park::kFull:
        break;
    }
    if (!try_get_hit(region)) return nullptr;
    // An invalidation that began before this load is seen; one that begins after it follows the get.
    if (region->state.load(std::memory_order_seq_cst) == kValid) return &region->pub;
  }
  // Give the hit back: possibly the last reference.
  if (locked) {
    rc->lock.assert_held();
    drop_locked(rc, region, 1 + kHit);
    process_orphans_locked(rc);
  } else {
    MutexLock guard(rc->lock);
    drop_locked(rc, region, 1 + kHit);
    process_orphans_locked(rc);
  }
  return nullptr;
}

// ---- misses ---------------------------------------------------------------------------------------

// Drops a pending region that failed (reg error, or invalidated): out of the table, dereg if owed.
void abandon_locked(Cache* rc, Region* region) noexcept UMN_REQUIRES(rc->lock) {
  uint32_t pending = kPending;
  region->state.compare_exchange_strong(pending, kDropped, std::memory_order_acq_rel);
  if (splice_locked(rc, region->start(), region->end(), nullptr, false) != 0) {
    rc->work_pending.store(true, std::memory_order_relaxed);  // it is not reachable: purge drops it later
  }
}

// Evicts unused valid regions, least recently released first, while keep_going(); never `spare`.
// `counted`: the evictions count in stats (limits, -ENOMEM), not flush's.
template <class KeepGoing>
void evict_locked(Cache* rc, Region* spare, bool counted, KeepGoing keep_going) noexcept UMN_REQUIRES(rc->lock) {
  Table* table = rc->table.load(std::memory_order_relaxed);
  // Sorted on a snapshot of last_release: holders' puts store it without the lock meanwhile, and a
  // comparator whose answers change during std::sort is undefined behaviour (it read before the array:
  // RegCacheHoldStress under ASan).
  std::vector<std::pair<uint64_t, Region*>> candidates;
  table->for_each([&](Region* region) {
    if (region != spare && (region->refs.load(std::memory_order_relaxed) & kUserRefMask) == 0)
      candidates.emplace_back(region->last_release.load(std::memory_order_relaxed), region);
  });
  std::sort(candidates.begin(), candidates.end());
  size_t count = table->count();
  uint64_t bytes = table->bytes();
  std::vector<Region*> evicted;
  for (const auto& candidate : candidates) {
    Region* region = candidate.second;
    if (!keep_going(count, bytes)) break;
    uint32_t valid = kValid;
    if (!region->state.compare_exchange_strong(valid, kDropped, std::memory_order_acq_rel)) continue;
    evicted.push_back(region);
    count--;
    bytes -= region->size();
  }
  if (evicted.empty()) return;
  if (counted) rc->evictions += evicted.size();
  if (rebuild_locked(rc, reachable) != 0) rc->work_pending.store(true, std::memory_order_relaxed);
}

bool over_limits(const Cache* rc, size_t count, uint64_t bytes) noexcept {
  return (rc->max_regions != 0 && count > rc->max_regions) || (rc->max_bytes != 0 && bytes > rc->max_bytes);
}

// Step 2: widens [*start, *end) to the valid regions it overlaps.
void merge_bounds_locked(Cache* rc, uint64_t* start, uint64_t* end) noexcept UMN_REQUIRES(rc->lock) {
  rc->table.load(std::memory_order_relaxed)->for_each_overlapping(*start, *end, [&](Region* region) {
    if (region->state.load(std::memory_order_acquire) != kValid) return;
    *start = std::min(*start, region->start());
    *end = std::max(*end, region->end());
  });
}

// reg refused a union wider than the request: retry the request alone (the merged regions are out).
inline constexpr int kRetryUnmerged = 1;

// Steps 2-4 once. Return: 0 (accepted, *out referenced), -EAGAIN (invalidated: retry), kRetryUnmerged,
// or an error.
int register_once_locked(Cache* rc, uint64_t start, uint64_t end, bool purge, Region** out) noexcept
    UMN_REQUIRES(rc->lock) {
  const uint64_t asked_start = start, asked_end = end;
  merge_bounds_locked(rc, &start, &end);  // not in a lambda: clang's lock analysis does not enter those
  const bool widened = start != asked_start || end != asked_end;
  if (int err = ensure_chunks_locked(rc, start, end); err != 0) return err;
  auto* region = new (std::nothrow) Region;
  if (region == nullptr) return -ENOMEM;
  region->pub.start = start;
  region->pub.end = end;
  link_live_locked(rc, region);
  // Overlapped regions leave the cache: valid ones are merged (dropped), invalid ones purged.
  if (splice_locked(rc, start, end, region, purge) != 0) {
    drop_locked(rc, region, kCachedRef);
    return -ENOMEM;
  }
  // Pairs with the same RMW in chunk_invalidate (store buffering, see the file comment).
  rc->handshake.fetch_add(1, std::memory_order_acq_rel);
  wait_for_chunks_locked(rc, start, end);
  int err = rc->ops.reg(rc->ctx, &region->pub);
  if (err != 0) {
    abandon_locked(rc, region);
    // The union may be what reg refuses (io_uring: over 1 GiB; memory unmapped in a merged part).
    if (widened) return kRetryUnmerged;
    return err > 0 ? -err : err;
  }
  region->registered = true;
  uint32_t pending = kPending;
  // Release: pairs with the acquire state loads of hits (they see what reg wrote).
  if (!region->state.compare_exchange_strong(pending, kValid, std::memory_order_release)) {
    abandon_locked(rc, region);
    return -EAGAIN;
  }
  region->refs.fetch_add(1, std::memory_order_relaxed);  // the caller's; the table's is held
  *out = region;
  return 0;
}

// `purge`: the notifier marked regions since the last purge (see splice_locked).
int miss_locked(Cache* rc, uint64_t start, uint64_t end, bool purge, Region** out) noexcept UMN_REQUIRES(rc->lock) {
  bool evicted_for_memory = false;
  for (unsigned attempt = 0;;) {
    if (rc->released.load(std::memory_order_relaxed)) return -EINVAL;
    int err = register_once_locked(rc, start, end, purge, out);
    if (err == 0) {
      rc->misses++;
      rc->clock.store(rc->misses, std::memory_order_relaxed);
      Table* table = rc->table.load(std::memory_order_relaxed);
      if (over_limits(rc, table->count(), table->bytes()))
        evict_locked(rc, *out, true, [&](size_t count, uint64_t bytes) { return over_limits(rc, count, bytes); });
      return 0;
    }
    // No loop: the regions merged into the refused union left the table, so the retry does not widen.
    if (err == kRetryUnmerged) continue;
    if (err == -ENOMEM && !evicted_for_memory) {
      evicted_for_memory = true;
      evict_locked(rc, nullptr, true, [](size_t, uint64_t) { return true; });
      continue;
    }
    if (err != -EAGAIN) return err;
    if (attempt++ == UMN_REGCACHE_MAX_RETRIES) return -EBUSY;
    rc->retries++;
    purge_locked(rc);
  }
}

// ---- argument checks ------------------------------------------------------------------------------

bool valid_alignment(uint64_t alignment) noexcept { return alignment != 0 && (alignment & (alignment - 1)) == 0; }

// The aligned request, or false when it is empty or overflows.
bool aligned_range(const Cache* rc, const void* addr, size_t len, uint64_t* start, uint64_t* end) noexcept {
  const auto first = reinterpret_cast<uint64_t>(addr);
  if (len == 0 || first + len < first) return false;
  const uint64_t last = first + len - 1;
  if (last + rc->align_mask < last) return false;
  *start = first & ~rc->align_mask;
  *end = (last | rc->align_mask) + 1;
  return *end != 0;
}

// Zeroes the cache's hit counters in every thread's record (epoch::HitCount) so they can be reused.
void forget_hit_counts(const Cache* rc) noexcept {
  for (epoch::Reader* reader = epoch::first_reader(); reader != nullptr; reader = reader->next) {
    for (epoch::HitCount& count : reader->hit_counts) {
      if (count.cache_id.load(std::memory_order_relaxed) != rc->id) continue;
      count.hits.store(0, std::memory_order_relaxed);
      count.cache_id.store(0, std::memory_order_release);  // pairs with the acquire of count_parked_hit
    }
  }
}

void destroy_locked(Cache* rc) noexcept UMN_REQUIRES(rc->lock) {
  rc->table.load(std::memory_order_relaxed)->for_each([](Region* region) {
    uint32_t state = region->state.load(std::memory_order_relaxed);
    while ((state == kValid || state == kPending) &&
           !region->state.compare_exchange_weak(state, kDropped, std::memory_order_acq_rel)) {}
  });
  if (rebuild_locked(rc, [](Region*) { return false; }) != 0) std::abort();  // out of memory: cannot drop them
  remove_chunks_locked(rc, true);
  rc->work_pending.store(false, std::memory_order_relaxed);  // no notifier left to set it
  rc->destroyed = true;
  forget_hit_counts(rc);
  flush_retired_locked(rc);
}

// Frees the remains of a destroyed cache (the caller claimed them), unless a put that raced with an
// invalidation still pins it: that put frees them when it is done (put_hold).
void free_cache(Cache* rc) noexcept {
  {
    MutexLock guard(rc->lock);
    drain_locked(rc);  // waits for the read-side section in which a pin was taken
    if (rc->pins.load(std::memory_order_relaxed) != 0) {
      rc->abandoned = true;
      return;
    }
  }
  Table* table = rc->table.load(std::memory_order_relaxed);  // no reader left: chunks removed, no gets
  Index::destroy(table->index());
  Table::destroy(table);  // empty (destroy_locked): no leaf
  delete rc;
}

// Lets go of a hold whose region was invalid at put: under the lock, so neither the region nor the
// cache can go away before this put has deregistered what it must.
void put_hold_locked_path(Cache* rc, epoch::Hold* hold, bool pinned) noexcept {
  bool free_it;
  {
    MutexLock guard(rc->lock);
    if (pinned) {
      rc->pins.fetch_sub(1, std::memory_order_relaxed);
    } else {
      hold->region.store(nullptr, std::memory_order_release);  // pairs with parked_somewhere
    }
    if (!rc->destroyed) purge_locked(rc);
    process_orphans_locked(rc);
    free_it = (rc->abandoned && rc->pins.load(std::memory_order_relaxed) == 0) || claim_free_locked(rc);
  }
  if (free_it) free_cache(rc);
}

// Put of a hold (a parked reference): no read-modify-write unless the region became invalid.
void put_hold(Cache* rc, epoch::Hold* hold) noexcept {
  Region* region = hold->region.load(std::memory_order_acquire);
  if (!UMN_CHECK(region != nullptr, "umn_regcache_put", "region put more often than got")) return;
  // Read before the hold goes: after it, only a holder keeps a destroyed cache alive.
  const bool pending = rc->work_pending.load(std::memory_order_relaxed);
  region->last_release.store(rc->clock.load(std::memory_order_relaxed), std::memory_order_relaxed);
  if (region->state.load(std::memory_order_acquire) != kValid) {
    put_hold_locked_path(rc, hold, false);
    return;
  }
  bool raced;
  {
    epoch::ReadGuard guard;  // the region (and a destroyed cache, see free_cache) stay readable
    if (__builtin_expect(epoch::g_asymmetric, 1)) {
      // Release: pairs with the acquire loads of parked_somewhere (this holder's accesses come first).
      hold->region.store(nullptr, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the reclaimer's epoch::fence() does the rest
    } else {
      hold->region.exchange(nullptr, std::memory_order_seq_cst);
    }
    // An invalidation began while the hold was let go: a reclaimer may have seen it and kept the
    // region; this put must then free it. The pin keeps the cache's memory until the lock is taken.
    raced = region->state.load(std::memory_order_seq_cst) != kValid;
    if (raced) rc->pins.fetch_add(1, std::memory_order_relaxed);
  }
  if (raced) {
    put_hold_locked_path(rc, hold, true);
    return;
  }
  if (pending) try_purge(rc);
}

uint32_t kind_of(const umn_regcache_region* pub) noexcept {
  uint32_t kind;
  std::memcpy(&kind, reinterpret_cast<const char*>(pub) + sizeof(umn_regcache_region), sizeof kind);
  return kind;
}

}  // namespace
}  // namespace umn::detail::regcache

using namespace umn::detail::regcache;
using umn::detail::MutexLock;

extern "C" {

int umn_regcache_create(umn_mm* mm, const umn_regcache_params* params, const umn_regcache_ops* ops, void* ctx,
                        umn_regcache** out) {
  // A WARN, not misuse (base/check.hpp): regcache.h lists NULL among the bad input answered -EINVAL.
  if (UMN_WARN_ON(mm == nullptr || ops == nullptr || out == nullptr || ops->reg == nullptr || ops->dereg == nullptr,
                  "umn_regcache_create", "NULL mm, ops or out, or ops without reg/dereg"))
    return -EINVAL;
  const umn_regcache_params defaults{};
  if (params == nullptr) params = &defaults;
  const uint64_t alignment = params->alignment != 0 ? params->alignment : static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (!valid_alignment(alignment) || params->flags != 0) return -EINVAL;
  auto* rc = new (std::nothrow) umn_regcache;
  Index* index = Index::create(0);
  Table* table = index != nullptr ? Table::create(0, index) : nullptr;
  if (rc == nullptr || table == nullptr) {
    delete rc;
    if (index != nullptr) Index::destroy(index);
    if (table != nullptr) Table::destroy(table);
    return -ENOMEM;
  }
  rc->mm = mm;
  rc->ops = *ops;
  rc->ctx = ctx;
  rc->max_regions = params->max_regions;
  rc->max_bytes = params->max_bytes;
  rc->align_mask = alignment - 1;
  static std::atomic<uint64_t> next_id{1};
  rc->id = next_id.fetch_add(1, std::memory_order_relaxed);
  rc->table.store(table, std::memory_order_release);
  *out = rc;
  return 0;
}

int umn_regcache_get(umn_regcache* rc, const void* addr, size_t len, umn_regcache_region** out) {
  uint64_t start, end;
  if (UMN_WARN_ON(rc == nullptr || out == nullptr, "umn_regcache_get", "NULL cache or out")) return -EINVAL;
  if (!aligned_range(rc, addr, len, &start, &end)) return -EINVAL;
  if (umn_regcache_region* hit = lookup(rc, start, end, false)) {
    if (rc->work_pending.load(std::memory_order_relaxed)) try_purge(rc);
    *out = hit;
    return 0;
  }
  MutexLock guard(rc->lock);
  if (!UMN_CHECK(!rc->destroyed, "umn_regcache_get", "cache destroyed")) return -EINVAL;
  process_orphans_locked(rc);                                     // a hit that backed out of a hold may have kept one
  if (umn_regcache_region* hit = lookup(rc, start, end, true)) {  // another thread registered it meanwhile
    purge_locked(rc);
    *out = hit;
    return 0;
  }
  // Step 1: the miss's splice purges when the notifier marked regions (one rebuild, not two). acq_rel:
  // pairs with the notifier's release store, as in purge_locked.
  const bool pending = rc->work_pending.exchange(false, std::memory_order_acq_rel);
  Region* region;
  int err = miss_locked(rc, start, end, pending, &region);
  if (err == 0) {
    *out = &region->pub;
  } else if (pending) {
    rc->work_pending.store(true, std::memory_order_relaxed);  // the rebuild may not have run
  }
  return err;
}

void umn_regcache_put(umn_regcache* rc, umn_regcache_region* pub) {
  if (!UMN_CHECK(rc != nullptr && pub != nullptr, "umn_regcache_put", "NULL cache or region")) return;
  if (kind_of(pub) == kHoldKind) {
    put_hold(rc, reinterpret_cast<epoch::Hold*>(pub));
    return;
  }
  Region* region = Region::of(pub);
  // Read before the reference goes: after it, only a holder keeps a destroyed cache alive.
  const bool pending = rc->work_pending.load(std::memory_order_relaxed);
  region->last_release.store(rc->clock.load(std::memory_order_relaxed), std::memory_order_relaxed);
  uint64_t refs = region->refs.load(std::memory_order_relaxed);
  do {
    if (!UMN_CHECK((refs & kUserRefMask) != 0, "umn_regcache_put", "region put more often than got")) return;
    // acq_rel: pairs with the other holders' puts and drops, so whoever frees sees every holder's writes.
  } while (!region->refs.compare_exchange_weak(refs, refs - 1, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (((refs - 1) & kRefMask) == 0) {
    bool free_it;
    {
      MutexLock guard(rc->lock);
      release_region_locked(rc, region);
      process_orphans_locked(rc);
      free_it = claim_free_locked(rc);
      if (rc->destroyed) flush_retired_locked(rc);
    }
    if (free_it) free_cache(rc);
    return;
  }
  if (pending) try_purge(rc);
}

void umn_regcache_flush(umn_regcache* rc) {
  if (!UMN_CHECK(rc != nullptr, "umn_regcache_flush", "NULL cache")) return;
  MutexLock guard(rc->lock);
  if (rc->destroyed) return;
  purge_locked(rc);
  process_orphans_locked(rc);
  evict_locked(rc, nullptr, false, [](size_t, uint64_t) { return true; });
  remove_chunks_locked(rc, false);
  flush_retired_locked(rc);
}

void umn_regcache_destroy(umn_regcache* rc) {
  if (rc == nullptr) return;
  bool in_use, free_it;
  {
    MutexLock guard(rc->lock);
    if (!UMN_CHECK(!rc->destroyed, "umn_regcache_destroy", "cache destroyed twice")) return;
    destroy_locked(rc);
    in_use = rc->live_count != 0;
    free_it = claim_free_locked(rc);
  }
  if (!UMN_CHECK(!in_use, "umn_regcache_destroy",
                 "regions still in use: they stay registered until their put, which frees the cache"))
    return;
  if (free_it) free_cache(rc);
}

void umn_regcache_stats(umn_regcache* rc, struct umn_regcache_stats* out) {
  if (!UMN_CHECK(rc != nullptr && out != nullptr, "umn_regcache_stats", "NULL cache or stats")) return;
  MutexLock guard(rc->lock);
  out->hits = rc->hits_retired;
  for (Region* region = rc->live; region != nullptr; region = region->live_next)
    out->hits += region->refs.load(std::memory_order_relaxed) >> kHitShift;
  for (epoch::Reader* reader = epoch::first_reader(); reader != nullptr; reader = reader->next) {
    for (const epoch::HitCount& count : reader->hit_counts)
      if (count.cache_id.load(std::memory_order_relaxed) == rc->id)
        out->hits += count.hits.load(std::memory_order_relaxed);
  }
  out->misses = rc->misses;
  out->retries = rc->retries;
  out->invalidations = rc->invalidations.load(std::memory_order_relaxed);
  out->evictions = rc->evictions;
  Table* table = rc->table.load(std::memory_order_relaxed);
  out->regions = table->count();
  out->bytes = table->bytes();
}

}  // extern "C"
