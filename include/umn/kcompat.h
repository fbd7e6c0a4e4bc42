/*
 * kcompat.h - the kernel names that a driver's notifier code uses and the rename (mmu_ -> umn_,
 * MMU_ -> UMN_, struct mm_struct -> struct umn_mm) cannot reach, mapped onto umn.h. Optional: include it
 * in code ported from the kernel (it includes umn.h); code written for umn does not need it.
 * docs/porting.md explains how to port a driver and what each name means in userspace.
 *
 *   kernel (after the rename)              here                  umn.h
 *   ERR_PTR PTR_ERR IS_ERR IS_ERR_OR_NULL   macros                UMN_ERR_PTR ... (inline functions)
 *   ERR_CAST PTR_ERR_OR_ZERO MAX_ERRNO      macros (PTR_ERR_OR_ZERO: over an inline function) built on the same
 *   mm_has_notifiers(mm)                    macro                 umn_mm_has_notifiers
 *   umn_notifier_get_locked                 inline function       umn_notifier_get
 *   umn_interval_notifier_insert_locked     inline function       umn_interval_notifier_insert
 *   __umn_notifier_register                 macro                 umn_notifier_register
 *   CONFIG_UMN_NOTIFIER (CONFIG_MMU_...)    macro, 1              (the notifier code is built)
 *
 * Why these live here and not in umn.h:
 *   - They are the kernel's names, unprefixed (ERR_PTR, mm_has_notifiers) or reserved (a leading "__" is
 *     reserved to the implementation in C and C++; umn keeps it out of its own API). A
 *     porter needs exactly those spellings, because the driver's code says them; only a file that opts in
 *     sees them, and they are macros or static inline functions, so libumn exports no such symbol. A
 *     porter whose own shim already defines the ERR_PTR family defines UMN_KCOMPAT_NO_ERR_PTR first.
 *   - In umn, "_locked" means "the caller holds the lock and the call asserts it". The kernel's _locked
 *     calls mean "the caller holds mmap_lock for write", and there is no mmap_lock in userspace: nothing
 *     is held and nothing is asserted (see "Locking"). Declaring them in umn.h would give the suffix a
 *     second meaning there.
 *
 * Locking
 *   - The kernel's caller of get_locked / insert_locked / __mmu_notifier_register holds mmap_lock for
 *     write, and register takes mm_take_all_locks, so that no invalidation is in flight while a notifier
 *     joins. umn has neither lock: umn_notifier_get / umn_notifier_register / umn_interval_notifier_insert
 *     wait themselves until no invalidation of mm is in flight (or defer the insert), so the _locked names
 *     are the plain calls, with no lock held and none asserted. A ported driver may keep its
 *     mmap_write_lock() / mmap_write_unlock() calls as no-ops (umn/kernel_shim.h) or drop them.
 * Lifetime / Context / Memory ordering
 *   - Those of the umn.h call each name maps to.
 */
#ifndef UMN_KCOMPAT_H
#define UMN_KCOMPAT_H

#include "umn/umn.h"

#ifndef UMN_KCOMPAT_NO_ERR_PTR
/* <linux/err.h>. ERR_CAST and PTR_ERR_OR_ZERO as the kernel defines them. */
#define MAX_ERRNO UMN_MAX_ERRNO
#define ERR_PTR(error) UMN_ERR_PTR(error)
#define PTR_ERR(ptr) UMN_PTR_ERR(ptr)
#define IS_ERR(ptr) UMN_IS_ERR(ptr)
#define IS_ERR_OR_NULL(ptr) UMN_IS_ERR_OR_NULL(ptr)
#define ERR_CAST(ptr) ((void *)(uintptr_t)(ptr))
#define PTR_ERR_OR_ZERO(ptr) umn_kcompat_ptr_err_or_zero(ptr)
/** PTR_ERR_OR_ZERO's body: a function, so that ptr is evaluated once (as the kernel's). */
static inline int umn_kcompat_ptr_err_or_zero(const void *ptr)
{
	return UMN_IS_ERR(ptr) ? (int)UMN_PTR_ERR(ptr) : 0;
}
#endif

/*
 * The Kconfig symbol after the rename (CONFIG_MMU_NOTIFIER -> CONFIG_UMN_NOTIFIER): drivers guard their
 * notifier code with it and compile a stub otherwise (radeon_mn.h returns -ENODEV), so a port must see it
 * enabled. 1, as Kconfig defines a bool option, so IS_ENABLED-style tests work too.
 */
#define CONFIG_UMN_NOTIFIER 1

/** mm_has_notifiers - the kernel's name of umn_mm_has_notifiers (not renamed: it has no mmu_ prefix). */
#define mm_has_notifiers(mm) umn_mm_has_notifiers(mm)

/**
 * umn_notifier_get_locked - the kernel's mmu_notifier_get_locked: umn_notifier_get. "locked" asserts
 * nothing (no mmap_lock: see Locking). Return: as umn_notifier_get (an error pointer on failure).
 */
static inline struct umn_notifier *umn_notifier_get_locked(const struct umn_notifier_ops *ops, struct umn_mm *mm)
{
	return umn_notifier_get(ops, mm);
}

/**
 * umn_interval_notifier_insert_locked - the kernel's mmu_interval_notifier_insert_locked:
 * umn_interval_notifier_insert. "locked" asserts nothing. One difference from the kernel, whose
 * insert_locked skips that check: ops with invalidate_start but no invalidate_finish are refused
 * (-EINVAL, WARNed) here too. Return: as umn_interval_notifier_insert.
 */
static inline int umn_interval_notifier_insert_locked(struct umn_interval_notifier *sub, struct umn_mm *mm,
						      uint64_t start, uint64_t length,
						      const struct umn_interval_notifier_ops *ops)
{
	return umn_interval_notifier_insert(sub, mm, start, length, ops);
}

/**
 * __umn_notifier_register - the kernel's __mmu_notifier_register (the caller holds mmap_lock for write):
 * umn_notifier_register. A macro, so that the reserved name is never a symbol. The kernel's internal
 * use with a NULL notifier (mark the address space as having interval notifiers) has no counterpart: a
 * NULL sub is refused (-EINVAL, WARNed), as umn_notifier_register does.
 */
#define __umn_notifier_register(sub, mm) umn_notifier_register((sub), (mm))

#endif /* UMN_KCOMPAT_H */
