/* mlx5_stubs.h - what the extracted umem_odp / mlx5 code names beyond the notifier API: the umem (the
 * fields the invalidate touches), the MR and its MTT (the device's translations), the UMR zap. */
#define ODP_READ_ALLOWED_BIT (1 << 0ULL)
#define ODP_WRITE_ALLOWED_BIT (1 << 1ULL)
#define MLX5_UMR_MTT_ALIGNMENT 0x40
#define MLX5_IB_UPD_XLT_ZAP BIT(1)
#define MLX5_IB_UPD_XLT_ATOMIC BIT(4)
typedef u64 dma_addr_t;
struct mlx5_mtt {
	u64 ptag;
};
struct mlx5_ib_mr {
	struct mlx5_ib_mr *parent;
	unsigned long *mtt;		/* the device's translation per page: a frame, 0 for none */
};
struct ib_umem_odp {
	struct umn_interval_notifier notifier;
	dma_addr_t *dma_list;
	struct mutex umem_mutex;
	void *private;
	int npages;
	unsigned int page_shift;
};
static inline int mlx5r_umr_update_xlt(struct mlx5_ib_mr *mr, u64 idx, int npages, int page_shift, int flags)
{
	(void)page_shift;
	(void)flags;
	for (u64 i = idx; i < idx + (u64)npages; i++)
		mr->mtt[i] = 0;
	return 0;
}
#define mlx5_update_odp_stats(mr, counter_name, value) do { (void)(mr); (void)(value); } while (0)
static void ib_umem_odp_unmap_dma_pages(struct ib_umem_odp *umem_odp, u64 virt, u64 bound);
static void destroy_unused_implicit_child_mr(struct mlx5_ib_mr *mr);
