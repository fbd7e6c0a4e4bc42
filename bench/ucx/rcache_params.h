/*
 * rcache_params.h - the UCX registration cache umn is compared with: an unbounded, page-aligned
 * ucs_rcache driven by UCM_EVENT_VM_UNMAPPED (as UCP makes it), shared by bench/regcache_bench.cc,
 * bench/ucx/bridge_bench.c and tests/ucx/rcache_rounds.c (C and C++).
 *
 * Locking / Lifetime / Context: those of ucs_rcache_create (UCX 1.13); the cache is the caller's, to
 *   ucs_rcache_destroy. Memory ordering: none of its own.
 */
#ifndef UMN_BENCH_UCX_RCACHE_PARAMS_H
#define UMN_BENCH_UCX_RCACHE_PARAMS_H

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <ucm/api/ucm.h>
#ifdef __cplusplus
extern "C" {  // UCX 1.13's rcache.h has no C++ linkage block of its own
#endif
#include <ucs/memory/rcache.h>
#ifdef __cplusplus
}
#endif

/* Creates the cache: `region_size` is the size of the caller's region type (it starts with a
 * ucs_rcache_region_t), `ops` its callbacks. Return: ucs_rcache_create's status. */
static inline ucs_status_t umn_ucx_rcache_create(const ucs_rcache_ops_t *ops, size_t region_size, const char *name,
						 ucs_rcache_t **out)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	ucs_rcache_params_t params;
	memset(&params, 0, sizeof(params));
	params.region_struct_size = region_size;
	params.alignment = page;
	params.max_alignment = page;
	params.ucm_events = UCM_EVENT_VM_UNMAPPED;
	params.ucm_event_priority = 1000;
	params.ops = ops;
	params.max_regions = ULONG_MAX;
	params.max_size = SIZE_MAX;
	params.max_unreleased = SIZE_MAX;
	return ucs_rcache_create(&params, name, NULL, out);
}

#endif /* UMN_BENCH_UCX_RCACHE_PARAMS_H */
