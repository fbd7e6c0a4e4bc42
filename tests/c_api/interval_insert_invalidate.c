/* interval_insert_invalidate.c - the interval-notifier C API compiled as C11: insert, overlap at the
 * boundaries (exclusive end), walk order, bad input (-EOVERFLOW, -EINVAL), read_begin / read_retry.
 * Exit status 0 on success. */
#include <errno.h>
#include <string.h>

#include "interval_common.h"

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct rec a, b, c;
	unsigned long seq;
	CHECK(mm != NULL);
	umn_set_diagnostic_hook(count_diagnostic, NULL);
	rec_init(&a, 'a');
	rec_init(&b, 'b');
	rec_init(&c, 'c');

	/* bad input */
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, 0, &single_ops) == -EOVERFLOW);
	CHECK(umn_interval_notifier_insert(&a.sub, mm, UINT64_MAX, 2, &single_ops) == -EOVERFLOW);
	{
		const struct umn_interval_notifier_ops none = {0};
		const struct umn_interval_notifier_ops no_finish = {.invalidate_start = rec_start};
		CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, PAGE, &none) == -EINVAL);
		CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, PAGE, &no_finish) == -EINVAL);
		CHECK(diagnostics == 2);
	}

	/* [PAGE, 2 * PAGE): boundaries with an exclusive end */
	CHECK(umn_interval_notifier_insert(&b.sub, mm, 2 * PAGE, PAGE, &single_ops) == 0);
	CHECK(umn_interval_notifier_insert(&a.sub, mm, PAGE, PAGE, &single_ops) == 0);
	CHECK(umn_interval_notifier_insert(&c.sub, mm, UINT64_MAX - PAGE + 1, PAGE, &single_ops) == 0);
	trace_reset();
	invalidate(mm, 0, PAGE); /* ends at start-1 */
	CHECK(strcmp(trace, "") == 0);
	invalidate(mm, PAGE - 1, PAGE + 1);
	CHECK(strcmp(trace, "a") == 0);
	trace_reset();
	invalidate(mm, 2 * PAGE - 1, 2 * PAGE); /* last byte of a */
	CHECK(strcmp(trace, "a") == 0);
	trace_reset();
	invalidate(mm, 0, 3 * PAGE); /* ascending start order */
	CHECK(strcmp(trace, "ab") == 0);
	trace_reset();
	invalidate(mm, UINT64_MAX - 1, UINT64_MAX); /* top of the space */
	CHECK(strcmp(trace, "c") == 0);

	/* collision-retry */
	seq = umn_interval_read_begin(&a.sub);
	CHECK(seq % 2 == 1);
	CHECK(!umn_interval_read_retry(&a.sub, seq));
	invalidate(mm, 2 * PAGE, 3 * PAGE); /* b only */
	CHECK(!umn_interval_read_retry(&a.sub, seq));
	invalidate(mm, PAGE, 2 * PAGE);
	CHECK(umn_interval_read_retry(&a.sub, seq));
	CHECK(umn_interval_check_retry(&a.sub, seq));
	seq = umn_interval_read_begin(&a.sub);
	CHECK(seq == a.last_seq);
	CHECK(!umn_interval_read_retry(&a.sub, seq));

	umn_interval_notifier_remove(&a.sub);
	umn_interval_notifier_remove(&b.sub);
	umn_interval_notifier_remove(&c.sub);
	umn_mm_destroy(mm);
	CHECK(diagnostics == 2);
	umn_set_diagnostic_hook(NULL, NULL);
	printf("interval_insert_invalidate: ok\n");
	return 0;
}
