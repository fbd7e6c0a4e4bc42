/* classic_get_put.c - umn_notifier_get / put / synchronize from C11: one registration per (ops, mm)
 * shared by several users, errors (EINVAL, ENOMEM, EOVERFLOW), free_notifier after the last put, and
 * umn_notifier_synchronize waiting for it. Exit status 0 on success. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "umn/umn.h"
#include "check.h"

struct driver_mm {
	struct umn_notifier notifier; /* first */
	int buffers;
};

static int allocs, frees, fail_alloc;

static struct umn_notifier *alloc_driver_mm(struct umn_mm *mm)
{
	struct driver_mm *d;
	(void)mm;
	if (fail_alloc)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d != NULL)
		allocs++;
	return d != NULL ? &d->notifier : NULL;
}

static void free_driver_mm(struct umn_notifier *sub)
{
	__atomic_fetch_add(&frees, 1, __ATOMIC_SEQ_CST); /* runs on liburcu's callback thread */
	free(sub);
}

static const struct umn_notifier_ops ops = {.alloc_notifier = alloc_driver_mm, .free_notifier = free_driver_mm};
static const struct umn_notifier_ops no_free = {.alloc_notifier = alloc_driver_mm};

int main(void)
{
	struct umn_mm *mm = umn_mm_create();
	struct umn_mm *other = umn_mm_create();
	struct umn_notifier *first, *second;

	umn_set_diagnostic_hook(NULL, NULL); /* default hook: the EINVAL below prints one warning line */
	first = umn_notifier_get(&ops, mm);
	second = umn_notifier_get(&ops, mm);
	CHECK(first != NULL && first == second && first->users == 2 && allocs == 1);
	((struct driver_mm *)first)->buffers = 2;

	errno = 0;
	CHECK(umn_notifier_get(&no_free, mm) == NULL && errno == EINVAL);

	fail_alloc = 1;
	errno = 0;
	CHECK(umn_notifier_get(&ops, other) == NULL && errno == ENOMEM);
	fail_alloc = 0;
	umn_mm_destroy(other);

	first->users = UINT_MAX;
	errno = 0;
	CHECK(umn_notifier_get(&ops, mm) == NULL && errno == EOVERFLOW && first->users == UINT_MAX);
	first->users = 2;

	umn_notifier_put(second);
	CHECK(first->users == 1);
	umn_notifier_put(first);
	umn_notifier_synchronize();
	CHECK(__atomic_load_n(&frees, __ATOMIC_SEQ_CST) == 1);
	umn_mm_destroy(mm);
	puts("classic_get_put: ok");
	return 0;
}
