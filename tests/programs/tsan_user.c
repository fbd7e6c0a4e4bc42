/* tsan_user.c - a program built with -fsanitize=thread that uses the ordinary (uninstrumented) libumn,
 * as a user runs their own code under TSan: its threads exit (glibc discards each dead thread's stack
 * with madvise after TSan tore the thread's state down) while an interval notifier is registered, and
 * its munmap must be announced once. It crashed in TSan's MutexPreLock at the first thread exit while
 * the hooks' TSan workaround was compiled in only when libumn itself was built with TSan. */
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>

#include "umn/process.h"
#include "umn/umn.h"

static int calls;

static bool invalidate(struct umn_interval_notifier *sub, const struct umn_notifier_range *range, unsigned long seq) {
	(void)range;
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	umn_interval_set_seq(sub, seq);
	return true;
}
static const struct umn_interval_notifier_ops ops = {.invalidate = invalidate};

static void *worker(void *arg) {
	for (int i = 0; i < 100; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		p[0] = 1;
		munmap(p, 1 << 20);
	}
	return arg;
}

int main(void) {
	struct umn_mm *mm = umn_mm_process();
	char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct umn_interval_notifier notifier = {0};
	if (umn_interval_notifier_insert(&notifier, mm, (uint64_t)(uintptr_t)p, 4 * 4096, &ops) != 0) return 1;
	pthread_t threads[4];
	for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, worker, NULL);
	for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
	munmap(p, 4096);
	umn_interval_notifier_remove(&notifier);
	struct umn_process_hooks_info info;
	umn_process_hooks_get_info(&info);
	printf("tsan user: status %d, %u sites patched, %d calls\n", info.status, info.sites_patched, calls);
	return info.status == 0 && calls == 1 ? 0 : 1;
}
