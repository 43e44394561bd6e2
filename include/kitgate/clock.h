/* clock.h -- small time helpers shared by the threads' condition waits; pure, any thread. */
#ifndef KITGATE_CLOCK_H
#define KITGATE_CLOCK_H

#include <time.h>

/* *ts = CLOCK_MONOTONIC now + ms (ms >= 0), normalised: the absolute deadline for
 * pthread_cond_timedwait on a condition variable set to CLOCK_MONOTONIC. */
void kg_clock__deadline_in(struct timespec *ts, int ms);

#endif
