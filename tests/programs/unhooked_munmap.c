/* unhooked_munmap.c - the negative control for `umn trace --verify`: unmaps memory with its own syscall
 * instruction whose number comes from a register (as a runtime's generic syscall layer does), which the
 * patcher can only count as unknown (umn_process_hooks_info.sites_unknown), never hook. The tracer must
 * report it as a miss (exit status 3). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

int main(void) {
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	long nr = SYS_munmap, ret;
	__asm__ volatile("mov %%rdx, %%rax\n\tsyscall" : "=a"(ret) : "d"(nr), "D"(p + 4096), "S"(4096L) : "rcx", "r11", "memory");
	printf("unhooked munmap: %ld\n", ret);
	return 0;
}
