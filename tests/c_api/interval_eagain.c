/* interval_eagain.c - a non-blockable invalidation refused by a callback, from C11: -EAGAIN; second passes
 * queued before the refusal still run; later notifiers get no call; no range_end is needed and the address
 * space is not left invalidating. Exit status 0 on success. */
#include <errno.h>
#include <string.h>

#include "interval_common.h"

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct rec a, b, c, d;
	struct umn_notifier_range range;
	unsigned long seq;
	CHECK(mm != NULL);
	umn_set_diagnostic_hook(count_diagnostic, NULL);
	rec_init(&a, 'a');
	rec_init(&b, 'b');
	rec_init(&c, 'c');
	rec_init(&d, 'd');
	c.fail_nonblock = 1;
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 0 * PAGE, PAGE, &two_pass_ops) == 0);
	CHECK(umn_interval_notifier_insert(&b.sub, mm, 1 * PAGE, PAGE, &single_ops) == 0);
	CHECK(umn_interval_notifier_insert(&c.sub, mm, 2 * PAGE, PAGE, &two_pass_ops) == 0);
	CHECK(umn_interval_notifier_insert(&d.sub, mm, 3 * PAGE, PAGE, &two_pass_ops) == 0);

	trace_reset();
	umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, 0, 4 * PAGE);
	CHECK(umn_notifier_invalidate_range_start_nonblock(&range) == -EAGAIN);
	CHECK(strcmp(trace, "abcA") == 0); /* c refused: no C; d never called */
	/* not invalidating: this would wait forever if the epoch had been left open */
	seq = umn_interval_read_begin(&a.sub);
	CHECK(seq == a.last_seq);

	/* a non-blockable range that nobody refuses succeeds and needs its end */
	trace_reset();
	umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, 0, 2 * PAGE);
	CHECK(umn_notifier_invalidate_range_start_nonblock(&range) == 0);
	CHECK(strcmp(trace, "abA") == 0);
	umn_notifier_invalidate_range_end(&range);
	CHECK(a.last_seq == seq + 2);

	CHECK(diagnostics == 0); /* -EAGAIN on a non-blockable range is not a bug */

	umn_interval_notifier_remove(&a.sub);
	umn_interval_notifier_remove(&b.sub);
	umn_interval_notifier_remove(&c.sub);
	umn_interval_notifier_remove(&d.sub);
	umn_mm_destroy(mm);
	umn_set_diagnostic_hook(NULL, NULL);
	printf("interval_eagain: ok\n");
	return 0;
}
