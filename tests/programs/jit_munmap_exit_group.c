/* jit_munmap_exit_group.c - negative control for `umn trace --verify`: a munmap no hook can see
 * (jit_syscall.h), then a raw exit_group, so that no destructor or atexit handler of the process runs.
 * The tracer must report the munmap as a miss (exit status 3). */
#include <sys/syscall.h>

#include "jit_syscall.h"

int main(void) {
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	jit_syscall(SYS_munmap, (long)(p + 4096), 4096, 0, 0, 0, 0);
	jit_syscall(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	return 1; /* not reached */
}
