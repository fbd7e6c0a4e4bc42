/* interval_release.c - teardown from C11: umn_notifier_release gives every interval notifier exactly one
 * blockable RELEASE over the whole space (both passes); later inserts fail with -EINVAL; the notifiers stay
 * removable; umn_mm_destroy with a notifier still inserted is diagnosed and a later remove is safe.
 * Exit status 0 on success. */
#include <errno.h>
#include <string.h>

#include "interval_common.h"

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct umn_mm *mm2 = umn_mm_create();
	struct rec a, b, top, late, kept;
	CHECK(mm != NULL && mm2 != NULL);
	umn_set_diagnostic_hook(count_diagnostic, NULL);
	rec_init(&a, 'a');
	rec_init(&b, 'b');
	rec_init(&top, 't');
	rec_init(&late, 'l');
	rec_init(&kept, 'k');
	CHECK(umn_interval_notifier_insert(&a.sub, mm, 0, PAGE, &single_ops) == 0);
	CHECK(umn_interval_notifier_insert(&b.sub, mm, 1ull << 40, PAGE, &two_pass_ops) == 0);
	CHECK(umn_interval_notifier_insert(&top.sub, mm, UINT64_MAX, 1, &single_ops) == 0);

	trace_reset();
	umn_notifier_release(mm);
	umn_notifier_release(mm); /* once only */
	CHECK(strcmp(trace, "abtB") == 0);
	CHECK(a.last_event == UMN_NOTIFY_RELEASE && b.last_event == UMN_NOTIFY_RELEASE &&
	      top.last_event == UMN_NOTIFY_RELEASE);
	CHECK(umn_interval_notifier_insert(&late.sub, mm, 0, PAGE, &single_ops) == -EINVAL);
	umn_interval_notifier_remove(&a.sub);
	umn_interval_notifier_remove(&b.sub);
	umn_interval_notifier_remove(&top.sub);
	umn_mm_destroy(mm); /* released already: no second RELEASE */
	CHECK(strcmp(trace, "abtB") == 0);

	/* destroy with a notifier still inserted: diagnosed, RELEASE delivered, remove afterwards is safe */
	diagnostics = 0;
	CHECK(umn_interval_notifier_insert(&kept.sub, mm2, 0, PAGE, &single_ops) == 0);
	trace_reset();
	umn_mm_destroy(mm2);
	CHECK(diagnostics == 1);
	CHECK(strcmp(trace, "k") == 0);
	umn_interval_notifier_remove(&kept.sub); /* frees the address space */
	CHECK(diagnostics == 1);

	umn_set_diagnostic_hook(NULL, NULL);
	printf("interval_release: ok\n");
	return 0;
}
