/*
 * umn.h - userspace MMU notifiers: the C API.
 *
 * The Linux kernel's mmu_notifier / mmu_interval_notifier subsystem as a userspace library. Compiles as
 * C11 and as C++20.
 *
 * Which kernel API: include/linux/mmu_notifier.h of Linux 7.1, the two-pass interval notifiers included
 * (invalidate_start / invalidate_finish, struct mmu_interval_notifier_finish: upstream 7aba71dbc416), so
 * arch_invalidate_secondary_tlbs (6.6+) and no change_pte (gone in 6.10). Names are the kernel's with
 * mmu_ replaced by umn_ (MMU_ by UMN_, struct mm_struct by struct umn_mm), so a driver's notifier code
 * ports by that rename plus <umn/kcompat.h> (the kernel names the rename cannot reach: ERR_PTR and
 * friends, the _locked calls, __umn_notifier_register, mm_has_notifiers). docs/porting.md has the table
 * kernel name -> umn name, every deliberate difference and why, and how to port a driver.
 *
 * Errors are negative errno values (the kernel's, where the kernel fails the same way); pointer-returning
 * calls return error pointers where the kernel does (umn_notifier_get; see "Error pointers"). An errno
 * names a kind of failure, and the "Return:" of each call lists every cause it has there:
 *   -EINVAL     the call does not apply: NULL or error-pointer arguments, bad ops, a range with
 *               start >= end, an object already in the state the call would put it in, or an address
 *               space already released
 *   -EOVERFLOW  a number out of range: insert's length of 0 or a range past the top of the space, a full
 *               counter (get at UINT_MAX users)
 *   -ENOMEM     out of memory (also alloc_notifier returning NULL)
 *   -EAGAIN     a non-blockable invalidation would have to sleep
 *   -EDEADLK    called from a callback, where the call would wait for its own invalidation
 * Misuse the kernel would BUG or WARN on is also reported through the diagnostic hook (see the end).
 *
 * Locking
 *   - Each address space (struct umn_mm) has one subscription lock. It guards the interval tree's
 *     structure, the deferred insert/remove list, the count of active invalidations and the writes of the
 *     address space's sequence number. It is held only for short sections; no callback is ever called
 *     with it held.
 *   - The interval tree is walked without any lock during an invalidation: an odd sequence number freezes
 *     its structure (inserts and removes are deferred until the last overlapping invalidation ends).
 *   - Classic notifiers (struct umn_notifier) are walked under userspace RCU; the list changes under the
 *     subscription lock.
 *   - The "user lock" is the caller's own: the lock a driver takes both in its invalidate callback
 *     (around umn_interval_set_seq) and around umn_interval_read_retry. umn never takes it.
 *
 * Lifetime
 *   - struct umn_interval_notifier, struct umn_interval_notifier_finish and struct umn_notifier are owned
 *     by the caller and embedded in the caller's objects. An interval notifier may be freed once
 *     umn_interval_notifier_remove() has returned; a finish record once its invalidate_finish ran.
 *   - An interval notifier or classic registration keeps its umn_mm's memory alive: umn_mm_destroy()
 *     tears the address space down at once, but its memory goes with the last remove / unregister / put.
 *
 * Context
 *   - Invalidate callbacks may sleep when umn_notifier_range_blockable(range) is true, and must not
 *     when it is false (return false / -EAGAIN instead).
 *   - A callback must not call umn_interval_notifier_remove(), umn_interval_read_begin(),
 *     umn_notifier_register/unregister/get (put is allowed), umn_notifier_synchronize(),
 *     or umn_mm_destroy(): each may wait for the invalidation that is running the callback. (remove
 *     and read_begin from an interval callback of the same address space are detected when they would
 *     wait: misuse, diagnosed, and they return instead of hanging.)
 *   - Never hold the user lock across umn_interval_read_begin() or umn_interval_notifier_remove().
 *   - Callbacks on umn_mm_process() run inside munmap, madvise, mremap, ..., which glibc declares
 *     __leaf__ (the compiler assumes they never call back into the calling file). So a callback may
 *     only touch state reachable from its notifier or otherwise escaped: a file-static variable that
 *     only the callback writes may read as unchanged after a munmap in the same file
 *     (tests/c_api/process_callback_state.c shows both).
 *
 * Memory ordering
 *   - umn_interval_set_seq() is a release store; umn_interval_read_begin() acquires it. What an
 *     invalidate callback wrote before set_seq is visible to a reader that then sees the new seq.
 *   - umn_interval_read_retry() relies on the user lock for ordering; umn_interval_check_retry() is an
 *     acquire load and may be called without it (true is reliable, false is only a hint).
 *
 * docs/locking.md holds the sequence-number state table and the reader/invalidator interleavings.
 */
#ifndef UMN_UMN_H
#define UMN_UMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UMN_API __attribute__((visibility("default")))
#else
#define UMN_API
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Error pointers                                                                                    */
/*
 * The kernel's <linux/err.h> convention, for the calls where the kernel uses it (umn_notifier_get, and
 * what alloc_notifier may return): a pointer-returning call that fails returns the negative errno
 * itself, cast to a pointer, in the top UMN_MAX_ERRNO addresses (never a valid object). Functions, not
 * macros, as in the kernel: the argument is type-checked and evaluated once. C++ callers cast
 * UMN_ERR_PTR's result to the object type (static_cast). <umn/kcompat.h> gives them the kernel's names.
 */
#define UMN_MAX_ERRNO 4095

/** UMN_ERR_PTR - the error pointer for error (a negative errno in [-UMN_MAX_ERRNO, -1]). */
static inline void *UMN_ERR_PTR(long error)
{
	return (void *)(intptr_t)error;
}
/** UMN_PTR_ERR - the negative errno inside an error pointer (meaningless for other pointers). */
static inline long UMN_PTR_ERR(const void *ptr)
{
	return (long)(intptr_t)ptr;
}
/** UMN_IS_ERR - is ptr an error pointer? (NULL is not.) */
static inline bool UMN_IS_ERR(const void *ptr)
{
	return (uintptr_t)ptr >= (uintptr_t)-UMN_MAX_ERRNO;
}
/** UMN_IS_ERR_OR_NULL - is ptr NULL or an error pointer? */
static inline bool UMN_IS_ERR_OR_NULL(const void *ptr)
{
	return ptr == NULL || UMN_IS_ERR(ptr);
}

/* ------------------------------------------------------------------------------------------------ */
/* Address spaces                                                                                    */

/** An address space: its interval notifiers, classic notifiers and sequence numbers. Opaque. */
struct umn_mm;

/**
 * umn_mm_create - create a simulated address space, whose invalidations the caller drives.
 * Context: any thread. Return: the address space, or NULL with errno ENOMEM.
 */
UMN_API struct umn_mm *umn_mm_create(void);

/**
 * umn_mm_destroy - tear an address space down and drop the creator's reference.
 * Calls umn_notifier_release(mm) if that has not run yet (and waits for a teardown in progress).
 * Interval notifiers still inserted, and classic registrations still held, keep the memory alive until
 * they are removed / unregistered / put (the address space is dead meanwhile: inserts, registers and gets
 * fail with -EINVAL); such leftovers are WARNed (a warning, never an abort: their remove / unregister /
 * put stay valid).
 * Context: not from a callback; may sleep. NULL is ignored.
 */
UMN_API void umn_mm_destroy(struct umn_mm *mm);

/**
 * umn_mm_has_notifiers - does mm have its subscription state? The kernel's mm_has_notifiers(): the
 * first insert, register or get with valid arguments creates it (also a get whose alloc_notifier then
 * fails), and so does umn_notifier_release; it stays for mm's life, also after every notifier is
 * gone. False means no callback can run for mm now. A hint: it may turn true right after it returned false
 * (the kernel's callers hold mmap_lock or the page-table lock; a umn caller holds nothing).
 * Context: any thread, signal handlers included; takes no lock. Return: false also for NULL mm.
 */
UMN_API bool umn_mm_has_notifiers(const struct umn_mm *mm);

/**
 * umn_mm_process - this process's own address space, kept current by the process hooks
 * (interposed munmap, mremap, madvise, brk, shmdt, mmap(MAP_FIXED), mprotect).
 * Context: any thread. Return: the process address space (never freed).
 */
UMN_API struct umn_mm *umn_mm_process(void);

/* ------------------------------------------------------------------------------------------------ */
/* Ranges                                                                                            */

enum umn_notifier_event {
	UMN_NOTIFY_UNMAP = 0,          /* munmap, or mremap moving the range */
	UMN_NOTIFY_CLEAR,              /* entries cleared for another reason (madvise, reclaim) */
	UMN_NOTIFY_PROTECTION_VMA,     /* mprotect-style change covering the whole range */
	UMN_NOTIFY_PROTECTION_PAGE,    /* per-page protection change (fork copy-on-write) */
	UMN_NOTIFY_SOFT_DIRTY,         /* soft-dirty accounting; same pages, same access */
	UMN_NOTIFY_RELEASE,            /* address-space teardown; only from umn_notifier_release() */
	UMN_NOTIFY_MIGRATE,            /* migration; owner names who started it */
	UMN_NOTIFY_EXCLUSIVE,          /* made device-exclusive; owner names who asked */
};

#define UMN_NOTIFIER_RANGE_BLOCKABLE (1u << 0)

/** One invalidation: [start, end) of mm, why, and whether callbacks may sleep. */
struct umn_notifier_range {
	struct umn_mm *mm;
	uint64_t start;
	uint64_t end;                  /* exclusive */
	enum umn_notifier_event event;
	unsigned flags;                /* UMN_NOTIFIER_RANGE_BLOCKABLE; set by the start call itself */
	void *owner;                   /* for MIGRATE / EXCLUSIVE: who started it; NULL otherwise */
	unsigned umn_private;          /* not API: what range_start did, for range_end; zero it or use _init */
};

/** umn_notifier_range_init - fill a range (owner NULL). Context: any. */
UMN_API void umn_notifier_range_init(struct umn_notifier_range *range, enum umn_notifier_event event,
				     unsigned flags, struct umn_mm *mm, uint64_t start, uint64_t end);
/** umn_notifier_range_init_owner - fill a range with an owner cookie. Context: any. */
UMN_API void umn_notifier_range_init_owner(struct umn_notifier_range *range,
					   enum umn_notifier_event event, unsigned flags,
					   struct umn_mm *mm, uint64_t start, uint64_t end, void *owner);
/** umn_notifier_range_blockable - may callbacks for this range sleep? */
UMN_API bool umn_notifier_range_blockable(const struct umn_notifier_range *range);

/* ------------------------------------------------------------------------------------------------ */
/* Interval notifiers                                                                                */

/**
 * The interval an interval notifier watches, embedded in it as ->interval_tree (the kernel's field, of
 * its type struct interval_tree_node), and its link into the address space's index.
 * start and last are API, read-only: insert sets them before it returns 0 (also when the notifier is
 * still deferred), and they keep their values until the notifier is inserted again, so a driver may read
 * sub->interval_tree.start / .last as drivers/infiniband's ib_umem_start() / ib_umem_end() do. Writing
 * them while the notifier is inserted corrupts the index. leaf is not API.
 */
struct umn_interval_tree_node {
	uint64_t start;                /* API, read-only: the first address watched */
	uint64_t last;                 /* API, read-only: the last address watched (inclusive): start + length - 1 */
	void *leaf;                    /* not API: the index leaf holding this interval; NULL when not indexed */
};

struct umn_interval_notifier;

/**
 * A second-pass record, embedded by the caller (never allocated by umn). invalidate_start hands it out
 * through *finish; umn sets ->notifier, queues it through ->link without allocating, and passes it back
 * to invalidate_finish. One record serves one invalidation at a time.
 */
struct umn_interval_notifier_finish {
	struct umn_interval_notifier_finish *link; /* not API: umn's queue link while queued */
	struct umn_interval_notifier *notifier;    /* set by umn before the second pass */
};

struct umn_interval_notifier_ops {
	/**
	 * invalidate - stop the device from using [range->start, range->end) before returning.
	 * Must take the user lock and call umn_interval_set_seq(sub, cur_seq) under it.
	 * Context: may sleep iff umn_notifier_range_blockable(range). Return: true; false only when
	 * the range is not blockable and the work would need to sleep.
	 */
	bool (*invalidate)(struct umn_interval_notifier *sub, const struct umn_notifier_range *range,
			   unsigned long cur_seq);
	/**
	 * invalidate_start - first pass of a two-pass invalidation: start the device work, do not wait.
	 * *finish is NULL on entry. Leave it NULL to say the first pass did the whole job (as invalidate);
	 * set it to a record the caller owns to ask for invalidate_finish after the whole tree walk.
	 * Return: as invalidate. A false return drops any record set in *finish.
	 */
	bool (*invalidate_start)(struct umn_interval_notifier *sub, const struct umn_notifier_range *range,
				 unsigned long cur_seq, struct umn_interval_notifier_finish **finish);
	/**
	 * invalidate_finish - second pass: wait for what invalidate_start started. Called exactly once per
	 * record queued, in the order of the first passes, before umn_notifier_invalidate_range_start
	 * returns. Cannot fail; is called even for non-blockable ranges (so do not defer blocking work then).
	 */
	void (*invalidate_finish)(struct umn_interval_notifier_finish *finish);
};

/**
 * An interval notifier. Embed it. API: interval_tree.start / .last (read-only, see above) and mm (set by
 * insert, read-only), as in the kernel; the other fields are not API. 64 bytes on LP64 (the kernel's: 88).
 */
struct umn_interval_notifier {
	struct umn_interval_tree_node interval_tree;
	const struct umn_interval_notifier_ops *ops;
	struct umn_mm *mm;
	struct umn_interval_notifier *deferred_next;
	unsigned long invalidate_seq;
	uint32_t state;
};

/**
 * umn_interval_notifier_insert - watch [start, start + length) of mm.
 * The notifier may not be in the tree yet when this returns (deferred while invalidations run); always
 * build device mappings through the umn_interval_read_begin() / umn_interval_read_retry() loop.
 * Index nodes are allocated here, outside the subscription lock (never on the invalidate walk).
 * Context: may sleep: it waits for invalidations that started before mm had any subscription, so a thread
 * must not insert between its own range_start and range_end on an address space without subscriptions.
 * Not from a callback. Return: 0; -EOVERFLOW when length is 0 or start + length overflows (not
 * diagnosed); -EINVAL (misuse, diagnosed) for ops with neither invalidate nor invalidate_start, with
 * invalidate_start but no invalidate_finish, NULL arguments, a notifier already inserted, or a dead
 * (destroyed or released) address space; -ENOMEM. After an error, do not call remove.
 */
UMN_API int umn_interval_notifier_insert(struct umn_interval_notifier *sub, struct umn_mm *mm,
					 uint64_t start, uint64_t length,
					 const struct umn_interval_notifier_ops *ops);

/**
 * umn_interval_notifier_remove - stop watching. When it returns no callback for sub runs or will run,
 * and sub may be freed. Waits for the end of an invalidation that froze the tree.
 * Context: may sleep; not from a callback; no user lock held. Removing twice, or a notifier never
 * inserted, is diagnosed (debug builds abort naming the call; release builds count it and return); so is
 * a remove from an interval callback of the same address space that would wait for that callback's own
 * invalidation (nothing is removed).
 */
UMN_API void umn_interval_notifier_remove(struct umn_interval_notifier *sub);

/**
 * umn_interval_read_begin - begin a device fault: returns the seq to check with read_retry. Returns at
 * once unless sub is being invalidated (or was inserted during a running invalidation): then waits for
 * that invalidation epoch to end. Takes no lock and writes nothing shared when sub is not invalidated.
 * Context: may sleep; no user lock held; not from a callback. Return: the notifier's sequence number;
 * 0 (misuse, diagnosed) for NULL, a notifier that is not inserted (never inserted, or removed), or a call
 * from an interval callback of the same address space that would wait for its own invalidation.
 */
UMN_API unsigned long umn_interval_read_begin(struct umn_interval_notifier *sub);

/**
 * umn_interval_read_retry - true if an invalidation of sub ran since read_begin returned seq: drop what
 * was built and retry. Context: user lock held (it orders this read against set_seq).
 * NULL is misuse: diagnosed, answers true.
 */
UMN_API bool umn_interval_read_retry(struct umn_interval_notifier *sub, unsigned long seq);

/**
 * umn_interval_check_retry - lock-free early hint of read_retry. True is reliable; false may be stale.
 * Context: any. NULL is misuse: diagnosed, answers true.
 */
UMN_API bool umn_interval_check_retry(struct umn_interval_notifier *sub, unsigned long seq);

/**
 * umn_interval_set_seq - record that an invalidation with cur_seq is running on sub.
 * Context: only from invalidate / invalidate_start, with the user lock held. NULL is misuse: diagnosed.
 */
UMN_API void umn_interval_set_seq(struct umn_interval_notifier *sub, unsigned long cur_seq);

/* ------------------------------------------------------------------------------------------------ */
/* Invalidation, as the memory-management side calls it                                             */

/**
 * umn_notifier_invalidate_range_start - invalidate [range->start, range->end): every overlapping
 * interval notifier (both passes), then every classic notifier's invalidate_range_start. Sets
 * UMN_NOTIFIER_RANGE_BLOCKABLE. Must be paired with umn_notifier_invalidate_range_end(range) on the
 * same range object. Pairs may nest and run concurrently.
 * Context: may sleep. A NULL range or address space is misuse: diagnosed and ignored (its _end is then a
 * no-op). A range with start >= end is WARNed (the kernel's walk would find nothing in it) and ignored
 * the same way.
 *
 * Classic notifiers' failures, and where umn differs from the kernel (5.12+):
 *   - A classic invalidate_range_start that fails a blockable range is a driver bug: WARNed and treated
 *     as success; every start is then ended once, by range_end. (The kernel has already called every
 *     invalidate_range_end inside the start, and range_end calls them again.)
 *   - On a non-blockable range a failure (WARNed unless -EAGAIN, and WARNed if that notifier also has
 *     invalidate_range_end) does not stop the walk: every classic start is still called, then every
 *     classic notifier that has invalidate_range_end gets it, once, before _nonblock returns -EAGAIN. As
 *     the kernel, except that umn always returns -EAGAIN (the kernel returns the notifier's error code),
 *     and that umn also ends the interval-tree half that had succeeded (the kernel leaves that epoch open,
 *     so readers and removes of the hit intervals would wait forever: docs/semantics.md 6.1(6)).
 *   - An interval notifier's non-blockable failure stops its walk and no classic notifier is called.
 */
UMN_API void umn_notifier_invalidate_range_start(struct umn_notifier_range *range);

/**
 * umn_notifier_invalidate_range_start_nonblock - as _start, but callbacks must not sleep.
 * Return: 0 (call _end later); -EAGAIN when a callback would have to sleep (do NOT call _end: the
 * address space is already back to not-invalidating; see the failure rules above); -EINVAL for NULL
 * (misuse, diagnosed) or start >= end (WARNed); no _end after either.
 */
UMN_API int umn_notifier_invalidate_range_start_nonblock(struct umn_notifier_range *range);

/** umn_notifier_invalidate_range_end - end the invalidation started on range. Context: may sleep. */
UMN_API void umn_notifier_invalidate_range_end(struct umn_notifier_range *range);

/**
 * umn_notifier_release - address-space teardown: every interval notifier gets exactly one blockable
 * UMN_NOTIFY_RELEASE invalidation over the whole space (both passes), then every classic notifier's
 * ->release, and the classic list is emptied. Runs once: a later call, or one concurrent with the teardown
 * on another thread, waits until that teardown has finished and does nothing else (so when any release
 * returns, every RELEASE and ->release has run). Interval notifiers stay
 * inserted (remove them as usual); new inserts fail with -EINVAL. An insert that is still deferred by a
 * running invalidation is waited for, so that it too gets its RELEASE.
 * The walk covers the last byte of the space too; the range passed to callbacks is [0, UINT64_MAX).
 * Context: may sleep; not from a callback (from one of its own teardown: detected, misuse, returns);
 * not between a range_start and its range_end on this thread.
 */
UMN_API void umn_notifier_release(struct umn_mm *mm);

/**
 * umn_notifier_clear_flush_young - test and clear the accessed bit of [start, end) in every classic
 * notifier's secondary mappings, flushing their TLBs: calls every notifier that has clear_flush_young
 * (newest first, inside one RCU read-side section) and ORs the answers.
 * Context: may sleep when the callbacks do; takes no lock (see "Classic ... registration" below).
 * Return: 1 if any notifier answered non-zero, else 0 (also with no classic notifier); -EINVAL for NULL
 * mm or start >= end (misuse, diagnosed), calling nothing.
 */
UMN_API int umn_notifier_clear_flush_young(struct umn_mm *mm, uint64_t start, uint64_t end);
/** umn_notifier_clear_young - as clear_flush_young, but calls clear_young (the flush may be skipped). */
UMN_API int umn_notifier_clear_young(struct umn_mm *mm, uint64_t start, uint64_t end);
/**
 * umn_notifier_test_young - is address young in some secondary mapping? Calls test_young newest first
 * and stops at the first non-zero answer. Context: as clear_flush_young. Return: 1 or 0; -EINVAL
 * (misuse, diagnosed) for NULL mm.
 */
UMN_API int umn_notifier_test_young(struct umn_mm *mm, uint64_t address);
/**
 * umn_notifier_arch_invalidate_secondary_tlbs - call every classic notifier's
 * arch_invalidate_secondary_tlbs (for secondary TLBs that share the CPU page tables).
 * Context: the caller may be in atomic context: callbacks must not sleep. Not from a callback.
 * NULL mm and start >= end (misuse, diagnosed) call nothing.
 */
UMN_API void umn_notifier_arch_invalidate_secondary_tlbs(struct umn_mm *mm, uint64_t start, uint64_t end);

/* ------------------------------------------------------------------------------------------------ */
/* Classic (whole address space) notifiers and refcounted registration                               */
/*
 * Locking
 *   - The list of classic notifiers is walked under userspace RCU, liburcu's "bulletproof" flavour
 *     (urcu-bp): no lock on a walk. Why bp: callbacks must be able to sleep (so not QSBR), and a library
 *     cannot ask the application to rcu_register_thread() every thread that may invalidate (memb,
 *     signal, mb require it); urcu-bp registers a thread on its first read-side section and is
 *     signal-safe. liburcu is internal to libumn; an application may use any liburcu flavour itself.
 *   - register / unregister / put change the list under the address space's subscription lock; get
 *     also serialises its lookup-allocate-register per address space, so alloc_notifier runs once per
 *     (ops, mm), with that registration lock held.
 *   - Registration vs in-flight invalidations (the kernel takes mm_take_all_locks): register, and a get
 *     that allocates, wait until no invalidation range of the address space is in flight (between its
 *     range_start and range_end). So a new notifier never gets an invalidate_range_end without its start,
 *     and no invalidation that began before registration is still running when it returns. There is no
 *     writer preference: a continuous stream of overlapping ranges delays registration (a WARN every
 *     10 s of waiting). A thread must not register between its own range_start and range_end: that
 *     never returns (the 10 s WARN says so).
 * Lifetime
 *   - A registered notifier holds a reference on its umn_mm (memory only; see umn_mm_destroy) until
 *     unregister returns, or until the free that follows the last put.
 *   - register / unregister: the caller owns the memory. After unregister returns it may be freed or
 *     registered again; umn never calls free_notifier for it.
 *   - get / put: umn owns the notifier between alloc_notifier and free_notifier. free_notifier runs on
 *     liburcu's callback thread, after the last put and a grace period (no callback of it is running or
 *     can start). umn_notifier_synchronize() waits for every free queued before it, so code behind
 *     free_notifier (a plugin, a dlopen'ed driver) can then be unloaded.
 *   - Teardown (umn_notifier_release, umn_mm_destroy) calls each ->release once and empties the list,
 *     but does not end registrations: unregister and put stay valid and must still be called. Once it
 *     has begun, register and get fail with -EINVAL / EINVAL.
 * Context
 *   - release, invalidate_range_start/end (when the range is blockable), the young callbacks, may
 *     sleep. invalidate_range_start/end of a non-blockable range, arch_invalidate_secondary_tlbs and
 *     free_notifier must not.
 *   - A callback (all of them run inside an RCU read-side section) must not call register, unregister,
 *     get or umn_notifier_synchronize (detected: misuse, -EDEADLK), nor umn_notifier_release or
 *     umn_mm_destroy. put may be called from any callback, ->release included. free_notifier must not
 *     call umn_notifier_synchronize (detected) nor any other umn call that waits.
 *   - ->release may run concurrently with other callbacks of the same notifier (they may be in flight
 *     on other threads); umn calls it at most once per registration.
 *   - invalidate_range_start may fail (-EAGAIN) only for a non-blockable range, and a notifier that can
 *     fail must not have invalidate_range_end: the others' ends are called, but the failing one cannot
 *     tell its end from a successful one. Violations are WARNed (see umn_notifier_invalidate_range_start).
 * Memory ordering
 *   - register publishes the notifier (ops, mm, users) with a release store; walks load it with acquire.
 *   - What a callback did happens-before unregister's return, and before free_notifier runs.
 */

struct umn_notifier;

struct umn_notifier_ops {
	/** Address-space teardown (or unregister): drop every secondary mapping, build no new one. Once. */
	void (*release)(struct umn_notifier *sub, struct umn_mm *mm);
	/** Test-and-clear accessed bits of [start, end) and flush. Return: non-zero if any was young. */
	int (*clear_flush_young)(struct umn_notifier *sub, struct umn_mm *mm, uint64_t start, uint64_t end);
	/** As clear_flush_young, without the flush. */
	int (*clear_young)(struct umn_notifier *sub, struct umn_mm *mm, uint64_t start, uint64_t end);
	/** Test only. Return: non-zero if address is young. */
	int (*test_young)(struct umn_notifier *sub, struct umn_mm *mm, uint64_t address);
	/** Pages still mapped; until the end, create no secondary mapping in the range.
	 *  Return: 0, or -EAGAIN only if the range is not blockable and the work would sleep. */
	int (*invalidate_range_start)(struct umn_notifier *sub, const struct umn_notifier_range *range);
	/** Pages unmapped (maybe freed); secondary mappings may be built again. */
	void (*invalidate_range_end)(struct umn_notifier *sub, const struct umn_notifier_range *range);
	/** Secondary TLBs sharing the CPU page tables. Must not sleep. Exclusive with start/end. */
	void (*arch_invalidate_secondary_tlbs)(struct umn_notifier *sub, struct umn_mm *mm, uint64_t start,
					       uint64_t end);
	/** get only: a new notifier for mm (umn sets its ops); on failure an error pointer
	 *  (UMN_ERR_PTR(-errno), handed back by get as it is) or NULL (get returns UMN_ERR_PTR(-ENOMEM)).
	 *  Runs with the address space's registration lock held: must not call get/put on mm. May sleep. */
	struct umn_notifier *(*alloc_notifier)(struct umn_mm *mm);
	/** get only: free what alloc_notifier returned. Runs on liburcu's callback thread; must not sleep. */
	void (*free_notifier)(struct umn_notifier *sub);
};

/** A classic notifier. Set ops before umn_notifier_register(); the umn_private words are not API. */
struct umn_notifier {
	uintptr_t umn_private[6];      /* not API: RCU list link (next, pprev), liburcu rcu_head (2), state, flags */
	const struct umn_notifier_ops *ops;
	struct umn_mm *mm;             /* set by register / get */
	unsigned users;                /* get/put count; 1 after register; guarded by the subscription lock */
};

/**
 * umn_notifier_register - subscribe sub (sub->ops set by the caller) to every event of mm, from now
 * until unregister or teardown. Waits until no invalidation of mm is in flight (see Locking above);
 * sets sub->mm and sub->users = 1; takes a reference on mm. New notifiers are called first.
 * Context: may sleep; not from a callback; not between a range_start and its range_end on this thread.
 * Return: 0; -EINVAL (misuse, diagnosed) for a NULL or error-pointer sub, NULL mm or ops, ops with arch_invalidate_secondary_tlbs together
 * with invalidate_range_start or _end, a notifier already registered, or an address space already
 * released; -ENOMEM; -EDEADLK (misuse) when called from a callback.
 */
UMN_API int umn_notifier_register(struct umn_notifier *sub, struct umn_mm *mm);

/**
 * umn_notifier_unregister - end a registration made by umn_notifier_register. Calls sub->ops->release
 * itself if teardown has not (so ->release runs once per registration either way), unlinks sub, waits
 * until no callback of sub is running (an RCU grace period: callbacks in flight on other threads finish
 * first), then drops the reference on mm. When it returns no callback of sub runs or will run; the
 * caller may free sub. Never calls free_notifier. Safe after teardown.
 * Context: may sleep; not from a callback (detected: misuse). Misuse, diagnosed and ignored: NULL
 * or error-pointer arguments, mm not sub->mm, sub not registered (twice), or sub obtained from
 * umn_notifier_get.
 */
UMN_API void umn_notifier_unregister(struct umn_notifier *sub, struct umn_mm *mm);

/**
 * umn_notifier_get - the one refcounted registration of (ops, mm): the ops pointer is the key.
 * If mm has a notifier obtained by get with these ops, increments its users and returns it. Otherwise
 * calls ops->alloc_notifier(mm) (once per key, even with concurrent gets), sets ->ops and registers it
 * as umn_notifier_register does (waiting for in-flight invalidations). Notifiers registered with
 * umn_notifier_register are never returned by get.
 * Context: may sleep; not from a callback; not between a range_start and its range_end on this thread.
 * Return: the notifier, or an error pointer (never NULL; test with UMN_IS_ERR, read with UMN_PTR_ERR):
 * -EINVAL for NULL ops or mm, ops without alloc_notifier or free_notifier (these misuse, diagnosed), or an
 * address space whose teardown has begun (not diagnosed: racing teardown is legal; a registration of these ops made
 * before the teardown is not returned, its ->release has run); the error pointer alloc_notifier
 * returned, as it is; -ENOMEM when alloc_notifier returns NULL or umn runs out of memory; -EOVERFLOW
 * when users is already UINT_MAX (unchanged); -EDEADLK (misuse) from a callback. errno is not set.
 * After a failed registration the fresh notifier is given back to free_notifier at once (it was never
 * visible).
 */
UMN_API struct umn_notifier *umn_notifier_get(const struct umn_notifier_ops *ops, struct umn_mm *mm);

/**
 * umn_notifier_put - drop one user of a notifier from umn_notifier_get. The last put unlinks it (no
 * ->release: stop and drop your secondary mappings before) and, after a grace period, calls
 * ops->free_notifier(sub) on liburcu's callback thread, then drops the reference on mm. Does not wait.
 * Context: any thread, including every callback (->release included); not from a signal handler.
 * Never waits for a grace period, an invalidation or a callback, but takes the address space's
 * subscription lock for a few instructions (it may block while another thread holds it; no callback
 * runs under it) and, on umn_mm_process(), makes two rt_sigprocmask calls.
 * Misuse, diagnosed and ignored: NULL, an error pointer (a failed get has nothing to put), or a notifier
 * not from get; a put with users already 0 (more puts than gets) changes nothing either.
 */
UMN_API void umn_notifier_put(struct umn_notifier *sub);

/**
 * umn_notifier_synchronize - wait until every free_notifier queued by a put before this call has run
 * (rcu_barrier, not only a grace period). Call it after your last put, before unloading the code behind
 * free_notifier. Context: may sleep; not from a callback nor from free_notifier (detected: misuse).
 */
UMN_API void umn_notifier_synchronize(void);

/* ------------------------------------------------------------------------------------------------ */
/* Diagnostics                                                                                       */

/**
 * Called for every misuse (double remove, bad range, ...) and every kernel-WARN condition, with the
 * name of the public call and a message. Misuse is what the caller of a call did wrong: a NULL or
 * foreign handle, a handle in the wrong state, a bad range, a call from a context the call forbids;
 * the same misuse is diagnosed the same way in every call. A kernel-WARN condition is what went wrong
 * elsewhere and is survivable: a callback breaking its own contract, leftovers at teardown. The default hook prints each distinct message once on
 * stderr; in debug builds (UMN_DEBUG_LEVEL >= 1) it also aborts on API misuse, unless the environment
 * variable UMN_DIAG=count is set. An installed hook replaces all of that (NULL restores the default).
 * Either way umn leaves the address space consistent and usable. Context: the hook may be called from
 * any umn call, with umn locks held; it must not call umn. (fn, context) is published as one pair: a
 * report racing with a change calls the old hook with the old context or the new with the new.
 * umn_set_diagnostic_hook itself: any thread, not from a signal handler.
 */
typedef void (*umn_diagnostic_fn)(void *context, const char *call, const char *message);
UMN_API void umn_set_diagnostic_hook(umn_diagnostic_fn fn, void *context);
/** How many diagnostics have been reported since the process started. */
UMN_API unsigned long umn_diagnostic_count(void);

#ifdef __cplusplus
}
#endif

#endif /* UMN_UMN_H */
