// SPDX-License-Identifier: MIT
/*
 * odp.c - on-demand-paging memory registration, written as drivers/infiniband/core/umem_odp.c and
 * mlx5's invalidate use the interval notifier (the kernel's style and names; see drivers.h): the
 * registration's bounds are read back from the notifier's interval_tree node, the insert is the _locked
 * one under mmap_write_lock, and errors travel as ERR_PTR.
 */
#include <linux/err.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "drivers.h"

struct odp_umem {
	struct mmu_interval_notifier notifier;
	struct mutex umem_mutex;	/* guards dma_list */
	unsigned long *dma_list;	/* frame per page; 0: not mapped for the device */
};

static inline unsigned long odp_umem_start(struct odp_umem *umem)
{
	return umem->notifier.interval_tree.start;
}

static inline unsigned long odp_umem_end(struct odp_umem *umem)
{
	return umem->notifier.interval_tree.last + 1;
}

static inline unsigned long odp_umem_npages(struct odp_umem *umem)
{
	return (odp_umem_end(umem) - odp_umem_start(umem)) >> PAGE_SHIFT;
}

static bool odp_invalidate_range(struct mmu_interval_notifier *mni,
				 const struct mmu_notifier_range *range,
				 unsigned long cur_seq)
{
	struct odp_umem *umem = container_of(mni, struct odp_umem, notifier);
	unsigned long start, end, addr;

	if (!mmu_notifier_range_blockable(range))
		return false;

	mutex_lock(&umem->umem_mutex);
	mmu_interval_set_seq(mni, cur_seq);
	start = max(odp_umem_start(umem), range->start);
	end = min(odp_umem_end(umem), range->end);
	for (addr = start & PAGE_MASK; addr < end; addr += PAGE_SIZE)
		umem->dma_list[(addr - odp_umem_start(umem)) >> PAGE_SHIFT] = 0;
	mutex_unlock(&umem->umem_mutex);
	return true;
}

static const struct mmu_interval_notifier_ops odp_mn_ops = {
	.invalidate = odp_invalidate_range,
};

struct odp_umem *odp_umem_get(struct mm_struct *mm, unsigned long addr, unsigned long size)
{
	struct odp_umem *umem;
	int ret;

	umem = kzalloc(sizeof(*umem), GFP_KERNEL);
	if (!umem)
		return ERR_PTR(-ENOMEM);
	mutex_init(&umem->umem_mutex);

	mmap_write_lock(mm);
	ret = mmu_interval_notifier_insert_locked(&umem->notifier, mm, addr, size, &odp_mn_ops);
	mmap_write_unlock(mm);
	if (ret)
		goto out_free;

	umem->dma_list = kvcalloc(odp_umem_npages(umem), sizeof(*umem->dma_list), GFP_KERNEL);
	if (!umem->dma_list) {
		ret = -ENOMEM;
		goto out_remove;
	}
	return umem;

out_remove:
	mmu_interval_notifier_remove(&umem->notifier);
out_free:
	kfree(umem);
	return ERR_PTR(ret);
}

int odp_fault(struct odp_umem *umem, unsigned long addr)
{
	struct mm_struct *owning_mm = umem->notifier.mm;
	unsigned long current_seq, frame;

	if (addr < odp_umem_start(umem) || addr >= odp_umem_end(umem))
		return -EFAULT;
	if (!mmget_not_zero(owning_mm))
		return -EINVAL;
again:
	current_seq = mmu_interval_read_begin(&umem->notifier);
	mmap_read_lock(owning_mm);
	frame = port_cpu_frame(owning_mm, addr & PAGE_MASK);
	mmap_read_unlock(owning_mm);
	if (!frame) {
		mmput(owning_mm);
		return -EAGAIN;
	}

	mutex_lock(&umem->umem_mutex);
#ifdef PORT_BUG_SKIP_RETRY	/* the negative control: a fault path that forgot the retry */
	(void)current_seq;
	if (0)
		goto again;
#else
	if (mmu_interval_read_retry(&umem->notifier, current_seq)) {
		mutex_unlock(&umem->umem_mutex);
		goto again;
	}
#endif
	umem->dma_list[((addr & PAGE_MASK) - odp_umem_start(umem)) >> PAGE_SHIFT] = frame;
	mutex_unlock(&umem->umem_mutex);
	mmput(owning_mm);
	return 0;
}

unsigned long odp_check(struct odp_umem *umem)
{
	unsigned long i, stale = 0;

	mutex_lock(&umem->umem_mutex);
	for (i = 0; i < odp_umem_npages(umem); i++) {
		unsigned long frame = umem->dma_list[i];
		unsigned long addr = odp_umem_start(umem) + (i << PAGE_SHIFT);

		if (frame && frame != port_cpu_frame(umem->notifier.mm, addr))
			stale++;
	}
	mutex_unlock(&umem->umem_mutex);
	return stale;
}

void odp_umem_release(struct odp_umem *umem)
{
	mmu_interval_notifier_remove(&umem->notifier);
	kvfree(umem->dma_list);
	mutex_destroy(&umem->umem_mutex);
	kfree(umem);
}
