/* undumpable_munmap.c - negative control for `umn trace --verify`: a process that made itself
 * non-dumpable (PR_SET_DUMPABLE 0, as daemons holding secrets do), which may hide its /proc files from
 * the tracer, then unmaps a page with an instruction generated at run time (jit_syscall.h). The tracer
 * must still report the miss (exit status 3), never pass a call it could not check. */
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "jit_syscall.h"

int main(void) {
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return 2;
	return jit_syscall(SYS_munmap, (long)(p + 4096), 4096, 0, 0, 0, 0) == 0 ? 0 : 1;
}
