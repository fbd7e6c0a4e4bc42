/* jit_syscall.h - a system call issued by an instruction generated at run time in an anonymous page,
 * as a JIT compiler would: no patcher of program or library text can see it, so it stays unhooked
 * whatever sites umn learns to patch. The negative controls of `umn trace --verify` use it to make
 * calls that no hook announces.
 *
 * jit_syscall(nr, a1..a6) returns the raw result (-errno on failure). Not thread-safe on first use. */
#ifndef UMN_TESTS_JIT_SYSCALL_H
#define UMN_TESTS_JIT_SYSCALL_H

#include <string.h>
#include <sys/mman.h>

typedef long (*jit_syscall_fn)(long nr, long a1, long a2, long a3, long a4, long a5, long a6);

static inline long jit_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
	/* System V arguments (rdi = nr, rsi, rdx, rcx, r8, r9, [rsp+8]) moved to the syscall ABI's
	 * (rax = nr, rdi, rsi, rdx, r10, r8, r9). */
	static const unsigned char code[] = {
		0x48, 0x89, 0xf8,             /* mov %rdi,%rax */
		0x48, 0x89, 0xf7,             /* mov %rsi,%rdi */
		0x48, 0x89, 0xd6,             /* mov %rdx,%rsi */
		0x48, 0x89, 0xca,             /* mov %rcx,%rdx */
		0x4d, 0x89, 0xc2,             /* mov %r8,%r10 */
		0x4d, 0x89, 0xc8,             /* mov %r9,%r8 */
		0x4c, 0x8b, 0x4c, 0x24, 0x08, /* mov 0x8(%rsp),%r9 */
		0x0f, 0x05,                   /* syscall */
		0xc3,                         /* ret */
	};
	static jit_syscall_fn fn;
	if (fn == NULL) {
		void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memcpy(page, code, sizeof(code));
		mprotect(page, 4096, PROT_READ | PROT_EXEC);
		memcpy(&fn, &page, sizeof(fn)); /* data to code pointer as POSIX allows (dlsym); ISO C has no cast */
	}
	return fn(nr, a1, a2, a3, a4, a5, a6);
}

#endif
