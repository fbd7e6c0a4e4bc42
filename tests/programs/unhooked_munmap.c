/* unhooked_munmap.c - the negative control for `umn trace --verify`: unmaps memory with its own syscall
 * instruction (as Go or a hand-written runtime would), which no libc hook can see. The tracer must
 * report it as a miss (exit status 3). */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

int main(void) {
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4 * 4096);
	long nr = SYS_munmap, ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(p + 4096), "S"(4096L) : "rcx", "r11", "memory");
	printf("unhooked munmap: %ld\n", ret);
	return 0;
}
