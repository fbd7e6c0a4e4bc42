// SPDX-License-Identifier: MIT
/*
 * gru.c - a device TLB behind one classic notifier per address space, written as drivers/misc/sgi-gru
 * uses mmu_notifier_get_locked / mmu_notifier_put (the kernel's style and names; see drivers.h): the
 * per-mm structure comes from alloc_notifier (ERR_PTR(-ENOMEM) on failure), the caller gets ERR_CAST
 * of an error, and invalidate_range_start / _end keep a count of active ranges that the fault path
 * waits on. The fault path also compares a sequence number taken before reading the page, so that a
 * range that started and ended meanwhile is not missed.
 */
#include <linux/err.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "drivers.h"

#define GRU_TLB_ENTRIES 64

struct gru_tlb_entry {
	unsigned long vaddr;
	unsigned long frame;		/* 0: invalid */
};

struct gru_mm_struct {
	struct mmu_notifier ms_notifier;
	spinlock_t ms_asid_lock;	/* guards ms_tlb and ms_range_seq */
	atomic_t ms_range_active;
	unsigned long ms_range_seq;	/* bumped by every range start and end */
	wait_queue_head_t ms_wait_queue;
	struct gru_tlb_entry ms_tlb[GRU_TLB_ENTRIES];
};

int gru_alloc_failures;

static void gru_flush_tlb_range(struct gru_mm_struct *gms, unsigned long start, unsigned long end)
{
	int i;

	for (i = 0; i < GRU_TLB_ENTRIES; i++)
		if (gms->ms_tlb[i].frame && gms->ms_tlb[i].vaddr >= (start & PAGE_MASK) &&
		    gms->ms_tlb[i].vaddr < end)
			gms->ms_tlb[i].frame = 0;
}

static int gru_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct gru_mm_struct *gms = container_of(mn, struct gru_mm_struct, ms_notifier);

	spin_lock(&gms->ms_asid_lock);
	atomic_inc(&gms->ms_range_active);
	gms->ms_range_seq++;
	gru_flush_tlb_range(gms, range->start, range->end);
	spin_unlock(&gms->ms_asid_lock);
	return 0;
}

static void gru_invalidate_range_end(struct mmu_notifier *mn,
				     const struct mmu_notifier_range *range)
{
	struct gru_mm_struct *gms = container_of(mn, struct gru_mm_struct, ms_notifier);

	(void)range;
	spin_lock(&gms->ms_asid_lock);
	gms->ms_range_seq++;
	(void)atomic_dec_and_test(&gms->ms_range_active);
	spin_unlock(&gms->ms_asid_lock);
	wake_up_all(&gms->ms_wait_queue);
}

static struct mmu_notifier *gru_alloc_notifier(struct mm_struct *mm)
{
	struct gru_mm_struct *gms;

	(void)mm;
	if (gru_alloc_failures > 0) {
		gru_alloc_failures--;
		return ERR_PTR(-ENOMEM);
	}
	gms = kzalloc(sizeof(*gms), GFP_KERNEL);
	if (!gms)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&gms->ms_asid_lock);
	init_waitqueue_head(&gms->ms_wait_queue);
	return &gms->ms_notifier;
}

static void gru_free_notifier(struct mmu_notifier *mn)
{
	kfree(container_of(mn, struct gru_mm_struct, ms_notifier));
}

static const struct mmu_notifier_ops gru_mmuops = {
	.invalidate_range_start	= gru_invalidate_range_start,
	.invalidate_range_end	= gru_invalidate_range_end,
	.alloc_notifier		= gru_alloc_notifier,
	.free_notifier		= gru_free_notifier,
};

struct gru_mm_struct *gru_register_mmu_notifier(void)
{
	struct mmu_notifier *mn;

	mmap_write_lock(current->mm);
	mn = mmu_notifier_get_locked(&gru_mmuops, current->mm);
	mmap_write_unlock(current->mm);
	if (IS_ERR(mn))
		return ERR_CAST(mn);

	return container_of(mn, struct gru_mm_struct, ms_notifier);
}

void gru_drop_mmu_notifier(struct gru_mm_struct *gms)
{
	int i;

	spin_lock(&gms->ms_asid_lock);	/* put does not call ->release: drop the TLB first */
	for (i = 0; i < GRU_TLB_ENTRIES; i++)
		gms->ms_tlb[i].frame = 0;
	spin_unlock(&gms->ms_asid_lock);
	mmu_notifier_put(&gms->ms_notifier);
}

int gru_fault(struct gru_mm_struct *gms, unsigned long addr)
{
	struct gru_tlb_entry *tlbe;
	unsigned long seq, frame;

	addr &= PAGE_MASK;
	tlbe = &gms->ms_tlb[(addr >> PAGE_SHIFT) % GRU_TLB_ENTRIES];
	for (;;) {
		wait_event(gms->ms_wait_queue, atomic_read(&gms->ms_range_active) == 0);
		spin_lock(&gms->ms_asid_lock);
		seq = gms->ms_range_seq;
		spin_unlock(&gms->ms_asid_lock);

		frame = port_cpu_frame(gms->ms_notifier.mm, addr);
		if (!frame)
			return -EAGAIN;

		spin_lock(&gms->ms_asid_lock);
#ifdef PORT_BUG_SKIP_RETRY	/* the negative control: installs without checking for a collision */
		(void)seq;
		break;
#else
		if (atomic_read(&gms->ms_range_active) == 0 && gms->ms_range_seq == seq)
			break;
#endif
		spin_unlock(&gms->ms_asid_lock);
	}
	tlbe->vaddr = addr;
	tlbe->frame = frame;
	spin_unlock(&gms->ms_asid_lock);
	return 0;
}

unsigned long gru_check(struct gru_mm_struct *gms)
{
	unsigned long stale = 0;
	int i;

	spin_lock(&gms->ms_asid_lock);
	for (i = 0; i < GRU_TLB_ENTRIES; i++) {
		struct gru_tlb_entry *tlbe = &gms->ms_tlb[i];

		if (tlbe->frame && tlbe->frame != port_cpu_frame(gms->ms_notifier.mm, tlbe->vaddr))
			stale++;
	}
	spin_unlock(&gms->ms_asid_lock);
	return stale;
}
