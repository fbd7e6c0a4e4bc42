/* SPDX-License-Identifier: MIT */
/*
 * drivers.h - kernel-style driver code for the port test: four small drivers written the way kernel
 * drivers use mmu notifiers (struct mm_struct, mmu_*, MMU_*, ERR_PTR), compiled only after the rename
 * step (tests/port/rename.sed). Written for umn's tests; no kernel code is copied.
 *
 *   mirror  lib/test_hmm.c's dmirror: mmu_interval_notifier_insert, the read_begin / hmm fault /
 *           mutex / read_retry loop, notifier.mm, MIGRATE invalidations of its own ignored, trylock on a
 *           non-blockable range.
 *   odp     drivers/infiniband/core/umem_odp.c with mlx5's invalidate: insert_locked under
 *           mmap_write_lock, the bounds read from notifier.interval_tree.start / .last, errors returned as
 *           ERR_PTR, and no work on a non-blockable range (returns false, as mlx5 does).
 *   gru     drivers/misc/sgi-gru: mmu_notifier_get_locked / put with alloc_notifier returning
 *           ERR_PTR(-ENOMEM), ERR_CAST, a range counter and wait queue on the classic notifier.
 *   svm     nouveau's svmm: __mmu_notifier_register / mmu_notifier_unregister, mm_has_notifiers,
 *           ->release.
 *
 * Every device keeps a table of translations (address -> frame). The test is the hardware: it says
 * which frame backs an address now (port_cpu_frame) and asks each device to check its table against it
 * (*_check: stale translations, which the notifier protocol must make impossible).
 * Locking: each driver's own lock guards its table; callbacks take it. Context: *_fault may sleep.
 */
#ifndef PORT_DRIVERS_H
#define PORT_DRIVERS_H

#include <stdbool.h>

struct mm_struct;

/* Provided by the test (the page walk, hmm_range_fault's role): the frame at addr now; 0 for none yet. */
unsigned long port_cpu_frame(struct mm_struct *mm, unsigned long addr);
/* Sets current->mm for the drivers (one process-wide task). */
void port_set_current_mm(struct mm_struct *mm);

struct mirror;
struct mirror *mirror_open(struct mm_struct *mm, unsigned long start, unsigned long npages, void *owner);
int mirror_fault(struct mirror *mirror, unsigned long addr);
unsigned long mirror_check(struct mirror *mirror);
void mirror_release(struct mirror *mirror);

struct odp_umem;
struct odp_umem *odp_umem_get(struct mm_struct *mm, unsigned long addr, unsigned long size);
int odp_fault(struct odp_umem *umem, unsigned long addr);
unsigned long odp_check(struct odp_umem *umem);
void odp_umem_release(struct odp_umem *umem);

struct gru_mm_struct;
extern int gru_alloc_failures; /* the next n alloc_notifier calls fail with ERR_PTR(-ENOMEM) */
struct gru_mm_struct *gru_register_mmu_notifier(void);
int gru_fault(struct gru_mm_struct *gms, unsigned long addr);
unsigned long gru_check(struct gru_mm_struct *gms);
void gru_drop_mmu_notifier(struct gru_mm_struct *gms);

struct svmm;
struct svmm *svmm_new(void);
bool svmm_balanced(struct svmm *svmm); /* every invalidate_range_start had its end */
int svmm_releases(struct svmm *svmm);
void svmm_fini(struct svmm *svmm);

#endif
