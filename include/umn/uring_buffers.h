/*
 * uring_buffers.h - io_uring fixed buffers that stay correct when the program frees, reallocates or
 * remaps its buffers: a registration cache (umn/regcache.h) over a sparse fixed-buffer table.
 *
 * Without it, a buffer registered with io_uring_register_buffers() pins the pages that were mapped at
 * registration time; after munmap/free and a new mapping at the same address, write_fixed sends the
 * old, freed pages (tests/unit/regcache/uring_test.cc shows it: every round of its negative control).
 * With it, umn_uring_buffers_get(addr, len) returns the index of a table slot registered over the
 * memory mapped there *now*: the cache drops slots whose memory changed (process hooks) and registers
 * the new memory before handing out an index. docs/regcache.md, "io_uring".
 *
 *   io_uring_queue_init(64, &ring, 0);
 *   umn_uring_buffers_create(&ring, 64, NULL, &bufs);
 *   umn_uring_buffers_get(bufs, buf, len, &fixed);
 *   io_uring_prep_write_fixed(sqe, fd, buf, len, offset, fixed.index);  ... wait for the completion ...
 *   umn_uring_buffers_put(bufs, &fixed);
 *
 * Locking: the cache's (umn/regcache.h); slot allocation runs in reg/dereg, under the cache lock. The
 *   ring's submission queue is the caller's business, as always with liburing.
 * Lifetime: a slot index is valid from get to put; put only after the I/O using it completed (the
 *   kernel keeps the pages of an in-flight request anyway). Put every buffer before destroy, and destroy
 *   before io_uring_queue_exit(); destroy with buffers held is diagnosed (their put then still works).
 * Context: not from signal handlers or notifier callbacks; get may sleep (it registers).
 * Memory ordering: get happens-before the submission that uses the index (same thread or ordered by the
 *   caller); a slot is updated by the kernel before get returns.
 */
#ifndef UMN_URING_BUFFERS_H
#define UMN_URING_BUFFERS_H

#include <stddef.h>

#include "umn/regcache.h"

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring;
struct umn_uring_buffers;

/** A fixed buffer: pass `index` as buf_index to io_uring_prep_{read,write}_fixed. */
struct umn_uring_buffer {
	unsigned index;                      /* slot of the ring's fixed-buffer table */
	struct umn_regcache_region *region;  /* the registered range (covers the request) */
};

/**
 * umn_uring_buffers_create - register a sparse table of @slots fixed buffers on @ring and a cache over
 * it (on umn_mm_process()). The ring must have no fixed buffers yet. @params: as umn_regcache_create
 * (NULL: defaults); when every slot is in use, get evicts unused ones (reg reports -ENOMEM).
 * Return: 0, -EINVAL, -ENOMEM, or the kernel's -errno (-ENOSYS, -EBUSY, -EOPNOTSUPP...).
 */
UMN_API int umn_uring_buffers_create(struct io_uring *ring, unsigned slots,
				     const struct umn_regcache_params *params, struct umn_uring_buffers **out);

/** umn_uring_buffers_get - a slot registered over [addr, addr + len) as mapped now. Return: 0, the
 *  errors of umn_regcache_get, the kernel's registration errors (-EFAULT: not mapped), -ENOMEM (no
 *  slot free even after eviction). Paired with put. */
UMN_API int umn_uring_buffers_get(struct umn_uring_buffers *bufs, const void *addr, size_t len,
				  struct umn_uring_buffer *out);

/** umn_uring_buffers_put - release a buffer from get (after its I/O completed). */
UMN_API void umn_uring_buffers_put(struct umn_uring_buffers *bufs, struct umn_uring_buffer *buf);

/** umn_uring_buffers_cache - the cache behind (for umn_regcache_stats / flush). */
UMN_API struct umn_regcache *umn_uring_buffers_cache(struct umn_uring_buffers *bufs);

/** umn_uring_buffers_destroy - deregister everything and unregister the table. NULL is ignored. */
UMN_API void umn_uring_buffers_destroy(struct umn_uring_buffers *bufs);

#ifdef __cplusplus
}
#endif

#endif /* UMN_URING_BUFFERS_H */
