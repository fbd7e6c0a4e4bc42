// SPDX-License-Identifier: MIT
/*
 * svm.c - a shared-virtual-memory context with its own classic notifier, written as nouveau's svmm uses
 * __mmu_notifier_register under mmap_write_lock and mmu_notifier_unregister (the kernel's style and
 * names; see drivers.h). It only counts: every range start must have its end, and ->release runs once.
 */
#include <linux/err.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "drivers.h"

struct svmm {
	struct mmu_notifier notifier;
	struct mutex mutex;		/* guards the counts */
	long open_ranges;
	long unbalanced;		/* ends seen without a start */
	int releases;
};

static int svmm_invalidate_range_start(struct mmu_notifier *mn,
				       const struct mmu_notifier_range *range)
{
	struct svmm *svmm = container_of(mn, struct svmm, notifier);

	(void)range;
	mutex_lock(&svmm->mutex);
	svmm->open_ranges++;
	mutex_unlock(&svmm->mutex);
	return 0;
}

static void svmm_invalidate_range_end(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct svmm *svmm = container_of(mn, struct svmm, notifier);

	(void)range;
	mutex_lock(&svmm->mutex);
	if (svmm->open_ranges-- == 0)
		svmm->unbalanced++;
	mutex_unlock(&svmm->mutex);
}

static void svmm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct svmm *svmm = container_of(mn, struct svmm, notifier);

	(void)mm;
	mutex_lock(&svmm->mutex);
	svmm->releases++;
	mutex_unlock(&svmm->mutex);
}

static const struct mmu_notifier_ops svmm_ops = {
	.release = svmm_release,
	.invalidate_range_start = svmm_invalidate_range_start,
	.invalidate_range_end = svmm_invalidate_range_end,
};

struct svmm *svmm_new(void)
{
	struct svmm *svmm;
	int ret;

	svmm = kzalloc(sizeof(*svmm), GFP_KERNEL);
	if (!svmm)
		return ERR_PTR(-ENOMEM);
	mutex_init(&svmm->mutex);
	svmm->notifier.ops = &svmm_ops;

	mmap_write_lock(current->mm);
	ret = __mmu_notifier_register(&svmm->notifier, current->mm);
	mmap_write_unlock(current->mm);
	if (ret) {
		kfree(svmm);
		return ERR_PTR(ret);
	}
	WARN_ON(!mm_has_notifiers(current->mm));
	return svmm;
}

bool svmm_balanced(struct svmm *svmm)
{
	bool balanced;

	mutex_lock(&svmm->mutex);
	balanced = svmm->open_ranges == 0 && svmm->unbalanced == 0;
	mutex_unlock(&svmm->mutex);
	return balanced;
}

int svmm_releases(struct svmm *svmm)
{
	int releases;

	mutex_lock(&svmm->mutex);
	releases = svmm->releases;
	mutex_unlock(&svmm->mutex);
	return releases;
}

void svmm_fini(struct svmm *svmm)
{
	mmu_notifier_unregister(&svmm->notifier, svmm->notifier.mm);
	mutex_destroy(&svmm->mutex);
	kfree(svmm);
}
