/* interval_two_pass.c - two-pass invalidation from C11: first passes in walk order, then every queued
 * second pass in first-pass order, before range_start returns; *finish is NULL on entry and ->notifier is
 * set for the second pass. Exit status 0 on success. */
#include <string.h>

#include "interval_common.h"

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct rec a, b, c;
	struct umn_notifier_range range;
	CHECK(mm != NULL);
	rec_init(&a, 'a');
	rec_init(&b, 'b');
	rec_init(&c, 'c');
	CHECK(umn_interval_notifier_insert(&c.sub, mm, 3 * PAGE, PAGE, &two_pass_ops) == 0);
	CHECK(umn_interval_notifier_insert(&b.sub, mm, 2 * PAGE, PAGE, &single_ops) == 0);
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 1 * PAGE, PAGE, &two_pass_ops) == 0);

	trace_reset();
	umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, 0, 8 * PAGE);
	umn_notifier_invalidate_range_start(&range);
	CHECK(strcmp(trace, "abcAC") == 0); /* second passes already ran */
	CHECK(a.last_event == UMN_NOTIFY_CLEAR);
	CHECK(a.last_seq == c.last_seq && a.last_seq == b.last_seq && a.last_seq % 2 == 1);
	umn_notifier_invalidate_range_end(&range);
	CHECK(strcmp(trace, "abcAC") == 0); /* range_end calls nothing */
	CHECK(a.finish.notifier == &a.sub && c.finish.notifier == &c.sub);
	CHECK(a.finish_entry_ok && c.finish_entry_ok);

	umn_interval_notifier_remove(&a.sub);
	umn_interval_notifier_remove(&b.sub);
	umn_interval_notifier_remove(&c.sub);
	umn_mm_destroy(mm);
	printf("interval_two_pass: ok\n");
	return 0;
}
