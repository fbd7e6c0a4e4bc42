/*
 * regcache.h - a registration cache on interval notifiers: register a buffer with a device once
 * (pin + ibv_reg_mr, cudaHostRegister, io_uring fixed buffers...), reuse the registration, and never
 * hand it out again once the memory behind it has begun to change. docs/regcache.md is the guide.
 *
 * Model. A region is [start, end) registered with the device by ops->reg (which sets region->handle).
 * umn_regcache_get() returns a referenced region covering the request; umn_regcache_put() drops the
 * reference. The cache watches its regions with interval notifiers on its address space (usually
 * umn_mm_process()) and drops a region from the cache as soon as an invalidation of any of its bytes
 * begins; the device registration itself is dropped (ops->dereg) later, from a cache call, never from
 * the notifier.
 *
 * Decisions (each tested in tests/unit/regcache):
 *   - Alignment: requests are aligned outward to params->alignment (a power of two; 0 means the page
 *     size). A hit is a valid cached region covering the aligned request.
 *   - Merging: a miss that overlaps valid cached regions registers one region covering the union and
 *     drops the overlapped ones from the cache (their holders keep them until their put). Why: the
 *     cached regions stay disjoint, so a hit is one binary search with no lock (see Locking), and a
 *     buffer that grows is registered once, not once per size. Only regions that *overlap* merge (not
 *     merely adjacent ones), and only valid ones, whose memory is still mapped: a merged region covers
 *     bytes some caller asked for and that were mapped when asked, never a gap (reg would fail with
 *     -EFAULT there, as io_uring registration does). If reg refuses the union anyway (io_uring: over
 *     1 GiB), the request alone is registered (the merged regions have left the cache).
 *   - Limits: 0 in max_regions / max_bytes means unlimited. Past a limit, unused cached regions are
 *     evicted least recently released first (the clock is the cache's miss count: regions released
 *     between two misses are equally recent). Regions in use are never evicted.
 *   - reg failing with -ENOMEM evicts every unused region and retries once; other errors are returned
 *     (nothing cached).
 *   - Collision-retry: a miss publishes its region (pending), waits for running invalidations of its
 *     range (umn_interval_read_begin), calls reg, and under the cache lock accepts the region only if
 *     no invalidation touched it meanwhile; else it deregisters and retries, at most
 *     UMN_REGCACHE_MAX_RETRIES times, then fails with -EBUSY (counted in stats.retries).
 *   - Events: UNMAP, CLEAR, PROTECTION_VMA (mprotect removing access), MIGRATE, EXCLUSIVE and RELEASE
 *     invalidate. PROTECTION_PAGE and SOFT_DIRTY do not: they change no translation a pinned
 *     registration depends on. In particular fork() (PROTECTION_PAGE over the parent's private writable
 *     memory, umn/process.h) keeps the cache: the kernel copies pinned pages for the child, so the
 *     parent's registrations stay right.
 *   - Safety rule: once an invalidation of any byte of a region has begun, no get returns that region
 *     again. A region in use at that moment stays registered for its holders (the device keeps the old
 *     pages) until their last put, which deregisters it; it is unreachable for new gets.
 *   - Release of pinned pages: a region whose memory went away is deregistered at its last put if it
 *     was held, else by the next get, put or flush on any thread (a get that finds this work pending
 *     does it only when the cache lock is free; flush always does it). A program that stops calling
 *     the cache calls umn_regcache_flush() to release them.
 *
 * Locking
 *   - One mutex per cache serialises misses, reg, dereg, eviction, flush and destroy. reg and dereg are
 *     always called with it held: never concurrently for one cache, possibly on different threads.
 *   - The hit path (get finding a valid region, put of a region still valid) takes no lock, allocates
 *     nothing (but a thread's very first hit registers the thread, once) and makes no atomic
 *     read-modify-write (but the first parked hit of each region, one CAS): an epoch read-side section
 *     (a store to a thread-local record; src/users/regcache/epoch.hpp says why not liburcu-bp) over an
 *     immutable sorted array of the cached regions with a page index in front, then the reference is
 *     *parked*: stored with a plain store in a free hold of the thread's record (8 per thread), and
 *     the region's state checked again; put clears the hold and checks the state again. The cache
 *     sees holds through an asymmetric fence (membarrier) before it frees a region, and only for
 *     regions a hit ever parked. Threads hitting the same or different regions write only their own
 *     records (the LRU stamp excepted: a plain store on the region at put).
 *   - Parked references. What a hit returns is the thread's hold: a copy of the region's start, end and
 *     handle, its own pointer per get (compare registrations by handle, not by pointer; ops callbacks
 *     receive the region itself). Why a copy: a hold can then be put by any thread (the putter clears
 *     that hold; no other thread writes it meanwhile), whereas a per-thread count of one shared region
 *     pointer could not be decremented by another thread without a read-modify-write. A thread with
 *     all its holds taken (nested gets) gets a counted reference on the region (one atomic RMW at get
 *     and at put, as a miss does). A thread that exits holding keeps its holds counted in its record
 *     (records are recycled, never freed; a new owner skips taken holds); fork() keeps them as they are.
 *   - The notifier takes no cache lock (so a signal handler that munmaps while its thread is inside a
 *     cache call cannot deadlock): it marks regions with one atomic exchange each.
 * Lifetime
 *   - A region is valid for a holder from get until the matching put, even after invalidation or
 *     destroy. The region's memory is the cache's; it is freed after the last put (after an RCU grace
 *     period).
 *   - umn_regcache_destroy() with regions in use is diagnosed; those regions stay registered until
 *     their put, which deregisters them and frees the cache's remains with the last one. No leak.
 *   - A region whose counted references are gone but which a hold still parks waits on the cache's
 *     orphan list; the put that clears the last hold of an invalid region deregisters it (a put racing
 *     with the invalidation pins the cache until it has taken the lock; else the next get, put or flush).
 * Context
 *   - get/put/flush/create/destroy: any thread, may sleep (get and flush on the lock and on a running
 *     invalidation); never from a notifier callback, from ops callbacks of the same cache, nor from a
 *     signal handler (not async-signal-safe).
 *   - ops->reg and ops->dereg run in a cache call, with the cache lock held. They may allocate, free,
 *     munmap (dereg may unmap memory itself) and sleep; they must not call this cache.
 *   - ops->invalidate (optional) runs synchronously inside the notifier: on the thread that unmaps,
 *     possibly inside free(), fork() or a signal handler. Once per region, for the first invalidation
 *     that hits it while valid. It must not sleep on locks the unmapping code may hold, allocate,
 *     unmap, or call the cache.
 * Memory ordering
 *   - What reg wrote to the region (handle, private device state) is visible to every thread that gets
 *     the region (release on acceptance, acquire on lookup).
 *   - A put happens-before the dereg of that region.
 *
 * Overheads (bench/regcache_bench.cc against UCX 1.13.1's ucs_rcache, one run, thread CPU time on the
 * shared 2-vCPU development VM; docs/PERFORMANCE.md has the table and the command): hit (get + put)
 * 13 ns (UCX 57); hits over 4096 regions 15 ns (UCX 65); two threads hitting distinct regions 13 ns
 * each (UCX 75-90); a miss with a no-op reg no slower than UCX's; one munmap over 4096 cached regions
 * within 10% of UCX (noisy); a getter racing mmap(MAP_FIXED): 0 stale registrations.
 */
#ifndef UMN_REGCACHE_H
#define UMN_REGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "umn/umn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How many times a miss re-registers after an invalidation raced with its reg before -EBUSY. */
#define UMN_REGCACHE_MAX_RETRIES 16

/** A registered range. start/end/handle are the user's to read; reg sets handle. */
struct umn_regcache_region {
	uint64_t start;  /* aligned, inclusive */
	uint64_t end;    /* aligned, exclusive */
	void *handle;    /* set by ops->reg: the device's registration (MR, buffer index...) */
	/* The cache allocates regions with private fields after these; never allocate one yourself. */
};

struct umn_regcache_ops {
	/** Register [region->start, region->end) and set region->handle. Return 0 or -errno (-ENOMEM:
	 *  the cache evicts unused regions and retries once). Context: cache lock held (see above). */
	int (*reg)(void *ctx, struct umn_regcache_region *region);
	/** Drop a registration reg made. Context: cache lock held; never from a notifier. */
	void (*dereg)(void *ctx, struct umn_regcache_region *region);
	/** Optional: the region's memory is changing; runs synchronously inside the notifier (Context). */
	void (*invalidate)(void *ctx, struct umn_regcache_region *region);
};

struct umn_regcache_params {
	size_t max_regions;   /* cached regions kept; 0: unlimited */
	uint64_t max_bytes;   /* bytes of cached regions kept; 0: unlimited */
	uint64_t alignment;   /* power of two; 0: the page size */
	unsigned flags;       /* none defined yet: must be 0 */
};

/** Counters since create. Each is exact when no call is running. */
struct umn_regcache_stats {
	uint64_t hits;           /* gets answered by a cached region (no reg) */
	uint64_t misses;         /* gets that registered (each successful reg counts once) */
	uint64_t retries;        /* registrations redone because an invalidation raced with reg */
	uint64_t invalidations;  /* regions invalidated by a notifier (once per region) */
	uint64_t evictions;      /* unused regions dropped for the limits or for an -ENOMEM retry */
	uint64_t regions;        /* regions cached now (valid or awaiting their deferred removal) */
	uint64_t bytes;          /* their bytes */
};

struct umn_regcache;

/**
 * umn_regcache_create - a cache of registrations of memory of @mm.
 * @mm: the address space whose invalidations drop regions (umn_mm_process() for real memory); must
 *      outlive the cache.
 * @params: limits, alignment, flags (NULL: all defaults). @ops: reg and dereg required. @ctx: passed to ops.
 * Context: may sleep. Return: 0 and *out, -EINVAL (NULL mm/ops/out, missing reg/dereg, alignment not
 * a power of two, unknown flags), -ENOMEM.
 */
UMN_API int umn_regcache_create(struct umn_mm *mm, const struct umn_regcache_params *params,
				const struct umn_regcache_ops *ops, void *ctx, struct umn_regcache **out);

/**
 * umn_regcache_get - a referenced region covering [addr, addr + len), aligned outward.
 * Context: may sleep (misses); see the header's Context. Return: 0 and *out; -EINVAL (NULL rc/out,
 * len 0, the aligned range overflows); reg's -errno; -EBUSY after UMN_REGCACHE_MAX_RETRIES
 * invalidations raced with reg; -EINVAL after the address space was released. Paired with put.
 */
UMN_API int umn_regcache_get(struct umn_regcache *rc, const void *addr, size_t len,
			     struct umn_regcache_region **out);

/**
 * umn_regcache_put - drop a reference from get. The last reference of a region that left the cache
 * deregisters it here. A put without a matching get is diagnosed (umn_set_diagnostic_hook) and ignored.
 * Context: may sleep when it deregisters.
 */
UMN_API void umn_regcache_put(struct umn_regcache *rc, struct umn_regcache_region *region);

/** umn_regcache_flush - deregister now every cached region that is invalid or unused (so nothing is
 *  cached but regions in use), and drop notifiers no longer needed. Context: may sleep. */
UMN_API void umn_regcache_flush(struct umn_regcache *rc);

/** umn_regcache_destroy - flush and free. Regions still in use are diagnosed and stay registered until
 *  their put (which frees what remains). NULL is ignored. Context: may sleep. */
UMN_API void umn_regcache_destroy(struct umn_regcache *rc);

/** umn_regcache_stats - fill *out. Context: may sleep (takes the cache lock briefly).
 *  (The function and the struct share the name the issue fixed; C++ code writes `struct
 *  umn_regcache_stats` for the type.) */
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
UMN_API void umn_regcache_stats(struct umn_regcache *rc, struct umn_regcache_stats *out);
#if defined(__cplusplus) && defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* UMN_REGCACHE_H */
