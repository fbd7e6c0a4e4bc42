/* each_call.c - `each_call KIND raw|libc`: one memory-changing call of each kind `umn trace --verify`
 * checks, issued through libc (announced by the hooks: 0 misses expected) or by an instruction generated
 * at run time (jit_syscall.h: unannounced, one miss expected). KIND: munmap, mremap, madvise,
 * mprotect, brk, shmdt, mmap_fixed, process_madvise, ftruncate and fallocate (a memfd mapped shared, shrunk
 * or punched: the kernel zaps the mapped pages); and two kinds about the call's result:
 * mprotect_partial (a range ending in a hole: the kernel fails with ENOMEM after the mapped part has
 * lost its access, so an unannounced one is a miss) and refused (madvise(MADV_REMOVE) of private memory
 * and mremap(MREMAP_FIXED) without MREMAP_MAYMOVE, which the kernel refuses with EINVAL and which take
 * nothing: never a miss). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "jit_syscall.h"

enum { kPage = 4096 };

static int g_raw;

/* The call, raw or through libc's syscall() (whose body the hooks patch), which takes memory away. */
static long call(long nr, long a1, long a2, long a3, long a4, long a5) {
	if (g_raw) return jit_syscall(nr, a1, a2, a3, a4, a5, 0);
	return syscall(nr, a1, a2, a3, a4, a5);
}

static char *pages(int n) {
	char *p = mmap(NULL, (size_t)n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, (size_t)n * kPage);
	return p;
}

static long run(const char *kind) {
	if (strcmp(kind, "munmap") == 0) return call(SYS_munmap, (long)pages(2), kPage, 0, 0, 0);
	if (strcmp(kind, "mremap") == 0) return call(SYS_mremap, (long)pages(4), 4 * kPage, kPage, 0, 0) < 0;
	if (strcmp(kind, "madvise") == 0) return call(SYS_madvise, (long)pages(2), kPage, MADV_DONTNEED, 0, 0);
	if (strcmp(kind, "mprotect") == 0) return call(SYS_mprotect, (long)pages(2), kPage, PROT_READ, 0, 0);
	if (strcmp(kind, "mmap_fixed") == 0) {
		char *p = pages(2);
		return call(SYS_mmap, (long)p, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1) != (long)p;
	}
	if (strcmp(kind, "brk") == 0) {
		long start = call(SYS_brk, 0, 0, 0, 0, 0);
		long grown = call(SYS_brk, start + 4 * kPage, 0, 0, 0, 0);
		memset((char *)start, 1, 4 * kPage);
		return call(SYS_brk, start + kPage, 0, 0, 0, 0) != start + kPage || grown != start + 4 * kPage;
	}
	if (strcmp(kind, "shmdt") == 0) {
		int id = shmget(IPC_PRIVATE, 2 * kPage, IPC_CREAT | 0600);
		char *at = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
		memset(at, 1, 2 * kPage);
		return call(SYS_shmdt, (long)at, 0, 0, 0, 0);
	}
	if (strcmp(kind, "process_madvise") == 0) {
		int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
		struct iovec iov = {pages(2), kPage};
		return call(SYS_process_madvise, pidfd, (long)&iov, 1, MADV_PAGEOUT, 0) != kPage;
	}
	if (strcmp(kind, "ftruncate") == 0 || strcmp(kind, "fallocate") == 0) {
		int fd = memfd_create("each_call", 0);
		if (fd < 0 || ftruncate(fd, 4 * kPage) != 0) return 2;
		char *p = mmap(NULL, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		memset(p, 1, 4 * kPage);
		if (kind[1] == 't') return call(SYS_ftruncate, fd, kPage, 0, 0, 0);
		return call(SYS_fallocate, fd, 0x02 | 0x01 /* PUNCH_HOLE | KEEP_SIZE */, kPage, 2 * kPage, 0);
	}
	if (strcmp(kind, "mprotect_partial") == 0) {
		char *p = pages(3);
		munmap(p + 2 * kPage, kPage);
		long r = call(SYS_mprotect, (long)p, 3 * kPage, PROT_READ, 0, 0);
		return (g_raw ? r == -ENOMEM : r == -1 && errno == ENOMEM) ? 0 : 1;
	}
	if (strcmp(kind, "refused") == 0) {
		char *p = pages(4);
		long advised = call(SYS_madvise, (long)p, kPage, MADV_REMOVE, 0, 0);
		long moved = call(SYS_mremap, (long)p, 2 * kPage, kPage, MREMAP_FIXED, (long)(p + 2 * kPage));
		long einval = g_raw ? -EINVAL : -1;
		return advised == einval && moved == einval && p[0] == 1 && p[2 * kPage] == 1 ? 0 : 1;
	}
	return -1;
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	g_raw = strcmp(argv[2], "raw") == 0;
	long result = run(argv[1]);
	if (result != 0) fprintf(stderr, "each_call %s %s: %ld\n", argv[1], argv[2], result);
	return result == 0 ? 0 : 1;
}
