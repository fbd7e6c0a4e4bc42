/*
 * realloc_pingpong.c - 2 MPI ranks exchange buffers that are freed and reallocated between sends, every
 * message checked byte by byte. With a registration cache that misses a free, a later buffer at the same
 * address but on other pages is sent from (or received into) the stale registration: the check fails.
 * Not a CI test (Open MPI is not a CI dependency): scripts/ucx-mpi-run.sh builds and runs it, docs/ucx.md
 * records the run. Usage: realloc_pingpong [rounds]; exit 0 iff every message of every round was right.
 * Each rank also says how many ranges libumn-ucx forwarded to UCX during the rounds (if it is loaded) and
 * how munmap's entry looks after MPI_Init (49 bb ...: Open MPI's patcher jumps from there to its hook).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "umn/ucx.h"

/* Sizes: eager and rendezvous, the large ones served by mmap/munmap in malloc. */
static const size_t sizes[] = {64u << 10, 256u << 10, 1u << 20, 4u << 20};
enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };

static unsigned char pattern(unsigned round, size_t i) { return (unsigned char)(round * 131u + i * 7u + (i >> 12)); }

/* A buffer from malloc or, every third round, straight from mmap. */
static unsigned char *get(unsigned round, size_t size)
{
	if (round % 3 != 2)
		return malloc(size);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void put(unsigned round, unsigned char *p, size_t size)
{
	if (round % 3 != 2)
		free(p);
	else
		munmap(p, size);
}

int main(int argc, char **argv)
{
	MPI_Init(&argc, &argv);
	int rank, size;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (size != 2) {
		if (rank == 0)
			fprintf(stderr, "run with 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	const unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000;
	void (*get_info)(struct umn_ucx_bridge_info *);
	*(void **)&get_info = dlsym(RTLD_DEFAULT, "umn_ucx_bridge_get_info");
	struct umn_ucx_bridge_info before = {0}, after = {0};
	if (get_info != NULL)
		get_info(&before);
	unsigned long bad = 0, messages = 0, bytes = 0;
	for (unsigned round = 0; round < rounds; ++round) {
		const size_t n = sizes[round % NSIZES];
		unsigned char *buf = get(round, n);
		if (buf == NULL)
			MPI_Abort(MPI_COMM_WORLD, 3);
		/* Both directions: each rank sends from and receives into freshly allocated memory. */
		for (int dir = 0; dir < 2; ++dir) {
			if (rank == dir) {
				for (size_t i = 0; i < n; ++i)
					buf[i] = pattern(round * 2 + dir, i);
				MPI_Send(buf, (int)n, MPI_BYTE, 1 - rank, (int)round, MPI_COMM_WORLD);
			} else {
				memset(buf, 0, n);
				MPI_Recv(buf, (int)n, MPI_BYTE, 1 - rank, (int)round, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				for (size_t i = 0; i < n; ++i)
					if (buf[i] != pattern(round * 2 + dir, i)) {
						++bad;
						break;
					}
				++messages;
				bytes += n;
			}
		}
		put(round, buf, n);
	}
	if (get_info != NULL)
		get_info(&after);
	const unsigned char *entry = dlsym(RTLD_NEXT, "munmap");
	printf("rank %d: umn-ucx %s, forwarded %lu ranges during the rounds; munmap entry %02x %02x %02x %02x\n", rank,
	       get_info == NULL ? "not loaded" : after.status == 0 ? "feeding UCX" : "not feeding UCX",
	       after.forwarded - before.forwarded, entry[0], entry[1], entry[2], entry[3]);
	unsigned long total[3] = {0}, mine[3] = {bad, messages, bytes};
	MPI_Reduce(mine, total, 3, MPI_UNSIGNED_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
	if (rank == 0)
		printf("realloc_pingpong: %u rounds, %lu messages checked (%lu MiB), %lu wrong\n", rounds, total[1],
		       total[2] >> 20, total[0]);
	MPI_Finalize();
	return rank != 0 || (total[0] == 0 && total[1] == 2ul * rounds) ? 0 : 1;
}
