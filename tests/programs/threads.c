#define _GNU_SOURCE
/* threads.c - a multi-threaded program for `umn trace --verify`: threads allocate and free large blocks
 * (malloc's mmap path and per-thread arenas), remap, protect and discard, while others create threads
 * (stacks and guard pages come and go). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *work(void *arg) {
	(void)arg;
	for (int i = 0; i < 40; ++i) {
		char *big = malloc((size_t)(256 + i) << 10);
		memset(big, i, 4096);
		big = realloc(big, (size_t)(512 + i) << 10);
		free(big);
		char *small = malloc(1000);
		free(small);
		char *m = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(m, 1, 8 * 4096);
		madvise(m, 4096, MADV_DONTNEED);
		mprotect(m + 4096, 4096, PROT_READ);
		m = mremap(m, 8 * 4096, 16 * 4096, MREMAP_MAYMOVE);
		munmap(m, 16 * 4096);
	}
	return NULL;
}

int main(void) {
	for (int round = 0; round < 2; ++round) {
		pthread_t threads[4];
		for (int t = 0; t < 4; ++t) pthread_create(&threads[t], NULL, work, NULL);
		for (int t = 0; t < 4; ++t) pthread_join(threads[t], NULL);
	}
	return 0;
}
