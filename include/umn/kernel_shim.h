/*
 * kernel_shim.h - an optional, minimal shim of the kernel primitives that drivers' notifier code uses
 * around the notifier calls (container_of, mutexes, spinlocks, kmalloc, atomics, wait queues, WARN_ON,
 * current->mm, and the mm locks and references that have no userspace meaning), on POSIX threads. A
 * starting point for a port, not a kernel emulation: it covers what the notifier parts of lib/test_hmm.c,
 * drivers/infiniband/core/umem_odp.c with mlx5, drivers/misc/sgi-gru and tests/port/kernel/ use. Include
 * it after <umn/kcompat.h>; GNU C (typeof, statement expressions), as kernel code is. docs/porting.md.
 *
 * Locking
 *   - struct mutex, spinlock_t: pthread mutexes (a spinlock may sleep here: userspace has no atomic
 *     context to protect). wait_queue_head_t: a mutex and a condition variable; wait_event() re-tests its
 *     condition under that mutex and wake_up_all() broadcasts under it, so no wake-up is lost.
 *   - mmap_read_lock / mmap_write_lock / mmap_assert_*: no-ops. umn has no mmap_lock. The kernel's fault
 *     path takes it to walk the VMAs (hmm_range_fault, get_user_pages), not for the notifier protocol:
 *     that protocol (read_begin, read the pages, user lock, read_retry) alone guarantees that no
 *     translation read before an invalidation is installed after it, whatever else runs.
 * Lifetime
 *   - mmget_not_zero / mmput / mmgrab / mmdrop: no-ops (mmget_not_zero answers true). A umn_mm is the
 *     caller's: a simulated one lives until umn_mm_destroy, umn_mm_process() forever; an inserted interval
 *     notifier or a registration keeps its memory alive (umn.h). There is no "mm is exiting" state to
 *     test: umn_notifier_release / umn_mm_destroy are explicit calls.
 *   - current is one process-wide task whose mm the program sets (current->mm = umn_mm_process(), or a
 *     simulated address space); a userspace process has one address space.
 *   - kfree / kvfree are free(). Mind the trap on umn_mm_process(): free() may munmap, and the munmap
 *     runs invalidate callbacks on the freeing thread; never kfree while holding a lock those callbacks
 *     take (docs/porting.md, "free() under the driver's lock").
 * Context
 *   - might_sleep(), lockdep_assert_held(): no-ops. GFP flags are ignored (malloc may always sleep).
 *   - WARN_ON / WARN_ON_ONCE print the condition to stderr and evaluate to it; BUG_ON aborts.
 * Memory ordering
 *   - atomic_t operations are seq_cst (the kernel's value-returning atomics are fully ordered; the others
 *     are stronger here than there). READ_ONCE / WRITE_ONCE are relaxed atomic accesses.
 */
#ifndef UMN_KERNEL_SHIM_H
#define UMN_KERNEL_SHIM_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umn/umn.h"

/* ---- types and helpers ---- */
typedef unsigned gfp_t;
#define GFP_KERNEL 0u
#define GFP_NOWAIT 0u
#define __GFP_NOFAIL 0u
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define min(a, b) ({ __typeof__(a) min_a_ = (a); __typeof__(b) min_b_ = (b); min_a_ < min_b_ ? min_a_ : min_b_; })
#define max(a, b) ({ __typeof__(a) max_a_ = (a); __typeof__(b) max_b_ = (b); max_a_ > max_b_ ? max_a_ : max_b_; })
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* ---- diagnostics ---- */
#define WARN_ON(cond)                                                                               \
	({                                                                                          \
		bool warn_on_ = !!(cond);                                                          \
		if (unlikely(warn_on_))                                                             \
			fprintf(stderr, "WARNING: %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
		warn_on_;                                                                           \
	})
#define WARN_ON_ONCE(cond) WARN_ON(cond)
#define BUG_ON(cond)                                                                                \
	do {                                                                                        \
		if (unlikely(cond))                                                                 \
			abort();                                                                    \
	} while (0)
#define might_sleep() ((void)0)
#define lockdep_assert_held(lock) ((void)(lock))

/* ---- memory ---- */
static inline void *kmalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	return malloc(size);
}
static inline void *kzalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	return calloc(1, size);
}
static inline void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	(void)gfp;
	return calloc(n, size);
}
#define kvcalloc(n, size, gfp) kcalloc((n), (size), (gfp))
#define kfree(ptr) free((void *)(ptr))
#define kvfree(ptr) free((void *)(ptr))

/* ---- locks ---- */
struct mutex {
	pthread_mutex_t m;
};
#define mutex_init(lock) pthread_mutex_init(&(lock)->m, NULL)
#define mutex_destroy(lock) pthread_mutex_destroy(&(lock)->m)
#define mutex_lock(lock) pthread_mutex_lock(&(lock)->m)
#define mutex_unlock(lock) pthread_mutex_unlock(&(lock)->m)
#define mutex_trylock(lock) (pthread_mutex_trylock(&(lock)->m) == 0) /* 1 when taken, as the kernel's */
typedef struct mutex spinlock_t;
#define spin_lock_init(lock) mutex_init(lock)
#define spin_lock(lock) mutex_lock(lock)
#define spin_unlock(lock) mutex_unlock(lock)

/* ---- atomics ---- */
typedef struct {
	int counter;
} atomic_t;
#define atomic_set(v, i) __atomic_store_n(&(v)->counter, (i), __ATOMIC_SEQ_CST)
#define atomic_read(v) __atomic_load_n(&(v)->counter, __ATOMIC_SEQ_CST)
#define atomic_inc(v) ((void)__atomic_add_fetch(&(v)->counter, 1, __ATOMIC_SEQ_CST))
#define atomic_dec(v) ((void)__atomic_sub_fetch(&(v)->counter, 1, __ATOMIC_SEQ_CST))
#define atomic_dec_and_test(v) (__atomic_sub_fetch(&(v)->counter, 1, __ATOMIC_SEQ_CST) == 0)

/* ---- wait queues ---- */
typedef struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} wait_queue_head_t;
static inline void init_waitqueue_head(wait_queue_head_t *wq)
{
	pthread_mutex_init(&wq->lock, NULL);
	pthread_cond_init(&wq->cond, NULL);
}
static inline void wake_up_all(wait_queue_head_t *wq)
{
	pthread_mutex_lock(&wq->lock);
	pthread_cond_broadcast(&wq->cond);
	pthread_mutex_unlock(&wq->lock);
}
#define wait_event(wq, condition)                                                                   \
	do {                                                                                        \
		pthread_mutex_lock(&(wq).lock);                                                     \
		while (!(condition))                                                                \
			pthread_cond_wait(&(wq).cond, &(wq).lock);                                  \
		pthread_mutex_unlock(&(wq).lock);                                                   \
	} while (0)

/* ---- the task and its address space ---- */
struct task_struct {
	struct umn_mm *mm;
};
/* One definition across every file that includes this header (weak), set by the program. */
__attribute__((weak)) struct task_struct umn_kernel_shim_current;
#define current (&umn_kernel_shim_current)

/* No mmap_lock and no mm reference counts in userspace: see Locking and Lifetime above. */
#define mmap_read_lock(mm) ((void)(mm))
#define mmap_read_unlock(mm) ((void)(mm))
#define mmap_write_lock(mm) ((void)(mm))
#define mmap_write_unlock(mm) ((void)(mm))
#define mmap_assert_locked(mm) ((void)(mm))
#define mmap_assert_write_locked(mm) ((void)(mm))
#define mmget_not_zero(mm) ((void)(mm), true)
#define mmput(mm) ((void)(mm))
#define mmgrab(mm) ((void)(mm))
#define mmdrop(mm) ((void)(mm))

#endif /* UMN_KERNEL_SHIM_H */
