/* clock.c -- small time helpers (see clock.h). */
#include "kitgate/clock.h"

void kg_clock__deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if(ts->tv_nsec >= 1000000000L){
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
