/* process_callback_state.c - a C callback on umn_mm_process() counts events in state reachable from its
 * notifier (the safe pattern), compiled at -O2 (GCC), and sees every munmap.
 *
 * glibc declares munmap, madvise, mremap and friends __leaf__: the compiler may assume they never call
 * back into this file, so a file-static variable that only a callback writes may be read as unchanged
 * across a munmap (issue 12 saw 0 events at -O1). Memory reachable from the notifier has escaped to
 * libumn through umn_interval_notifier_insert, and a leaf call may change escaped memory. The file-static
 * counter is printed, not checked: what the compiler makes of it is not umn's to promise. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O2")
#endif

#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>

#include "umn/umn.h"
#include "check.h"

#define PAGE 4096ul

struct watch {
	struct umn_interval_notifier sub; /* first: a struct umn_interval_notifier * is a struct watch * */
	unsigned long events;             /* the safe pattern: reachable from the notifier */
};

static unsigned long file_static_events; /* the trap: only the callback touches it */

static bool count_event(struct umn_interval_notifier *sub, const struct umn_notifier_range *range,
			unsigned long cur_seq)
{
	struct watch *watch = (struct watch *)sub;

	(void)range;
	umn_interval_set_seq(sub, cur_seq);
	watch->events++;
	file_static_events++;
	return true;
}

static const struct umn_interval_notifier_ops count_ops = { count_event, NULL, NULL };

int main(void)
{
	struct umn_mm *mm = umn_mm_process();
	struct watch watch = { .events = 0 };
	unsigned long static_before;
	char *pages;
	int i;

	CHECK(mm != NULL);
	pages = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(pages != MAP_FAILED);
	CHECK(umn_interval_notifier_insert(&watch.sub, mm, (uint64_t)(uintptr_t)pages, 8 * PAGE, &count_ops) == 0);
	static_before = file_static_events;
	for (i = 0; i < 4; i++) {
		CHECK(madvise(pages + i * PAGE, PAGE, MADV_DONTNEED) == 0);
		CHECK(watch.events == (unsigned long)(i + 1));
	}
	CHECK(munmap(pages + 4 * PAGE, 4 * PAGE) == 0);
	CHECK(watch.events == 5);
	printf("events through the notifier: %lu; through a file-static counter: %lu\n", watch.events,
	       file_static_events - static_before);
	umn_interval_notifier_remove(&watch.sub);
	CHECK(munmap(pages, 4 * PAGE) == 0);
	CHECK(watch.events == 5);
	return 0;
}
