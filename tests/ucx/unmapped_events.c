/*
 * unmapped_events.c - a UCX program that asks UCM for UCM_EVENT_VM_UNMAPPED and checks what it receives.
 *
 * Built twice from this file: linked with libumn-ucx (ucx_events_linked) and without it (ucx_events_plain,
 * also run with LD_PRELOAD=libumn-ucx.so). Run with UCX's own hooks off (UCX_MEM_MMAP_HOOK_MODE=none),
 * so that umn is the only possible source. Modes (argv[1]):
 *   deliver    the handler registers, and a one-page munmap reaches it with exactly that range;
 *   refuse     ucm_set_event_handler() answers UCS_ERR_UNSUPPORTED (nothing can deliver: the control);
 *   semantics  every call UCM announces, as UCM announces it (ucm/event/event.c): the expected range for
 *              each, none for mprotect; mremap grown in place by the kernel included; announced while the
 *              memory is still there (but for the QUIET mremap cases); and what UCM misses: the target
 *              that mremap(MREMAP_FIXED) replaces, process_madvise;
 *   alone      deliver, and UCX's own mmap hooks were turned off by the bridge although the environment
 *              did not ask (UCX defaults), so that umn alone delivered.
 * Exit 0 when the mode's expectation holds; otherwise a "FAIL:" line and exit 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ucm/api/ucm.h>
#include <ucs/type/status.h>

#include "umn/ucx.h"

#define MAX_SEEN 64

/* volatile: glibc declares munmap & co. leaf functions, so without it the compiler may move the test's
 * accesses across calls whose hooks run the handler. */
static volatile struct {
	uintptr_t lo, hi; /* only events overlapping [lo, hi) are recorded: ours, not the allocator's */
	unsigned n;
	uintptr_t start[MAX_SEEN], end[MAX_SEEN];
	int intact[MAX_SEEN]; /* the range's first page was still there, holding kFill, when announced */
} g_seen;
static size_t g_page;

/* The byte the test writes into every watched range before the call that takes it away: an event that
 * comes before the call finds it there; one after the call finds the page gone, zeroed or replaced. */
enum { kFill = 1 };

/* Whether the page at addr is mapped (mincore, which no hook sees) and starts with kFill. */
static int intact(uintptr_t addr)
{
	unsigned char resident;
	void *page = (void *)(addr & ~(g_page - 1));
	return mincore(page, g_page, &resident) == 0 && *(volatile const char *)addr == kFill;
}

static void handler(ucm_event_type_t type, ucm_event_t *event, void *arg)
{
	(void)arg;
	uintptr_t start = (uintptr_t)event->vm_unmapped.address;
	uintptr_t end = start + event->vm_unmapped.size;
	if (type != UCM_EVENT_VM_UNMAPPED || end <= g_seen.lo || start >= g_seen.hi || g_seen.n == MAX_SEEN)
		return;
	g_seen.start[g_seen.n] = start;
	g_seen.end[g_seen.n] = end;
	g_seen.intact[g_seen.n] = intact(start);
	g_seen.n++;
}

static int g_failed;

#define EXPECT(cond, ...)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "FAIL: " __VA_ARGS__);                \
			fputc('\n', stderr);                                  \
			g_failed = 1;                                         \
		}                                                             \
	} while (0)

static void watch(void *lo, size_t length)
{
	g_seen.lo = (uintptr_t)lo;
	g_seen.hi = (uintptr_t)lo + length;
	g_seen.n = 0;
}

/* The recorded events are exactly one, [start, start + length) after page alignment; announced before the
 * memory went when before is set. */
static void expect_range(const char *what, void *start, size_t length, int before)
{
	uintptr_t s = (uintptr_t)start & ~(g_page - 1);
	uintptr_t e = ((uintptr_t)start + length + g_page - 1) & ~(g_page - 1);
	EXPECT(g_seen.n == 1, "%s: %u VM_UNMAPPED events, expected 1", what, g_seen.n);
	if (g_seen.n >= 1) {
		uintptr_t gs = g_seen.start[0] & ~(g_page - 1);
		uintptr_t ge = (g_seen.end[0] + g_page - 1) & ~(g_page - 1);
		EXPECT(gs == s && ge == e, "%s: event [%#lx, %#lx), expected [%#lx, %#lx)", what,
		       (unsigned long)gs, (unsigned long)ge, (unsigned long)s, (unsigned long)e);
		EXPECT(!before || g_seen.intact[0], "%s: announced after the memory went", what);
	}
	printf("%-34s -> %u event(s)\n", what, g_seen.n);
}

static void expect_one(const char *what, void *start, size_t length)
{
	expect_range(what, start, length, 1);
}

static void *map(void *at, size_t length, int extra)
{
	void *p = mmap(at, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, kFill, length);
	return p;
}

static int deliver(void)
{
	char *p = map(NULL, g_page, 0);
	watch(p, g_page);
	munmap(p, g_page);
	expect_one("munmap of one page", p, g_page);
	return g_failed;
}

static void semantics_mremap(void)
{
	/* Grown in place: two pages reserved, the second given back, the first grown over it. */
	char *p = map(NULL, 2 * g_page, 0);
	munmap(p + g_page, g_page);
	watch(p, 2 * g_page);
	char *q = mremap(p, g_page, 2 * g_page, MREMAP_MAYMOVE);
	EXPECT(q == p, "mremap did not grow in place (%p -> %p): the case is not exercised", (void *)p, (void *)q);
	expect_one("mremap grown in place (MAYMOVE)", p, g_page);
	watch(p, 2 * g_page);
	munmap(p + g_page, g_page); /* and without MAYMOVE */
	g_seen.n = 0;
	q = mremap(p, g_page, 2 * g_page, 0);
	EXPECT(q == p, "mremap(flags 0) did not grow in place");
	expect_one("mremap grown in place (flags 0)", p, g_page);
	watch(p, 2 * g_page);
	q = mremap(p, 2 * g_page, g_page, 0);
	expect_one("mremap shrink: whole old range", p, 2 * g_page);
	/* Moved: to a fixed place in a reserved hole. */
	char *hole = map(NULL, g_page, 0);
	watch(p, g_page);
	q = mremap(p, g_page, g_page, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
	EXPECT(q == hole, "mremap FIXED failed");
	expect_one("mremap moved (FIXED): old range", p, g_page);
	/* What MREMAP_FIXED replaces at its target goes too (UCM's own hooks miss it). */
	char *r = map(NULL, g_page, 0);
	memset(r, kFill + 1, g_page); /* so that the target, once replaced, no longer holds kFill */
	watch(q, g_page);
	char *t = mremap(r, g_page, g_page, MREMAP_MAYMOVE | MREMAP_FIXED, q);
	EXPECT(t == q, "mremap FIXED onto a mapping failed");
	expect_one("mremap FIXED: the target replaced", q, g_page);
	/* A shared mapping duplicated onto a mapping (old size 0): umn reports it QUIET, so after the call. */
	char *shared = mmap(NULL, g_page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	EXPECT(shared != MAP_FAILED, "mmap(MAP_SHARED) failed");
	memset(t, kFill, g_page);
	watch(t, g_page);
	char *dup = mremap(shared, 0, g_page, MREMAP_MAYMOVE | MREMAP_FIXED, t);
	EXPECT(dup == t, "mremap(old size 0, FIXED) onto a mapping failed");
	expect_range("mremap FIXED, old size 0: the target", t, g_page, 0);
	munmap(t, g_page);
	munmap(shared, g_page);
}

static void semantics_shm(void)
{
	int id = shmget(IPC_PRIVATE, g_page, IPC_CREAT | 0600);
	if (id < 0) {
		perror("shmget");
		exit(2);
	}
	char *p = map(NULL, g_page, 0);
	watch(p, g_page);
	char *s = shmat(id, p, SHM_REMAP);
	EXPECT(s == p, "shmat(SHM_REMAP) failed");
	expect_one("shmat(SHM_REMAP) over a mapping", p, g_page);
	shmctl(id, IPC_RMID, NULL);
	memset(s, kFill, g_page);
	g_seen.n = 0;
	shmdt(s);
	expect_one("shmdt", p, g_page);
}

static void semantics_brk(void)
{
	char *top = sbrk(0);
	char *base = (char *)(((uintptr_t)top + g_page - 1) & ~(g_page - 1));
	if (brk(base + g_page) != 0) {
		perror("brk");
		exit(2);
	}
	memset(base, kFill, g_page);
	watch(base, g_page);
	EXPECT(brk(base) == 0, "brk shrink failed");
	expect_one("brk shrinking by one page", base, g_page);
	brk(top);
}

/* process_madvise(PAGEOUT) on this process: UCM never sees it; umn announces it (whether or not the kernel
 * then allows it), so UCX must hear of it. */
static void semantics_process_madvise(char *p)
{
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (pidfd < 0) {
		perror("pidfd_open");
		exit(2);
	}
	struct iovec iov = {p, g_page};
	memset(p, kFill, g_page);
	g_seen.n = 0;
	syscall(SYS_process_madvise, pidfd, &iov, 1, MADV_PAGEOUT, 0);
	expect_one("process_madvise(PAGEOUT) on self", p, g_page);
	close(pidfd);
}

static int semantics(void)
{
	char *p = map(NULL, 4 * g_page, 0);
	watch(p, 4 * g_page);
	munmap(p + g_page, g_page);
	expect_one("munmap", p + g_page, g_page);
	g_seen.n = 0;
	syscall(SYS_munmap, p + 2 * g_page, g_page);
	expect_one("syscall(SYS_munmap) (UCX's hooks miss it)", p + 2 * g_page, g_page);
	g_seen.n = 0;
	map(p + 3 * g_page, g_page, MAP_FIXED);
	expect_one("mmap(MAP_FIXED) over a mapping", p + 3 * g_page, g_page);
	g_seen.n = 0;
	madvise(p, g_page, MADV_DONTNEED);
	expect_one("madvise(DONTNEED)", p, g_page);
	memset(p, kFill, g_page); /* DONTNEED zeroed it */
	g_seen.n = 0;
	madvise(p, g_page, MADV_FREE);
	expect_one("madvise(FREE)", p, g_page);
	semantics_process_madvise(p);
	g_seen.n = 0;
	mprotect(p, g_page, PROT_READ);
	EXPECT(g_seen.n == 0, "mprotect: %u events, UCM announces none", g_seen.n);
	printf("%-34s -> %u event(s)\n", "mprotect (not a UCM event)", g_seen.n);
	munmap(p, 4 * g_page);
	semantics_mremap();
	semantics_shm();
	semantics_brk();
	watch(NULL, 0);
	EXPECT(ucm_test_external_events(UCM_EVENT_VM_UNMAPPED) == UCS_OK, "ucm_test_external_events failed");
	return g_failed;
}

/* A signal handler that unmaps memory, interrupting a thread while it delivers an event to UCX (here made
 * certain: a UCM handler raises the signal while it handles the munmap of g_trigger). UCX's own hooks
 * announce the handler's munmap (UCM takes its event lock for reading again); so must umn. */
static char *volatile g_trigger, *volatile g_victim;

static void unmap_victim(int sig)
{
	(void)sig;
	munmap(g_victim, g_page);
}

static void raise_on_trigger(ucm_event_type_t type, ucm_event_t *event, void *arg)
{
	(void)type;
	(void)arg;
	if (event->vm_unmapped.address == g_trigger)
		raise(SIGUSR1);
}

static int nested(void)
{
	signal(SIGUSR1, unmap_victim);
	if (ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, -1, raise_on_trigger, NULL) != UCS_OK) {
		fprintf(stderr, "FAIL: ucm_set_event_handler(raise_on_trigger)\n");
		return 1;
	}
	g_trigger = map(NULL, g_page, 0);
	g_victim = map(NULL, g_page, 0);
	watch(g_victim, g_page);
	munmap(g_trigger, g_page);
	expect_one("munmap by a signal handler inside a delivery", g_victim, g_page);
	return g_failed;
}

/* The bridge's own view, found without linking it (the plain build reaches it through LD_PRELOAD). */
static int alone(void)
{
	void (*get_info)(struct umn_ucx_bridge_info *);
	*(void **)&get_info = dlsym(RTLD_DEFAULT, "umn_ucx_bridge_get_info"); /* POSIX's way around ISO C */
	EXPECT(getenv("UCX_MEM_MMAP_HOOK_MODE") == NULL, "run this mode with UCX's default settings");
	EXPECT(get_info != NULL, "libumn-ucx is not loaded");
	EXPECT(ucm_global_opts.mmap_hook_mode == UCM_MMAP_HOOK_NONE, "UCX's mmap hooks are on (mode %d)",
	       (int)ucm_global_opts.mmap_hook_mode);
	if (get_info != NULL) {
		struct umn_ucx_bridge_info info;
		get_info(&info);
		EXPECT(info.status == 0 && info.ucx_hooks_off == 1, "bridge status %d, UCX hooks off %d",
		       info.status, info.ucx_hooks_off);
	}
	return deliver();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "deliver";
	g_page = (size_t)sysconf(_SC_PAGESIZE);
	ucs_status_t status = ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED, 0, handler, NULL);
	if (strcmp(mode, "refuse") == 0) {
		EXPECT(status == UCS_ERR_UNSUPPORTED, "ucm_set_event_handler: %s, expected UCX's refusal",
		       ucs_status_string(status));
		return g_failed;
	}
	if (status != UCS_OK) {
		fprintf(stderr, "FAIL: ucm_set_event_handler(UCM_EVENT_VM_UNMAPPED): %s\n", ucs_status_string(status));
		return 1;
	}
	if (strcmp(mode, "semantics") == 0)
		return semantics();
	if (strcmp(mode, "alone") == 0)
		return alone();
	if (strcmp(mode, "nested") == 0)
		return nested();
	return deliver();
}
