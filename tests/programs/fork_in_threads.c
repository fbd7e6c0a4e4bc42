/* fork_in_threads.c - issue 17.15: forked children of a multithreaded program, while other threads
 * keep mapping and unmapping. Under `umn trace --verify` on the old in-process verifier, a child copied
 * the verify lock held by another thread and spun forever. Each child unmaps (announced) and exits. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int g_stop;

static void *churn(void *arg) {
	(void)arg;
	while (!atomic_load(&g_stop)) {
		char *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(m, 1, 4096);
		munmap(m, 4 * 4096);
	}
	return NULL;
}

int main(void) {
	pthread_t threads[3];
	for (int i = 0; i < 3; ++i) pthread_create(&threads[i], NULL, churn, NULL);
	for (int i = 0; i < 40; ++i) {
		pid_t child = fork();
		if (child == 0) {
			char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			munmap(m, 2 * 4096);
			_exit(0);
		}
		int status = 0;
		waitpid(child, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < 3; ++i) pthread_join(threads[i], NULL);
	return 0;
}
