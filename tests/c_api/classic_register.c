/* classic_register.c - the classic C API compiled as C11: register two notifiers, check the reverse
 * registration order, a non-blockable -EAGAIN that ends the successful starts, the young OR, teardown's
 * ->release once, and unregister after teardown. Exit status 0 on success. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "umn/umn.h"
#include "check.h"

struct probe {
	struct umn_notifier notifier; /* first: a struct umn_notifier * is a struct probe * */
	char name;
	int fail_nonblock;
	int starts, ends, releases;
};

static char order[16];
static int order_len;

static struct probe *probe_of(struct umn_notifier *sub) { return (struct probe *)sub; }

static int on_start(struct umn_notifier *sub, const struct umn_notifier_range *range)
{
	struct probe *p = probe_of(sub);
	p->starts++;
	order[order_len++] = p->name;
	return (p->fail_nonblock && !umn_notifier_range_blockable(range)) ? -EAGAIN : 0;
}

static void on_end(struct umn_notifier *sub, const struct umn_notifier_range *range)
{
	(void)range;
	probe_of(sub)->ends++;
}

static void on_release(struct umn_notifier *sub, struct umn_mm *mm)
{
	(void)mm;
	probe_of(sub)->releases++;
}

static int on_test_young(struct umn_notifier *sub, struct umn_mm *mm, uint64_t address)
{
	(void)mm;
	(void)address;
	return probe_of(sub)->name == 'b';
}

static const struct umn_notifier_ops with_end = {
	.release = on_release, .invalidate_range_start = on_start, .invalidate_range_end = on_end,
	.test_young = on_test_young};
static const struct umn_notifier_ops start_only = {
	.release = on_release, .invalidate_range_start = on_start, .test_young = on_test_young};

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct probe a = {.notifier = {.ops = &with_end}, .name = 'a'};
	struct probe b = {.notifier = {.ops = &start_only}, .name = 'b', .fail_nonblock = 1};
	struct umn_notifier_range range;

	CHECK(mm != NULL);
	CHECK(umn_notifier_register(&a.notifier, mm) == 0);
	CHECK(umn_notifier_register(&b.notifier, mm) == 0);
	CHECK(a.notifier.users == 1 && a.notifier.mm == mm);

	umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x1000, 0x2000);
	umn_notifier_invalidate_range_start(&range);
	umn_notifier_invalidate_range_end(&range);
	CHECK(order_len == 2 && memcmp(order, "ba", 2) == 0); /* newest first */
	CHECK(a.ends == 1);

	umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, 0x1000, 0x2000);
	CHECK(umn_notifier_invalidate_range_start_nonblock(&range) == -EAGAIN);
	CHECK(a.starts == 2 && b.starts == 2 && a.ends == 2); /* a's start was ended */

	CHECK(umn_notifier_test_young(mm, 0x1000) == 1);

	umn_notifier_release(mm);
	CHECK(a.releases == 1 && b.releases == 1);
	umn_notifier_unregister(&a.notifier, mm);
	umn_notifier_unregister(&b.notifier, mm);
	CHECK(a.releases == 1 && b.releases == 1);
	umn_mm_destroy(mm);
	puts("classic_register: ok");
	return 0;
}
