/* jit_madvise.c - negative control for `umn trace --verify`: madvise(MADV_DONTNEED) issued by an
 * instruction generated at run time (jit_syscall.h), which no hook announces. The mapping stays, only
 * its pages are discarded: the tracer must still report a miss (exit status 3). */
#include <stdio.h>
#include <sys/syscall.h>

#include "jit_syscall.h"

int main(void) {
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	long ret = jit_syscall(SYS_madvise, (long)p, 2 * 4096, MADV_DONTNEED, 0, 0, 0);
	printf("unhooked madvise: %ld, first byte now %d\n", ret, p[0]);
	return p[0] == 0 ? 0 : 1;
}
