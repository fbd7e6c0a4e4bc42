/* process_ends.c - `process_ends HOW raw|libc`: unmaps one page, announced (libc) or not (raw: an
 * instruction generated at run time, jit_syscall.h), then ends as HOW says: exec (of /bin/true),
 * _exit, abort, kill (SIGKILL to itself), env-i (exec of /bin/true with an empty environment, so no
 * preload). `umn trace --verify` must report the raw munmap however the process ends (issue 17.17),
 * and must fail a process it could not trace (env-i). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jit_syscall.h"

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	if (strcmp(argv[2], "raw") == 0)
		jit_syscall(SYS_munmap, (long)(p + 4096), 4096, 0, 0, 0, 0);
	else
		munmap(p + 4096, 4096);
	const char *how = argv[1];
	if (strcmp(how, "exec") == 0) execl("/bin/true", "true", (char *)NULL);
	if (strcmp(how, "_exit") == 0) _exit(0);
	if (strcmp(how, "abort") == 0) abort();
	if (strcmp(how, "kill") == 0) kill(getpid(), SIGKILL);
	if (strcmp(how, "env-i") == 0) {
		char *empty[] = {NULL};
		execle("/bin/true", "true", (char *)NULL, empty);
	}
	return 2;
}
