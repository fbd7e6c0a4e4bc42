/*
 * bridge_bench.c - what UCX's memory events cost with umn as their source (libumn-ucx.so) against UCX's
 * own hooks (bistro, the default), measured in the same run.
 *
 * Without arguments it runs itself as children, alternating the configurations REPS times each, and
 * prints the medians and the ratios:
 *   ucx   UCX's defaults: its bistro hooks patch libc and deliver the events;
 *   umn   LD_PRELOAD=libumn-ucx.so: the bridge turns UCX's hooks off and umn delivers;
 *   none  UCX_MEM_MMAP_HOOK_MODE=none and no bridge: nobody delivers (the floor; no cache possible).
 * Each child makes a ucs_rcache (as UCP does: UCM_EVENT_VM_UNMAPPED, one region cached elsewhere, so that
 * every event walks a non-empty cache) and times
 *   pair  mmap + munmap of one page, per pair;
 *   free  free() of a block of 4 MiB and more (malloc'd above a fixed mmap threshold, so free is a munmap),
 *         per free; 16 sizes in turn, so that the placements of the blocks average out.
 * On a shared machine the runs are short, many and interleaved; each run reports the fastest batch of 50
 * operations (per operation), and the medians of those are printed.
 * Usage: ucx_bridge_bench [path/to/libumn-ucx.so]   (default: the one built next to this program)
 */
#define _GNU_SOURCE
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ucs/type/status.h>

#include "rcache_params.h"

enum { REPS = 15, PAIRS = 20000, FREES = 5000, BATCH = 50, CONFIGS = 3, BIG_MIB = 4 }; /* short runs, many, interleaved: a shared machine */
static const char *const names[CONFIGS] = {"ucx", "umn", "none"};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static ucs_status_t reg(void *c, ucs_rcache_t *r, void *a, ucs_rcache_region_t *g, uint16_t f)
{
	(void)c, (void)r, (void)a, (void)g, (void)f;
	return UCS_OK;
}
static void dereg(void *c, ucs_rcache_t *r, ucs_rcache_region_t *g) { (void)c, (void)r, (void)g; }
static void dump(void *c, ucs_rcache_t *r, ucs_rcache_region_t *g, char *b, size_t m)
{
	(void)c, (void)r, (void)g;
	snprintf(b, m, "bench");
}
static const ucs_rcache_ops_t ops = {reg, dereg, dump};

/* The child: one configuration, prints "pair_ns free_ns". */
static int child(int with_cache)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE), big = (size_t)BIG_MIB << 20;
	mallopt(M_MMAP_THRESHOLD, 1 << 20); /* fixed: free of a 4 MiB block is always a munmap */
	if (with_cache) {
		ucs_rcache_t *rcache;
		ucs_rcache_region_t *region;
		if (umn_ucx_rcache_create(&ops, sizeof(ucs_rcache_region_t), "bench", &rcache) != UCS_OK) {
			fprintf(stderr, "ucs_rcache_create failed\n");
			return 1;
		}
		char *cached = mmap(NULL, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(cached, 1, 16 * page);
		if (ucs_rcache_get(rcache, cached, 16 * page, PROT_READ | PROT_WRITE, NULL, &region) != UCS_OK)
			return 1;
		ucs_rcache_region_put(rcache, region);
	}
	/* Per operation: the fastest batch of BATCH, which preemption by other processes cannot inflate. */
	double pair = 1e30, fr = 1e30;
	for (int b = 0; b < PAIRS / BATCH; ++b) {
		double t0 = now_ns();
		for (int i = 0; i < BATCH; ++i) {
			void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			munmap(p, page);
		}
		pair = fmin(pair, (now_ns() - t0) / BATCH);
	}
	for (int b = 0; b < FREES / BATCH; ++b) {
		double in_free = 0;
		for (int i = 0; i < BATCH; ++i) {
			/* sizes cycling over 16 steps of 68 KiB: the blocks land at varying alignments, so that
			 * no configuration is favoured by where its mappings happen to fall (page tables freed
			 * or not by the munmap) */
			char *volatile block = malloc(big + (size_t)(i % 16) * (68u << 10));
			block[0] = 1;
			double t = now_ns();
			free(block);
			in_free += now_ns() - t;
		}
		fr = fmin(fr, in_free / BATCH);
	}
	printf("%.1f %.1f\n", pair, fr);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Runs this program as a child in configuration c; fills out with what it printed. Return: 0 or -1. */
static int run(const char *self, const char *bridge, int c, double out[2])
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		unsetenv("UCX_MEM_MMAP_HOOK_MODE");
		unsetenv("UCX_MEM_MALLOC_HOOKS");
		unsetenv("LD_PRELOAD");
		if (c == 1)
			setenv("LD_PRELOAD", bridge, 1);
		if (c == 2)
			setenv("UCX_MEM_MMAP_HOOK_MODE", "none", 1);
		execl(self, self, "--child", c == 2 ? "nocache" : "cache", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	char text[128] = {0};
	ssize_t n = read(fd[0], text, sizeof(text) - 1);
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    sscanf(text, "%lf %lf", &out[0], &out[1]) != 2)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return child(strcmp(argv[2], "cache") == 0);
	const char *bridge = argc > 1 ? argv[1] : UMN_UCX_BRIDGE_PATH;
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 1;
	self[len] = '\0';
	enum { K = 2 };
	double v[K][CONFIGS][REPS], med[K][CONFIGS];
	for (int r = 0; r < REPS; ++r)
		for (int c = 0; c < CONFIGS; ++c) {
			double out[K];
			if (run(self, bridge, c, out) != 0) {
				fprintf(stderr, "configuration %s failed\n", names[c]);
				return 1;
			}
			for (int k = 0; k < K; ++k)
				v[k][c][r] = out[k];
		}
	printf("medians of %d interleaved runs each of the fastest batch of %d (per op); %d mmap+munmap pairs and %d "
	       "free(%u MiB and more) per run\n", REPS, BATCH, PAIRS, FREES, BIG_MIB);
	printf("%-5s %12s %12s\n", "", "pair (ns)", "free (ns)");
	for (int c = 0; c < CONFIGS; ++c) {
		for (int k = 0; k < K; ++k) {
			qsort(v[k][c], REPS, sizeof(double), cmp);
			med[k][c] = v[k][c][REPS / 2];
		}
		printf("%-5s %12.1f %12.1f\n", names[c], med[0][c], med[1][c]);
	}
	printf("ratio umn/ucx (< 1: umn costs less than UCX's own hooks): pair %.3f, free %.3f\n", med[0][1] / med[0][0],
	       med[1][1] / med[1][0]);
	printf("above none: ucx pair %+.0f ns, free %+.0f ns; umn pair %+.0f ns, free %+.0f ns\n", med[0][0] - med[0][2],
	       med[1][0] - med[1][2], med[0][1] - med[0][2], med[1][1] - med[1][2]);
	return 0;
}
