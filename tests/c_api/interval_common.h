/* interval_common.h - shared by the interval-notifier C programs (tests/c_api/interval_*.c): a recording
 * interval notifier written in plain C11, a counting diagnostic hook and a CHECK macro that prints what
 * failed and makes main() return 1. Header-only (static functions), included once per program. */
#ifndef UMN_TESTS_C_API_INTERVAL_COMMON_H
#define UMN_TESTS_C_API_INTERVAL_COMMON_H

#include <stddef.h>
#include <stdio.h>

#include "umn/umn.h"
#include "check.h"

#define PAGE 4096u

/* Calls, in order, as letters: lower case = first pass, upper case = second pass. */
static char trace[64];
static int trace_len;

static inline void trace_reset(void)
{
	trace_len = 0;
	trace[0] = '\0';
}

static inline void trace_add(char c)
{
	if (trace_len < (int)sizeof(trace) - 1) {
		trace[trace_len++] = c;
		trace[trace_len] = '\0';
	}
}

struct rec {
	struct umn_interval_notifier sub; /* first: a struct umn_interval_notifier * is a struct rec * */
	struct umn_interval_notifier_finish finish;
	char name;
	int fail_nonblock;   /* refuse non-blockable ranges */
	int finish_entry_ok; /* every invalidate_start saw *finish == NULL */
	unsigned long last_seq;
	enum umn_notifier_event last_event;
};

static inline struct rec *rec_of(struct umn_interval_notifier *sub) { return (struct rec *)sub; }

static inline int refuses(const struct rec *r, const struct umn_notifier_range *range)
{
	return r->fail_nonblock && !umn_notifier_range_blockable(range);
}

static inline bool rec_invalidate(struct umn_interval_notifier *sub, const struct umn_notifier_range *range,
			   unsigned long cur_seq)
{
	struct rec *r = rec_of(sub);
	trace_add(r->name);
	if (refuses(r, range))
		return false;
	umn_interval_set_seq(sub, cur_seq);
	r->last_seq = cur_seq;
	r->last_event = range->event;
	return true;
}

static inline bool rec_start(struct umn_interval_notifier *sub, const struct umn_notifier_range *range,
		      unsigned long cur_seq, struct umn_interval_notifier_finish **finish)
{
	struct rec *r = rec_of(sub);
	if (*finish != NULL)
		r->finish_entry_ok = 0;
	trace_add(r->name);
	if (refuses(r, range))
		return false;
	umn_interval_set_seq(sub, cur_seq);
	r->last_seq = cur_seq;
	r->last_event = range->event;
	*finish = &r->finish;
	return true;
}

static inline void rec_finish(struct umn_interval_notifier_finish *finish)
{
	struct rec *r = rec_of(finish->notifier);
	trace_add((char)(r->name - 'a' + 'A'));
}

static const struct umn_interval_notifier_ops single_ops = {.invalidate = rec_invalidate};
static const struct umn_interval_notifier_ops two_pass_ops = {.invalidate_start = rec_start,
							       .invalidate_finish = rec_finish};

static inline void rec_init(struct rec *r, char name)
{
	struct rec zero = {0};
	*r = zero;
	r->name = name;
	r->finish_entry_ok = 1;
}

/* Invalidates [start, end) blockably and ends it at once. */
static inline void invalidate(struct umn_mm *mm, uint64_t start, uint64_t end)
{
	struct umn_notifier_range range;
	umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, start, end);
	umn_notifier_invalidate_range_start(&range);
	umn_notifier_invalidate_range_end(&range);
}

static unsigned long diagnostics;

static inline void count_diagnostic(void *context, const char *call, const char *message)
{
	(void)context;
	(void)call;
	(void)message;
	diagnostics++;
}

#endif /* UMN_TESTS_C_API_INTERVAL_COMMON_H */
