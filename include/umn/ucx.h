/*
 * ucx.h - libumn-ucx.so: umn as the memory-event source of UCX (and so of Open MPI and MPICH over UCX).
 *
 * UCX keeps registration caches (ucs_rcache, UCP's memory handles) that must drop a cached range when its
 * memory goes away. It learns that from UCM, normally through its own libc patches. UCM also has a door
 * for an outside source: ucm_set_external_event(UCM_EVENT_VM_UNMAPPED) before the first cache is made,
 * then ucm_vm_munmap(addr, length) for every range that goes away. This library is that source, fed by
 * the umn process hooks (umn/process.h): loading it (LD_PRELOAD=libumn-ucx.so, or linking it) is enough;
 * its constructor calls umn_ucx_bridge_start(). docs/ucx.md says what it delivers, what UCX settings it
 * changes (UCX's own mmap and malloc hooks are turned off unless the environment names them) and how it
 * differs from UCX's own hooks.
 *
 * What reaches UCX, as UCM_EVENT_VM_UNMAPPED through ucm_vm_munmap(), before the memory goes:
 * munmap; mmap(MAP_FIXED) over the target; mremap: the whole old range, for every mremap (also when it
 * only shrinks, and when the kernel grows it in place or it fails: that one after the call, since no page
 * moved), and with MREMAP_FIXED the target range it replaces (after the call when the old size is 0); madvise and process_madvise with discarding advice; brk shrinking; shmdt; shmat(SHM_REMAP) --
 * from the program, from libc itself (free, realloc) and through syscall(), also when made inside a
 * delivery (by a UCX handler, or by a signal handler interrupting one: UMN_PROCESS_OBSERVE_NESTED), as
 * UCM's own hooks announce them. Not forwarded, like UCX's own hooks: mprotect, fork.
 *
 * Locking
 *   - umn_ucx_bridge_start() serialises itself with a mutex. Forwarding takes UCM's event lock (read side,
 *     inside ucm_vm_munmap) and whatever UCX's handlers take -- as UCX's own hooks do.
 * Lifetime
 *   - Once started, the bridge stays for the life of the process (UCX's external-event declaration cannot
 *     be withdrawn safely while caches exist); libumn-ucx.so is never unloaded.
 * Context
 *   - Forwarding runs inside the hooked call, on the thread that made it (umn/process.h), including inside
 *     free(); UCX's handlers must follow UCM's rule of not allocating there (UCX's own do).
 *   - UCM takes a pthread rwlock per event: a signal handler that unmaps memory while its thread holds UCM's
 *     lock in write mode (adding a UCM handler) deadlocks, as it does with UCX's own hooks.
 * Memory ordering
 *   - A range is handed to UCX before the system call that removes it is issued, on the same thread.
 */
#ifndef UMN_UCX_H
#define UMN_UCX_H

#include "umn/umn.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * umn_ucx_bridge_start - make umn the source of UCX's UCM_EVENT_VM_UNMAPPED (idempotent; the library's
 * constructor calls it). It checks the UCX version, installs the umn process hooks, declares the event
 * external and proves the chain end to end: a handler of its own must see a one-page munmap through
 * ucm_vm_munmap(). On any failure it prints one line starting with "umn-ucx:" to stderr and leaves UCX
 * alone (UCX then uses its own hooks, or refuses to make caches if they are off: never a stale cache).
 * Context: not from a signal handler or a memory callback; must run before UCX makes its first cache.
 * Return: 0; -EPROTONOSUPPORT for a UCX version outside 1.8 <= v < 2.0; -ENOTSUP when UCX's memory events
 * are disabled (UCX_MEM_EVENTS=no refuses external events too); the error of umn_process_hooks_install()
 * (-EPERM when UMN_PROCESS_HOOKS=0); -EIO when the end-to-end check saw nothing.
 */
UMN_API int umn_ucx_bridge_start(void);

/** What the bridge found and did. */
struct umn_ucx_bridge_info {
	int status;                 /* umn_ucx_bridge_start()'s result; 1 if not tried yet */
	unsigned ucx_major;         /* the UCX found at run time (ucp_get_version) */
	unsigned ucx_minor;
	unsigned ucx_release;
	int ucx_hooks_off;          /* UCX's own mmap hooks are off (mode "none"), so umn alone reports */
	unsigned long forwarded;    /* ranges handed to ucm_vm_munmap() so far */
};

/** umn_ucx_bridge_get_info - fill *info. Context: any. */
UMN_API void umn_ucx_bridge_get_info(struct umn_ucx_bridge_info *info);

#ifdef __cplusplus
}
#endif

#endif /* UMN_UCX_H */
