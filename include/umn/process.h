/*
 * process.h - this process as an address space: the event sources behind umn_mm_process().
 *
 * umn_mm_process() (umn.h) returns this process's address space. The first call installs the process
 * hooks (umn_process_hooks_install): from then on every munmap, mremap, madvise(DONTNEED|FREE|REMOVE|
 * DONTNEED_LOCKED) and process_madvise() with that advice on this process, mprotect removing read or
 * write access, brk shrinking, shmdt, shmat(SHM_REMAP) and mmap(MAP_FIXED) --
 * called by the program, by libc itself (free, realloc, malloc_trim, thread stacks), by the dynamic
 * loader (dlclose) or as a raw syscall(SYS_...) -- runs umn_notifier_invalidate_range_start() on that
 * address space *before* the memory goes, and _end() after. fork() runs a PROTECTION_PAGE range over
 * every private writable mapping of the parent around the fork; exit() runs umn_notifier_release().
 * LD_PRELOAD=libumn-preload.so brings libumn into a program that does not link it; like everywhere, the
 * hooks are then installed by the first umn_mm_process(), umn_process_hooks_install() or observer
 * registration (`umn trace` registers one before main()), never by loading alone. docs/process.md
 * explains the mechanism, what each source guarantees and what it cannot see.
 *
 * Locking
 *   - The hooks take no lock of their own. Delivery takes the address space's subscription lock for a
 *     few instructions (umn.h). Observers are called with no umn lock held.
 *   - The uffd monitor has one thread per monitor; its registration calls are serialised by a mutex.
 * Lifetime
 *   - Hooks, once installed, stay for the life of the process (libumn is never unloaded).
 *   - An observer's ctx must stay valid for the life of the process (removal stops new calls, it does
 *     not wait for calls already running).
 * Context
 *   - Invalidate callbacks on umn_mm_process() run inside the hooked call, on the thread that made it,
 *     possibly inside a signal handler, inside fork(), or inside free(). They must not call munmap,
 *     free memory that may be unmapped, or take a lock the unmapping code may hold; a nested munmap from
 *     a callback is passed through without notifiers (counted in umn_process_hooks_info.nested; only
 *     observers added with UMN_PROCESS_OBSERVE_NESTED see it).
 *   - A signal handler may call munmap etc. (the hooks are async-signal-safe). umn calls on
 *     umn_mm_process() that take its subscription lock outside the invalidate path (insert, remove,
 *     read_begin's wait, register/unregister/get/put, release) block the thread's signals for that
 *     section, so a handler never runs inside one. A handler interrupting a delivery on its own thread
 *     is passed through the same way, never recursing into the core.
 *   - The syscall instructions of every executable file mapping are hooked (libc, the loader, the
 *     executable, other shared objects, the Go runtime, dlopen'd objects). Not seen: instructions in
 *     anonymous executable memory (JIT code) and those counted as unknown or undecoded in
 *     umn_process_hooks_info; umn trace --verify reports what is missed.
 *   - Observers have the same rules, and may not allocate.
 * Memory ordering
 *   - Everything a thread wrote before calling munmap is visible to the callbacks it runs (same thread).
 *   - Observer slots are published with release / read with acquire.
 */
#ifndef UMN_PROCESS_H
#define UMN_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "umn/umn.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * umn_process_hooks_install - install the process hooks (idempotent; umn_mm_process() calls it).
 * Setting UMN_PROCESS_HOOKS=0 in the environment disables installation.
 * Context: any thread, not a signal handler. Return: 0 when every site found was patched (now or
 * before; foreign, unsafe, unknown and undecoded sites are counted in umn_process_hooks_info, not
 * errors); -EPERM when disabled by the environment or under a W^X policy that refuses executable
 * memory (PR_SET_MDWE; -EACCES or -EPERM from systemd's MemoryDenyWriteExecute filter); -ENOSYS on an
 * unsupported architecture; -ENOENT when no syscall site was found; -ENOMEM when no stub area could be
 * placed within reach of a module. A failed installation patched nothing, or (a text page refused
 * mid-way) left what it patched in place: its status is never 0.
 */
UMN_API int umn_process_hooks_install(void);

/** What the installation found and what the hooks did so far. */
struct umn_process_hooks_info {
	int status;                    /* the return value of the installation; 1 if not tried yet */
	unsigned sites_patched;        /* syscall sites patched by this copy of umn */
	unsigned sites_shared;         /* sites owned by another umn copy this copy joined */
	unsigned sites_foreign;        /* sites already patched by another library: not covered */
	unsigned sites_unsafe;         /* sites that straddle a cache line, left alone because other
					  threads existed at installation: not covered */
	unsigned modules;              /* executable file mappings scanned (the executable, every
					  shared object, those mapped later by dlopen) */
	int raw_syscall_covered;       /* glibc's syscall() function is covered (syscall instructions
					  whose number comes from a register elsewhere: sites_unknown) */
	unsigned long events;          /* invalidation ranges started by the hooks */
	unsigned long nested;          /* calls made inside a delivery that take memory away (any call while a
					  QUIET observer exists): no notifiers, only NESTED observers */
	unsigned sites_unknown;        /* syscall instructions whose number is not an immediate at the
					  site (Go's Syscall6, umn's own boundary...): not covered */
	unsigned sites_undecoded;      /* watched "mov $nr; syscall" byte patterns outside every known
					  function (no symbol, FDE or Go function table): not covered */
	unsigned sites_failed;         /* sites left unpatched by an error (status says which) */
	unsigned text_unscanned;       /* executable mappings not scanned: anonymous (JIT) or
					  unreadable files: not covered */
};
/** umn_process_hooks_get_info - fill *info. Context: any. */
UMN_API void umn_process_hooks_get_info(struct umn_process_hooks_info *info);

/** The call that caused an event. */
enum umn_process_call {
	UMN_CALL_MUNMAP = 0,
	UMN_CALL_MREMAP,
	UMN_CALL_MADVISE,
	UMN_CALL_MPROTECT,
	UMN_CALL_BRK,
	UMN_CALL_SHMDT,
	UMN_CALL_MMAP_FIXED,
	UMN_CALL_FORK,
	UMN_CALL_UFFD,                 /* reported by a userfaultfd monitor (after the fact for UNMAP) */
	UMN_CALL_QUIET,                /* a hooked call that took nothing away (UMN_PROCESS_PHASE_QUIET) */
	UMN_CALL_SHMAT,                /* shmat(SHM_REMAP) over existing mappings */
	UMN_CALL_PROCESS_MADVISE,      /* process_madvise() on this process: one event per iovec */
	UMN_CALL_TRUNCATE,             /* ftruncate, truncate, creat or openat with O_TRUNC shrinking a
					  file mapped here (CLEAR of the pages past the new size) */
	UMN_CALL_FALLOCATE,            /* fallocate punching, zeroing, collapsing or inserting in a file
					  mapped here (CLEAR) */
	UMN_CALL_COUNT
};

/** umn_process_call_name - "munmap", "mremap", ... Context: any. */
UMN_API const char *umn_process_call_name(enum umn_process_call call);
/** umn_notifier_event_name - "UNMAP", "CLEAR", ... Context: any. */
UMN_API const char *umn_notifier_event_name(enum umn_notifier_event event);

/** One event as the hooks see it. */
struct umn_process_event {
	enum umn_process_call call;
	enum umn_notifier_event event;
	uint64_t start;                /* page-aligned */
	uint64_t end;                  /* page-aligned, exclusive */
	uintptr_t caller;              /* return address into the caller of the libc function, or 0 */
	long result;                   /* at UMN_PROCESS_PHASE_END: the raw syscall result (-errno) */
	long nr;                       /* the hooked system call (SYS_munmap, ...) as issued; -1 for an
					  event not made by one call */
	const long *args;              /* its six raw arguments (NULL with nr -1), valid during the
					  observer call: what the range does not say, such as the old
					  range of an mremap growing in place (QUIET) */
};

#define UMN_PROCESS_PHASE_START 0  /* before the memory goes */
#define UMN_PROCESS_PHASE_END 1    /* after the call returned */
#define UMN_PROCESS_PHASE_QUIET 2  /* after a hooked call that caused no event (mmap, mprotect adding
				      access, brk growing, mremap growing in place...); only for observers added with
				      UMN_PROCESS_OBSERVE_QUIET; event->event is meaningless then */
#define UMN_PROCESS_SCRATCH_SIZE 64

/**
 * An observer sees every event of the process hooks, whichever umn copy owns them: phase START before
 * the call, END after it. scratch points to UMN_PROCESS_SCRATCH_SIZE bytes (aligned to 16) owned by this
 * observer for this event, the same at START and END. Context: as an invalidate callback; no malloc.
 */
typedef void (*umn_process_observer_fn)(void *ctx, const struct umn_process_event *event, int phase,
					void *scratch);

/**
 * umn_process_observer_add - add an observer (installs the hooks first).
 * Return: a slot number >= 0; -ENOSPC when all slots are taken; the installation's error; -EINVAL for a
 * NULL fn (misuse, diagnosed: base/check.hpp's rule, as for every NULL handle of umn.h).
 * Context: not from a callback or a signal handler.
 */
UMN_API int umn_process_observer_add(umn_process_observer_fn fn, void *ctx);
/** Observer flag: also call the observer (phase UMN_PROCESS_PHASE_QUIET) after every hooked call that
 * caused no event -- what a tracer needs to follow mappings being added (umn trace --verify). */
#define UMN_PROCESS_OBSERVE_QUIET (1u << 0)
/** Observer flag: also call the observer for calls made inside a delivery on the same thread (a callback's
 * or observer's own munmap, a signal handler interrupting a delivery), which otherwise pass through
 * unnotified. START and END (QUIET too with UMN_PROCESS_OBSERVE_QUIET) as for any call, but never the
 * notifiers on umn_mm_process(); the observer must therefore be reentrant (it may run inside itself). */
#define UMN_PROCESS_OBSERVE_NESTED (1u << 1)
/** umn_process_observer_add_flags - umn_process_observer_add with UMN_PROCESS_OBSERVE_* flags.
 * Return: as umn_process_observer_add; -EINVAL for an unknown flag. */
UMN_API int umn_process_observer_add_flags(umn_process_observer_fn fn, void *ctx, unsigned flags);
/** umn_process_observer_remove - stop calling the observer in slot. Context: as _add. */
UMN_API void umn_process_observer_remove(int slot);

/* ------------------------------------------------------------------------------------------------ */
/* userfaultfd monitor: an optional second source, for registered anonymous/shmem ranges only.       */

/**
 * A userfaultfd monitor thread delivering UFFD_EVENT_UNMAP / REMAP (as UNMAP of the old range) and
 * UFFD_EVENT_REMOVE (as CLEAR) for the ranges registered with it to mm. Guarantees (docs/process.md):
 * REMOVE is delivered before the pages are zapped; UNMAP and REMAP after the pages are gone (the
 * unmapping thread waits only until the event is read). Registered ranges use MISSING mode; the monitor
 * answers first-touch faults with zero pages. The monitor thread never frees or unmaps memory.
 */
struct umn_uffd_monitor;

/**
 * umn_uffd_monitor_start - open a userfaultfd and start its monitor thread delivering to mm.
 * Return: the monitor, or NULL with errno (ENOSYS / EPERM when userfaultfd is unavailable, ENOMEM;
 * EINVAL for a NULL mm: misuse, diagnosed).
 * Context: not from a callback.
 */
UMN_API struct umn_uffd_monitor *umn_uffd_monitor_start(struct umn_mm *mm);
/**
 * umn_uffd_monitor_register - watch [addr, addr + length) (page-aligned, anonymous or shmem, and not
 * yet touched is best: touched pages are unaffected, untouched ones fault into the monitor).
 * Return: 0, or -errno from UFFDIO_REGISTER (-EINVAL for file-backed or misaligned ranges); -EINVAL for
 * a NULL monitor (misuse, diagnosed).
 */
UMN_API int umn_uffd_monitor_register(struct umn_uffd_monitor *monitor, void *addr, size_t length);
/** umn_uffd_monitor_events - events delivered so far (0 for NULL: misuse, diagnosed). Context: any. */
UMN_API unsigned long umn_uffd_monitor_events(const struct umn_uffd_monitor *monitor);
/** umn_uffd_monitor_stop - stop the thread and close the descriptor; NULL is ignored. Context: not from a
 * callback. */
UMN_API void umn_uffd_monitor_stop(struct umn_uffd_monitor *monitor);

#ifdef __cplusplus
}
#endif

#endif /* UMN_PROCESS_H */
