/* realtime_ahead.c - preloaded by Lifecycle.ExitBoundHoldsWhenTheRealtimeClockSteps: CLOCK_REALTIME reads
 * one hour ahead of the kernel's, as if the clock were stepped back right after each read. A deadline
 * computed from it and waited for against the kernel's CLOCK_REALTIME lies an hour away; CLOCK_MONOTONIC
 * and every other clock are untouched. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t clock, struct timespec *ts) {
	long err = syscall(SYS_clock_gettime, clock, ts);
	if (err == 0 && clock == CLOCK_REALTIME) ts->tv_sec += 3600;
	return (int)err;
}
