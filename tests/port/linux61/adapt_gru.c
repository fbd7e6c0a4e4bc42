/* adapt_gru.c - the device side under the real gru notifier code: a 64-entry TLB, its flush (called by
 * the real gru_invalidate_range_start), and a dropin path (the test's, not gru's grufault.c) that waits
 * for ms_range_active == 0 and rechecks it with the flush count under the TLB lock before installing. */
int gru_alloc_failures;
static struct {
	spinlock_t lock;
	unsigned long flushes;
	struct { unsigned long vaddr, frame; } tlb[64];
} gru_dev = { .lock = { PTHREAD_MUTEX_INITIALIZER } };

void gru_flush_tlb_range(struct gru_mm_struct *gms, unsigned long start, unsigned long len)
{
	(void)gms;
	spin_lock(&gru_dev.lock);
	gru_dev.flushes++;
	for (int i = 0; i < 64; i++)
		if (gru_dev.tlb[i].frame && gru_dev.tlb[i].vaddr + PAGE_SIZE > start && gru_dev.tlb[i].vaddr < start + len)
			gru_dev.tlb[i].frame = 0;
	spin_unlock(&gru_dev.lock);
}

int gru_fault(struct gru_mm_struct *gms, unsigned long addr)
{
	unsigned long flushes, frame;
	addr &= PAGE_MASK;
	for (;;) {
		wait_event(gms->ms_wait_queue, atomic_read(&gms->ms_range_active) == 0);
		spin_lock(&gru_dev.lock);
		bool idle = atomic_read(&gms->ms_range_active) == 0;
		flushes = gru_dev.flushes;
		spin_unlock(&gru_dev.lock);
		if (!idle)
			continue;
		frame = port_cpu_frame(gms->ms_notifier.mm, addr);
		if (!frame)
			return -EAGAIN;
		spin_lock(&gru_dev.lock);
		if (atomic_read(&gms->ms_range_active) == 0 && gru_dev.flushes == flushes)
			break;
		spin_unlock(&gru_dev.lock);
	}
	gru_dev.tlb[(addr >> PAGE_SHIFT) % 64].vaddr = addr;
	gru_dev.tlb[(addr >> PAGE_SHIFT) % 64].frame = frame;
	spin_unlock(&gru_dev.lock);
	return 0;
}

unsigned long gru_check(struct gru_mm_struct *gms)
{
	unsigned long stale = 0;
	spin_lock(&gru_dev.lock);
	for (int i = 0; i < 64; i++)
		if (gru_dev.tlb[i].frame && gru_dev.tlb[i].frame != port_cpu_frame(gms->ms_notifier.mm, gru_dev.tlb[i].vaddr))
			stale++;
	spin_unlock(&gru_dev.lock);
	return stale;
}

void port_set_current_mm(struct umn_mm *mm)
{
	current->mm = mm;
	memset(gru_dev.tlb, 0, sizeof(gru_dev.tlb)); /* a new address space: the device TLB starts empty */
}
