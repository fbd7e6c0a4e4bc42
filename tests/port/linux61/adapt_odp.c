/* adapt_odp.c - the umem side under the real mlx5 invalidate: get (as ib_umem_odp_get inserts), the
 * fault (ib_umem_odp_map_dma_and_lock's protocol: read_begin, walk, umem_mutex, read_retry), unmap. */
static void ib_umem_odp_unmap_dma_pages(struct ib_umem_odp *umem_odp, u64 virt, u64 bound)
{
	for (u64 addr = virt & PAGE_MASK; addr < bound; addr += PAGE_SIZE) {
		u64 idx = (addr - ib_umem_start(umem_odp)) >> umem_odp->page_shift;
		if (umem_odp->dma_list[idx]) {
			umem_odp->dma_list[idx] = 0;
			umem_odp->npages--;
		}
	}
}
static void destroy_unused_implicit_child_mr(struct mlx5_ib_mr *mr)
{
	(void)mr;
	abort(); /* no implicit MRs here */
}
struct odp_umem *odp_umem_get(struct umn_mm *mm, unsigned long addr, unsigned long size)
{
	struct ib_umem_odp *umem_odp = calloc(1, sizeof(*umem_odp));
	struct mlx5_ib_mr *mr = calloc(1, sizeof(*mr));
	mutex_init(&umem_odp->umem_mutex);
	umem_odp->page_shift = PAGE_SHIFT;
	umem_odp->private = mr;
	int ret = umn_interval_notifier_insert(&umem_odp->notifier, mm, addr, size, &mlx5_mn_ops);
	if (ret) {
		free(mr);
		free(umem_odp);
		return ERR_PTR(ret);
	}
	unsigned long npages = (ib_umem_end(umem_odp) - ib_umem_start(umem_odp)) >> PAGE_SHIFT;
	umem_odp->dma_list = calloc(npages, sizeof(dma_addr_t));
	mr->mtt = calloc(npages, sizeof(unsigned long));
	return (struct odp_umem *)umem_odp;
}
int odp_fault(struct odp_umem *umem, unsigned long addr)
{
	struct ib_umem_odp *umem_odp = (struct ib_umem_odp *)umem;
	struct mlx5_ib_mr *mr = umem_odp->private;
	addr &= PAGE_MASK;
	if (addr < ib_umem_start(umem_odp) || addr >= ib_umem_end(umem_odp))
		return -EFAULT;
	for (;;) {
		unsigned long seq = umn_interval_read_begin(&umem_odp->notifier);
		unsigned long frame = port_cpu_frame(umem_odp->notifier.mm, addr);
		if (!frame)
			return -EAGAIN;
		mutex_lock(&umem_odp->umem_mutex);
		if (umn_interval_read_retry(&umem_odp->notifier, seq)) {
			mutex_unlock(&umem_odp->umem_mutex);
			continue;
		}
		u64 idx = (addr - ib_umem_start(umem_odp)) >> umem_odp->page_shift;
		if (!umem_odp->dma_list[idx])
			umem_odp->npages++;
		umem_odp->dma_list[idx] = ((u64)frame << 2) | ODP_READ_ALLOWED_BIT;
		mr->mtt[idx] = frame;
		mutex_unlock(&umem_odp->umem_mutex);
		return 0;
	}
}
unsigned long odp_check(struct odp_umem *umem)
{
	struct ib_umem_odp *umem_odp = (struct ib_umem_odp *)umem;
	struct mlx5_ib_mr *mr = umem_odp->private;
	unsigned long stale = 0, npages = (ib_umem_end(umem_odp) - ib_umem_start(umem_odp)) >> PAGE_SHIFT;
	mutex_lock(&umem_odp->umem_mutex);
	for (unsigned long i = 0; i < npages; i++)
		if (mr->mtt[i] && mr->mtt[i] != port_cpu_frame(umem_odp->notifier.mm, ib_umem_start(umem_odp) + (i << PAGE_SHIFT)))
			stale++;
	mutex_unlock(&umem_odp->umem_mutex);
	return stale;
}
void odp_umem_release(struct odp_umem *umem)
{
	struct ib_umem_odp *umem_odp = (struct ib_umem_odp *)umem;
	umn_interval_notifier_remove(&umem_odp->notifier);
	free(((struct mlx5_ib_mr *)umem_odp->private)->mtt);
	free(umem_odp->private);
	free(umem_odp->dma_list);
	free(umem_odp);
}
