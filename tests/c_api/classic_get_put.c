/* classic_get_put.c - umn_notifier_get / put / synchronize from C11: one registration per (ops, mm)
 * shared by several users, errors as error pointers (EINVAL, ENOMEM, EOVERFLOW, and alloc_notifier's
 * own), free_notifier after the last put, and umn_notifier_synchronize waiting for it. Exit status 0 on
 * success. */
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

static int allocs, frees, diagnostics;

static void count_diagnostic(void *context, const char *call, const char *message)
{
	(void)context, (void)call, (void)message;
	diagnostics++;
}
static enum { ALLOC_OK, ALLOC_NULL, ALLOC_EIO } fail_alloc;

static struct umn_notifier *alloc_driver_mm(struct umn_mm *mm)
{
	struct driver_mm *d;
	(void)mm;
	if (fail_alloc == ALLOC_NULL)
		return NULL;
	if (fail_alloc == ALLOC_EIO)
		return UMN_ERR_PTR(-EIO);
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

	umn_set_diagnostic_hook(count_diagnostic, NULL); /* the -EINVAL below is misuse: diagnosed */
	first = umn_notifier_get(&ops, mm);
	second = umn_notifier_get(&ops, mm);
	CHECK(!UMN_IS_ERR_OR_NULL(first) && first == second && first->users == 2 && allocs == 1);
	((struct driver_mm *)first)->buffers = 2;

	CHECK(UMN_PTR_ERR(umn_notifier_get(&no_free, mm)) == -EINVAL && diagnostics == 1);

	fail_alloc = ALLOC_NULL;
	CHECK(UMN_PTR_ERR(umn_notifier_get(&ops, other)) == -ENOMEM);
	fail_alloc = ALLOC_EIO; /* alloc_notifier's own error pointer comes back as it is */
	CHECK(UMN_PTR_ERR(umn_notifier_get(&ops, other)) == -EIO);
	fail_alloc = ALLOC_OK;
	umn_mm_destroy(other);

	first->users = UINT_MAX;
	CHECK(UMN_PTR_ERR(umn_notifier_get(&ops, mm)) == -EOVERFLOW && first->users == UINT_MAX);
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
