/* adapt_hmm.c - the device side under the real dmirror notifier code: the page table (an array for the
 * xarray), dmirror_do_fault / dmirror_do_update (test_hmm's device parts), hmm_range_fault reading the
 * test's frames, and the open / fault / check / release entry points the race calls. */
static unsigned long *dmirror_slot(struct dmirror *dmirror, unsigned long addr)
{
	if (addr < dmirror->pt.base || addr >= dmirror->pt.base + (dmirror->pt.npages << PAGE_SHIFT))
		return NULL;
	return &dmirror->pt.frames[(addr - dmirror->pt.base) >> PAGE_SHIFT];
}
static int dmirror_do_fault(struct dmirror *dmirror, struct hmm_range *range)
{
	unsigned long i = 0;
	for (unsigned long addr = range->start; addr < range->end; addr += PAGE_SIZE, i++) {
		unsigned long *slot = dmirror_slot(dmirror, addr);
		if (slot)
			*slot = range->hmm_pfns[i] & ~(HMM_PFN_VALID | HMM_PFN_WRITE);
	}
	return 0;
}
static void dmirror_do_update(struct dmirror *dmirror, unsigned long start, unsigned long end)
{
	for (unsigned long addr = start & PAGE_MASK; addr < end; addr += PAGE_SIZE) {
		unsigned long *slot = dmirror_slot(dmirror, addr);
		if (slot)
			*slot = 0;
	}
}
int hmm_range_fault(struct hmm_range *range)
{
	unsigned long i = 0;
	for (unsigned long addr = range->start; addr < range->end; addr += PAGE_SIZE, i++) {
		unsigned long frame = port_cpu_frame(range->notifier->mm, addr);
		if (!frame)
			return -EBUSY;
		range->hmm_pfns[i] = frame | HMM_PFN_VALID;
	}
	return 0;
}
struct mirror *mirror_open(struct umn_mm *mm, unsigned long start, unsigned long npages, void *owner)
{
	struct dmirror *dmirror = calloc(1, sizeof(*dmirror));
	dmirror->mdevice = owner;
	mutex_init(&dmirror->mutex);
	dmirror->pt.base = start;
	dmirror->pt.npages = npages;
	dmirror->pt.frames = calloc(npages, sizeof(unsigned long));
	int ret = umn_interval_notifier_insert(&dmirror->notifier, mm, start, npages << PAGE_SHIFT, &dmirror_min_ops);
	if (ret) {
		free(dmirror->pt.frames);
		free(dmirror);
		return ERR_PTR(ret);
	}
	return (struct mirror *)dmirror;
}
int mirror_fault(struct mirror *mirror, unsigned long addr)
{
	addr &= PAGE_MASK;
	return dmirror_fault((struct dmirror *)mirror, addr, addr + PAGE_SIZE, false);
}
unsigned long mirror_check(struct mirror *mirror)
{
	struct dmirror *dmirror = (struct dmirror *)mirror;
	unsigned long stale = 0;
	mutex_lock(&dmirror->mutex);
	for (unsigned long i = 0; i < dmirror->pt.npages; i++) {
		unsigned long frame = dmirror->pt.frames[i];
		if (frame && frame != port_cpu_frame(dmirror->notifier.mm, dmirror->pt.base + (i << PAGE_SHIFT)))
			stale++;
	}
	mutex_unlock(&dmirror->mutex);
	return stale;
}
void mirror_release(struct mirror *mirror)
{
	struct dmirror *dmirror = (struct dmirror *)mirror;
	umn_interval_notifier_remove(&dmirror->notifier);
	free(dmirror->pt.frames);
	free(dmirror);
}
