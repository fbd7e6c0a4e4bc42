/* int80_munmap.c - negative control for `umn trace --verify`: a munmap through the i386 system call
 * entry (`int $0x80`, i386 number 91) from a 64-bit process, which no x86-64 syscall hook sees. The
 * tracer must still report the unannounced munmap (exit status 3). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
	/* i386 calls take 32-bit arguments: the mapping must lie below 4 GiB. */
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (p == MAP_FAILED) return 2;
	memset(p, 1, 4 * 4096);
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(91L), "b"(p + 4096), "c"(4096L) : "memory");
	printf("i386 munmap: %ld\n", ret);
	return ret == 0 ? 0 : 1;
}
