// SPDX-License-Identifier: MIT
/*
 * mirror.c - a device mirroring a range of a process, written as lib/test_hmm.c's dmirror uses the
 * interval notifier (the kernel's style and names; see drivers.h). The device table holds one frame
 * per page; the fault path is the collision-retry loop.
 */
#include <linux/err.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#include "drivers.h"

struct mirror {
	struct mmu_interval_notifier notifier;
	struct mutex mutex;		/* the user lock: guards pt */
	void *owner;			/* migrations it starts itself are not invalidations for it */
	unsigned long start;
	unsigned long npages;
	unsigned long *pt;		/* frame per page; 0: no translation */
};

static void mirror_do_update(struct mirror *mirror, unsigned long start, unsigned long end)
{
	unsigned long addr;

	start = max(start, mirror->start);
	end = min(end, mirror->start + (mirror->npages << PAGE_SHIFT));
	for (addr = start & PAGE_MASK; addr < end; addr += PAGE_SIZE)
		mirror->pt[(addr - mirror->start) >> PAGE_SHIFT] = 0;
}

static bool mirror_interval_invalidate(struct mmu_interval_notifier *mni,
				       const struct mmu_notifier_range *range,
				       unsigned long cur_seq)
{
	struct mirror *mirror = container_of(mni, struct mirror, notifier);

	if (range->event == MMU_NOTIFY_MIGRATE && range->owner == mirror->owner)
		return true;

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&mirror->mutex);
	else if (!mutex_trylock(&mirror->mutex))
		return false;

	mmu_interval_set_seq(mni, cur_seq);
	mirror_do_update(mirror, range->start, range->end);

	mutex_unlock(&mirror->mutex);
	return true;
}

static const struct mmu_interval_notifier_ops mirror_min_ops = {
	.invalidate = mirror_interval_invalidate,
};

struct mirror *mirror_open(struct mm_struct *mm, unsigned long start, unsigned long npages, void *owner)
{
	struct mirror *mirror;
	int ret;

	mirror = kzalloc(sizeof(*mirror), GFP_KERNEL);
	if (mirror == NULL)
		return ERR_PTR(-ENOMEM);
	mirror->pt = kcalloc(npages, sizeof(*mirror->pt), GFP_KERNEL);
	if (mirror->pt == NULL) {
		kfree(mirror);
		return ERR_PTR(-ENOMEM);
	}
	mutex_init(&mirror->mutex);
	mirror->owner = owner;
	mirror->start = start;
	mirror->npages = npages;

	ret = mmu_interval_notifier_insert(&mirror->notifier, mm, start, npages << PAGE_SHIFT,
					   &mirror_min_ops);
	if (ret) {
		kfree(mirror->pt);
		kfree(mirror);
		return ERR_PTR(ret);
	}
	return mirror;
}

static int mirror_range_fault(struct mirror *mirror, unsigned long addr)
{
	struct mm_struct *mm = mirror->notifier.mm;
	unsigned long seq, frame;

	while (true) {
		seq = mmu_interval_read_begin(&mirror->notifier);
		mmap_read_lock(mm);
		frame = port_cpu_frame(mm, addr);
		mmap_read_unlock(mm);
		if (!frame)
			return -EBUSY;

		mutex_lock(&mirror->mutex);
#ifdef PORT_BUG_SKIP_RETRY	/* the negative control: a fault path that forgot the retry */
		(void)seq;
#else
		if (mmu_interval_read_retry(&mirror->notifier, seq)) {
			mutex_unlock(&mirror->mutex);
			continue;
		}
#endif
		break;
	}
	mirror->pt[(addr - mirror->start) >> PAGE_SHIFT] = frame;
	mutex_unlock(&mirror->mutex);
	return 0;
}

int mirror_fault(struct mirror *mirror, unsigned long addr)
{
	struct mm_struct *mm = mirror->notifier.mm;
	int ret;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EFAULT;
	ret = mirror_range_fault(mirror, addr & PAGE_MASK);
	mmput(mm);
	return ret;
}

unsigned long mirror_check(struct mirror *mirror)
{
	struct mm_struct *mm = mirror->notifier.mm;
	unsigned long i, stale = 0;

	mutex_lock(&mirror->mutex);
	for (i = 0; i < mirror->npages; i++) {
		unsigned long frame = mirror->pt[i];

		if (frame && frame != port_cpu_frame(mm, mirror->start + (i << PAGE_SHIFT)))
			stale++;
	}
	mutex_unlock(&mirror->mutex);
	return stale;
}

void mirror_release(struct mirror *mirror)
{
	mmu_interval_notifier_remove(&mirror->notifier);
	mutex_destroy(&mirror->mutex);
	kfree(mirror->pt);
	kfree(mirror);
}
