/*
 * rcache_rounds.c - UCX's own registration cache (ucs_rcache, no-op registration) judged by UCX's own
 * check: with UCX_RCACHE_CHECK_PFN=N every cache hit compares the physical pages of the region's first N
 * pages with those seen at registration, and aborts ("pfn check failed") if one moved.
 *
 * Each round caches a 16-page buffer, changes what backs it, touches it and gets it again:
 *   unchanged     nothing (the control for caching: a hit, no registration);
 *   munmap+remap  munmap, then a new mapping at the same address (other pages: the old ones are taken
 *                 by a mapping made in between);
 *   madvise       madvise(MADV_DONTNEED): the pages are discarded, new ones fault in;
 *   map-fixed     mmap(MAP_FIXED) over the buffer;
 *   mremap-move   mremap moves the pages away (MREMAP_FIXED), new pages are mapped at the address;
 *   mremap-grow   mremap grows the buffer in place (the kernel invalidates nothing; UCM announces it).
 * Expected: UCX never reports a moved page, and every changing round registers once more (the count is
 * exact), the unchanged rounds never. Rounds per kind: argv[1] (default 2000; UMN_STRESS_LONG=1: 50000).
 *
 * --threads: two threads share the cache, each with its own buffer (madvise and map-fixed rounds): the
 * same expectations, events arriving from both threads while the other gets and registers.
 * --control: no event source; the program declares UCM_EVENT_VM_UNMAPPED external itself (as a bridge
 * that delivers nothing would) and runs munmap+remap rounds in a child, which must die in UCX's PFN
 * check. Exit 0 when the expectation of the mode holds, 1 otherwise.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ucm/api/ucm.h>
#include <ucs/config/global_opts.h>
#include <ucs/type/status.h>

#include "../../bench/ucx/rcache_params.h" /* the rcache the benchmarks compare with */

enum { PAGES = 16 };
enum kind { UNCHANGED, MUNMAP_REMAP, MADVISE, MAP_FIXED_OVER, MREMAP_MOVE, MREMAP_GROW, KINDS };
static const char *const kind_names[KINDS] = {"unchanged",   "munmap+remap", "madvise",
					      "map-fixed",   "mremap-move",  "mremap-grow"};

/* Per thread (--threads): registrations are counted by the thread whose get registers. volatile: see
 * unmapped_events.c (leaf functions). */
static _Thread_local volatile unsigned long g_regs;
static size_t g_page, g_len;
static _Thread_local char *g_scratch; /* a place of g_len bytes kept mapped, away from the buffer */

static ucs_status_t reg(void *ctx, ucs_rcache_t *rcache, void *arg, ucs_rcache_region_t *region, uint16_t flags)
{
	(void)ctx, (void)rcache, (void)arg, (void)region, (void)flags;
	++g_regs;
	return UCS_OK;
}

static void dereg(void *ctx, ucs_rcache_t *rcache, ucs_rcache_region_t *region)
{
	(void)ctx, (void)rcache, (void)region;
}

static void dump(void *ctx, ucs_rcache_t *rcache, ucs_rcache_region_t *region, char *buf, size_t max)
{
	(void)ctx, (void)rcache, (void)region;
	snprintf(buf, max, "no-op");
}

static const ucs_rcache_ops_t ops = {reg, dereg, dump};

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static char *map_touched(void *at, size_t length, int extra)
{
	char *p = mmap(at, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
	if (p == MAP_FAILED || (at != NULL && p != at))
		die("mmap");
	memset(p, 0x5a, length);
	return p;
}

static ucs_rcache_t *make_rcache(void)
{
	ucs_rcache_t *rcache;
	ucs_status_t status = umn_ucx_rcache_create(&ops, sizeof(ucs_rcache_region_t), "umn-ucx-test", &rcache);
	if (status != UCS_OK) {
		fprintf(stderr, "FAIL: ucs_rcache_create: %s\n", ucs_status_string(status));
		exit(1);
	}
	return rcache;
}

static void get_put(ucs_rcache_t *rcache, char *buf)
{
	ucs_rcache_region_t *region;
	if (ucs_rcache_get(rcache, buf, g_len, PROT_READ | PROT_WRITE, NULL, &region) != UCS_OK) {
		fprintf(stderr, "FAIL: ucs_rcache_get\n");
		exit(1);
	}
	ucs_rcache_region_put(rcache, region);
}

/* Changes what backs [buf, buf + g_len) as the kind says (buf's address stays). Return: 0, or -1 when
 * mremap-grow could not grow in place (the case would not be exercised). */
static int change(enum kind kind, char *buf)
{
	char *other, *moved;
	switch (kind) {
	case UNCHANGED:
		return 0;
	case MUNMAP_REMAP:
		munmap(buf, g_len);
		map_touched(g_scratch, g_len, MAP_FIXED); /* takes the pages just freed */
		map_touched(buf, g_len, MAP_FIXED_NOREPLACE);
		madvise(g_scratch, g_len, MADV_DONTNEED); /* gives them back, keeps the place */
		return 0;
	case MADVISE:
		madvise(buf, g_len, MADV_DONTNEED);
		return 0;
	case MAP_FIXED_OVER:
		map_touched(buf, g_len, MAP_FIXED);
		return 0;
	case MREMAP_MOVE:
		other = map_touched(NULL, g_len, 0);
		moved = mremap(buf, g_len, g_len, MREMAP_MAYMOVE | MREMAP_FIXED, other);
		if (moved != other)
			die("mremap(FIXED)");
		map_touched(buf, g_len, MAP_FIXED_NOREPLACE);
		munmap(moved, g_len);
		return 0;
	case MREMAP_GROW:
		moved = mremap(buf, g_len, g_len + g_page, MREMAP_MAYMOVE);
		if (moved == MAP_FAILED)
			die("mremap(grow)");
		if (moved != buf) {
			fprintf(stderr, "FAIL: mremap did not grow in place\n");
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* Restores the one-buffer layout after a round (mremap-grow leaves one page more, given back here so that
 * the next growth finds it free). */
static void restore(enum kind kind, char *buf)
{
	if (kind == MREMAP_GROW && mremap(buf, g_len + g_page, g_len, 0) != buf)
		die("mremap(shrink)");
	memset(buf, 0x5a, g_len);
}

static int rounds(ucs_rcache_t *rcache, unsigned per_kind, unsigned kinds_mask)
{
	g_scratch = map_touched(NULL, g_len, 0);
	char *buf = map_touched(NULL, g_len + g_page, 0);
	munmap(buf + g_len, g_page); /* the page mremap-grow grows into */
	unsigned long registered[KINDS] = {0};
	int failed = 0;
	for (unsigned i = 0; i < per_kind * KINDS; ++i) {
		enum kind kind = (enum kind)(i % KINDS);
		if ((kinds_mask & (1u << kind)) == 0)
			continue;
		get_put(rcache, buf); /* cached (registered now or before) */
		unsigned long before = g_regs;
		if (change(kind, buf) != 0) {
			failed = 1;
			break;
		}
		memset(buf, 0xa5, g_len); /* new pages fault in where the old went */
		get_put(rcache, buf);     /* a stale hit dies here in UCX's PFN check */
		registered[kind] += g_regs - before;
		restore(kind, buf);
	}
	for (int k = 0; k < KINDS; ++k) {
		if ((kinds_mask & (1u << k)) == 0)
			continue;
		unsigned long want = k == UNCHANGED ? 0 : per_kind;
		printf("%-13s %u rounds, re-registered %lu (expected %lu)\n", kind_names[k], per_kind,
		       registered[k], want);
		if (registered[k] != want) {
			fprintf(stderr, "FAIL: %s: %lu registrations after %u rounds, expected %lu\n", kind_names[k],
				registered[k], per_kind, want);
			failed = 1;
		}
	}
	munmap(buf, g_len);
	munmap(g_scratch, g_len);
	return failed;
}

/* --threads: two threads, one cache, each changing its own buffer with the kinds that leave no hole
 * another thread's mmap could take (madvise, map-fixed), and unchanged rounds. */
enum { THREADS = 2 };
static ucs_rcache_t *g_shared;
static unsigned g_per_kind;

static void *thread_rounds(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)rounds(g_shared, g_per_kind, (1u << UNCHANGED) | (1u << MADVISE) | (1u << MAP_FIXED_OVER));
}

static int threaded(unsigned per_kind)
{
	g_shared = make_rcache();
	g_per_kind = per_kind;
	pthread_t threads[THREADS];
	for (int t = 0; t < THREADS; ++t)
		if (pthread_create(&threads[t], NULL, thread_rounds, NULL) != 0)
			die("pthread_create");
	int failed = 0;
	for (int t = 0; t < THREADS; ++t) {
		void *result;
		pthread_join(threads[t], &result);
		failed |= result != NULL;
	}
	ucs_rcache_destroy(g_shared);
	return failed;
}

/* The control: a child runs munmap+remap rounds with nothing delivering events and must die in UCX's
 * PFN check; its stderr is read for UCX's message. */
static int control(unsigned per_kind)
{
	int pipefd[2];
	if (pipe(pipefd) != 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		ucm_set_external_event(UCM_EVENT_VM_UNMAPPED);
		rounds(make_rcache(), per_kind, 1u << MUNMAP_REMAP);
		_exit(0);
	}
	close(pipefd[1]);
	static char out[1 << 16];
	size_t n = 0;
	ssize_t got;
	while (n < sizeof(out) - 1 && (got = read(pipefd[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)got;
	out[n] = '\0';
	int status;
	waitpid(pid, &status, 0);
	const int died = WIFSIGNALED(status);
	const int pfn = strstr(out, "pfn check failed") != NULL || strstr(out, "moved from pfn") != NULL;
	printf("control: child %s%s\n", died ? "killed by signal " : "exited ",
	       died ? strsignal(WTERMSIG(status)) : (WEXITSTATUS(status) == 0 ? "0" : "non-zero"));
	if (!died || !pfn) {
		fprintf(stderr, "FAIL: the control did not die in UCX's PFN check; its stderr:\n%s\n", out);
		return 1;
	}
	printf("control: died in UCX's PFN check, as it must without an event source\n");
	return 0;
}

int main(int argc, char **argv)
{
	g_page = (size_t)sysconf(_SC_PAGESIZE);
	g_len = PAGES * g_page;
	const char *mode = argc > 1 && argv[argc - 1][0] == '-' ? argv[argc - 1] : "";
	unsigned per_kind = getenv("UMN_STRESS_LONG") != NULL && strcmp(getenv("UMN_STRESS_LONG"), "1") == 0 ? 50000 : 2000;
	if (argc > 1 && argv[1][0] != '-')
		per_kind = (unsigned)strtoul(argv[1], NULL, 10);
	if (ucs_global_opts.rcache_check_pfn < PAGES) {
		fprintf(stderr, "FAIL: run with UCX_RCACHE_CHECK_PFN=%d (or more): it is %u\n", PAGES,
			ucs_global_opts.rcache_check_pfn);
		return 1;
	}
	if (strcmp(mode, "--control") == 0)
		return control(per_kind);
	if (strcmp(mode, "--threads") == 0)
		return threaded(per_kind);
	ucs_rcache_t *rcache = make_rcache();
	int failed = rounds(rcache, per_kind, (1u << KINDS) - 1);
	ucs_rcache_destroy(rcache);
	return failed;
}
