/* many_mappings.c - issue 17.18: more than 32768 mappings (the old verifier's shadow held 32768 and
 * reported the rest as vanished). 40000 one-page mappings are made by instructions generated at run time
 * (jit_syscall.h; adding mappings needs no announcement), then a few are unmapped through libc
 * (announced). `umn trace --verify` must report 0 misses. */
#include <stdio.h>
#include <sys/syscall.h>

#include "jit_syscall.h"

enum { kMappings = 40000 };

int main(void) {
	static char *pages[kMappings];
	for (int i = 0; i < kMappings; ++i) {
		/* Alternating protections: neighbouring pages never merge into one mapping. */
		int prot = i % 2 != 0 ? PROT_READ : PROT_READ | PROT_WRITE;
		long at = jit_syscall(SYS_mmap, 0, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (at < 0 && at > -4096) {
			fprintf(stderr, "many_mappings: mmap %d: error %ld (vm.max_map_count too low?)\n", i, -at);
			return 2;
		}
		pages[i] = (char *)at;
	}
	for (int i = 0; i < 8; ++i) munmap(pages[i * 1000], 4096);
	return 0;
}
