/* vshim.h - the Linux 6.1 validation's shim (run.sh): umn/kcompat.h + umn/kernel_shim.h, plus the few kernel
 * types and device stand-ins the extracted driver code names (hmm_range, an xarray stand-in, jiffies). */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
#include <time.h>
#include "drivers.h"
typedef uint64_t u64;
#define BIT(n) (1UL << (n))
#define max_t(t, a, b) ((t)(a) > (t)(b) ? (t)(a) : (t)(b))
#define min_t(t, a, b) ((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define GFP_ATOMIC 0u
static inline unsigned long port_jiffies(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}
#define jiffies port_jiffies()
#define msecs_to_jiffies(ms) ((unsigned long)(ms))
#define time_after(a, b) ((long)((b) - (a)) < 0)
/* <linux/hmm.h> */
#define HMM_PFN_VALID (1UL << 63)
#define HMM_PFN_WRITE (1UL << 62)
#define HMM_PFN_ERROR (1UL << 61)
#define HMM_PFN_REQ_FAULT HMM_PFN_VALID
#define HMM_PFN_REQ_WRITE HMM_PFN_WRITE
#define HMM_RANGE_DEFAULT_TIMEOUT 1000
struct hmm_range {
	struct umn_interval_notifier *notifier;
	unsigned long notifier_seq;
	unsigned long start;
	unsigned long end;
	unsigned long *hmm_pfns;
	unsigned long default_flags;
	unsigned long pfn_flags_mask;
	void *dev_private_owner;
};
int hmm_range_fault(struct hmm_range *range);
/* test_hmm's device table: a plain array instead of an xarray */
struct xarray {
	unsigned long base;
	unsigned long npages;
	unsigned long *frames;
};
struct dmirror_device {
	int unused;
};
