// epoch.hpp - the registration cache's read side: epoch-based reclamation with an asymmetric fence.
//
// Why not liburcu-bp (umn's RCU, core/rcu.hpp) on the hit path: measured on the development VM, an
// urcu_bp_read_lock/unlock pair costs ~54 ns (Debian's liburcu-bp 0.13 takes its mfence path there, 26 ns
// each, plus four __tls_get_addr calls), which alone is two thirds of UCX's whole hit. Here a read-side
// section is a thread-local store and a compiler barrier on each side; the writer pays instead, with one
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) per reclamation attempt (the technique of liburcu's memb
// flavour, which a library cannot use because it needs every thread registered by the application).
//
// Locking: none. Readers write only their own record; reclaimers serialise on their cache's lock.
// Lifetime: reader records are allocated once per thread (its first read_lock, like urcu-bp's
//   registration: the only allocation a hit can make) and recycled when the thread exits (in a fork
//   child: those of every thread but the forking one); never freed.
// Context: read_lock/read_unlock: any thread, nestable (a signal handler may nest one inside another),
//   but not from a signal handler on a thread that never called read_lock (it may allocate): the cache's
//   notifier therefore uses liburcu-bp, and what epochs declare safe is still freed through rcu::call.
// Memory ordering
//   Reader: record store (relaxed) ; compiler barrier ; loads of shared pointers (acquire) ... ; record
//   store 0 (release, pairs with the acquire scan).
//   Reclaimer: unlink (release) ; tag = retire() (an acq_rel increment of the epoch: a reader whose
//   acquire load reads a later value sees the unlink, since every increment continues the release
//   sequence) ... later oldest_active(): membarrier (a full barrier on every running thread of the
//   process, so each reader's record store is visible to the scan, or its loads came after the
//   membarrier) ; scan records (acquire). Objects tagged t may be freed once t < oldest_active().
//   Without membarrier the reader's record store is a seq_cst exchange instead (~20 ns slower).
#pragma once

#include <atomic>
#include <cstdint>

#include "users/regcache/table.hpp"

namespace umn::detail::regcache::epoch {

// A parked reference (docs/regcache.md, "Parked references"): what a hit returns when its thread has
// a free hold. `region` non-null means the region is held. Written by the thread owning the record
// when it is null (a get: relaxed store, ordered by the reclaimer's asymmetric fence), cleared by
// whichever thread puts it (release); read by reclaimers under their cache lock (acquire) after the
// fence. pub is a copy of the region's public fields, written by the getter before publication.
struct Hold {
  umn_regcache_region pub{};
  uint32_t kind = kHoldKind;  // immutable; see HandleKind
  std::atomic<Region*> region{nullptr};
};
static_assert(offsetof(Hold, kind) == sizeof(umn_regcache_region));

// Hits counted per record and cache (stats): owner-written (relaxed load + store), read by stats
// (relaxed); cache_id 0 is free. A cache's destroy zeroes its counters.
struct HitCount {
  std::atomic<uint64_t> cache_id{0};
  std::atomic<uint64_t> hits{0};
};

inline constexpr unsigned kHolds = 8;
inline constexpr unsigned kHitCounts = 4;

struct alignas(64) Reader {
  // 0: outside any section; else (epoch << kNestBits) | nesting. Written by its thread only (relaxed,
  // release at the end of a section); read by reclaimers (acquire).
  std::atomic<uint64_t> state{0};
  std::atomic<bool> in_use{true};  // acq_rel CAS by a thread claiming it; release store at thread exit
  Reader* next = nullptr;          // immutable once published in the list
  // Kept across thread exit: a hold of an exited thread stays counted until someone puts it, and a
  // thread that claims the record later skips it.
  Hold holds[kHolds];
  HitCount hit_counts[kHitCounts];
};

inline constexpr unsigned kNestBits = 8;
inline constexpr uint64_t kNestMask = (uint64_t{1} << kNestBits) - 1;

// The global epoch: advanced (acq_rel) by reclaimers after unlinking, read (acquire) by readers.
extern std::atomic<uint64_t> g_epoch;
// True when membarrier(PRIVATE_EXPEDITED) is registered for this process (set once, by the first
// registration or reclamation, before either side reads it).
extern bool g_asymmetric;
// __thread, not thread_local: a direct TLS access, no C++ TLS wrapper call on the hit path.
extern __thread Reader* t_reader [[gnu::tls_model("initial-exec")]];

// This thread's record, claimed or allocated on first use (aborts if allocation fails).
Reader* register_thread() noexcept;

inline void read_lock() noexcept {
  Reader* reader = t_reader;
  if (__builtin_expect(reader == nullptr, 0)) reader = register_thread();
  const uint64_t state = reader->state.load(std::memory_order_relaxed);
  const uint64_t next = (state & kNestMask) != 0 ? state + 1 : (g_epoch.load(std::memory_order_acquire) << kNestBits) | 1;
  if (__builtin_expect(g_asymmetric, 1)) {
    reader->state.store(next, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the reclaimer's membarrier does the rest
  } else {
    reader->state.exchange(next, std::memory_order_seq_cst);
  }
}

inline void read_unlock() noexcept {
  Reader* reader = t_reader;
  const uint64_t state = reader->state.load(std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // Release: the section's reads happen-before a reclaimer's acquire scan that sees 0.
  reader->state.store((state & kNestMask) == 1 ? 0 : state - 1, std::memory_order_release);
}

class ReadGuard {
 public:
  ReadGuard() noexcept { read_lock(); }
  ~ReadGuard() { read_unlock(); }
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;
};

// The tag of objects unlinked before the call (advances the epoch). Context: any.
inline uint64_t retire() noexcept { return g_epoch.fetch_add(1, std::memory_order_acq_rel); }

// Every record (for the hold scans and the hit counters). Context: any.
Reader* first_reader() noexcept;

// The asymmetric fence: afterwards, every store another thread made before its last full barrier is
// visible, and every load it makes later sees what this thread stored before (membarrier; without it,
// a seq_cst RMW, and the hit path publishes holds with seq_cst exchanges instead). Context: any, not
// in a read-side section's hot path (a system call).
void fence() noexcept;

// The oldest epoch a reader inside a section may have seen (UINT64_MAX if none): objects tagged below it
// are unreachable. Never waits; one system call. Context: outside a read-side section.
uint64_t oldest_active() noexcept;

}  // namespace umn::detail::regcache::epoch
