/* gru_stubs.h - what the extracted sgi-gru code names beyond the notifier API: sizes, STAT, gru_dbg, and
 * the device TLB flush (the adapter's). kzalloc fails on demand, so gru_alloc_notifier's ERR_PTR path runs. */
#define GRU_MAX_GRUS 4
#define DECLARE_BITMAP(name, bits) unsigned long name[((bits) + 63) / 64]
#define STAT(id) do { } while (0)
#define gru_dbg(dev, fmt, ...) do { } while (0)
struct gru_mm_struct;
void gru_flush_tlb_range(struct gru_mm_struct *gms, unsigned long start, unsigned long len);
static inline void *port_kzalloc(size_t size, gfp_t gfp)
{
	(void)gfp;
	if (gru_alloc_failures > 0) {
		gru_alloc_failures--;
		return NULL;
	}
	return calloc(1, size);
}
#define kzalloc(size, gfp) port_kzalloc((size), (gfp))
