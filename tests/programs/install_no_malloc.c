/* install_no_malloc.c - installing the process hooks calls no malloc (docs/process.md, "Hooks calling
 * malloc or the loader"): this program's own malloc, calloc and realloc count their calls while
 * umn_process_hooks_install() scans, decodes and patches every module, and the program fails if any was
 * made. (With the Capstone decoder, 25 were: its handle and its per-instruction buffer.) */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <umn/process.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *block, size_t size);

static int counting; /* single-threaded: set around the installation only */
static int calls;

void *malloc(size_t size) {
	calls += counting;
	return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
	calls += counting;
	return __libc_calloc(count, size);
}

void *realloc(void *block, size_t size) {
	calls += counting;
	return __libc_realloc(block, size);
}

int main(void) {
	counting = 1;
	int status = umn_process_hooks_install();
	counting = 0;
	printf("umn_process_hooks_install: %d, %d allocation calls\n", status, calls);
	return status == 0 && calls == 0 ? 0 : 1;
}
