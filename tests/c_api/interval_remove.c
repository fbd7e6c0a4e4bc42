/* interval_remove.c - removing interval notifiers from C11: an insert made during an invalidation is
 * deferred (not called by that epoch) and removing it then does not wait; a remove during an epoch waits
 * for its end (a pthread is blocked meanwhile); double remove and remove of a never-inserted notifier are
 * diagnosed and harmless. Exit status 0 on success. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "interval_common.h"

static volatile int removed; /* written by the remover thread; read after join or as a hint */
static pthread_mutex_t removed_lock = PTHREAD_MUTEX_INITIALIZER;

static void *remover(void *arg)
{
	umn_interval_notifier_remove((struct umn_interval_notifier *)arg);
	pthread_mutex_lock(&removed_lock);
	removed = 1;
	pthread_mutex_unlock(&removed_lock);
	return NULL;
}

static int remover_done(void)
{
	int done;
	pthread_mutex_lock(&removed_lock);
	done = removed;
	pthread_mutex_unlock(&removed_lock);
	return done;
}

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct rec a, b, never;
	struct umn_notifier_range range;
	struct timespec grace = {0, 50 * 1000 * 1000};
	pthread_t thread;
	CHECK(mm != NULL);
	umn_set_diagnostic_hook(count_diagnostic, NULL);
	rec_init(&a, 'a');
	rec_init(&b, 'b');
	rec_init(&never, 'n');
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, PAGE, &single_ops) == 0);

	/* deferred insert, removed before the epoch ends: no wait, never called */
	trace_reset();
	umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, 4 * PAGE);
	umn_notifier_invalidate_range_start(&range);
	CHECK(umn_interval_notifier_insert(&b.sub, mm, PAGE, PAGE, &single_ops) == 0);
	umn_interval_notifier_remove(&b.sub); /* would hang if it waited for this epoch */
	umn_notifier_invalidate_range_end(&range);
	invalidate(mm, 0, 4 * PAGE);
	CHECK(strcmp(trace, "aa") == 0);

	/* remove during an epoch waits for its end */
	umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, PAGE);
	umn_notifier_invalidate_range_start(&range);
	CHECK(pthread_create(&thread, NULL, remover, &a.sub) == 0);
	nanosleep(&grace, NULL); /* gives a wrong remove the time to return */
	CHECK(!remover_done());
	umn_notifier_invalidate_range_end(&range);
	CHECK(pthread_join(thread, NULL) == 0);
	CHECK(remover_done());
	trace_reset();
	invalidate(mm, 0, 4 * PAGE);
	CHECK(strcmp(trace, "") == 0);

	/* misuse: diagnosed, harmless */
	CHECK(diagnostics == 0);
	umn_interval_notifier_remove(&a.sub);
	CHECK(diagnostics == 1);
	umn_interval_notifier_remove(&never.sub);
	CHECK(diagnostics == 2);
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, PAGE, &single_ops) == 0);
	invalidate(mm, 0, PAGE);
	CHECK(strcmp(trace, "a") == 0);
	umn_interval_notifier_remove(&a.sub);

	umn_mm_destroy(mm);
	umn_set_diagnostic_hook(NULL, NULL);
	printf("interval_remove: ok\n");
	return 0;
}
