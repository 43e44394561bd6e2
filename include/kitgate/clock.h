/* clock.h -- the one clock module: monotonic time for every interval and deadline, wall time only
 * for timestamps shown or stored, periodic schedules, and an injectable source for tests. */
#ifndef KITGATE_CLOCK_H
#define KITGATE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* *ts = CLOCK_MONOTONIC now + ms (ms >= 0), normalised: the absolute deadline for
 * pthread_cond_timedwait on a condition variable set to CLOCK_MONOTONIC. Any thread; always the
 * system clock (condition variables wait on it). */
void kg_clock__deadline_in(struct timespec *ts, int ms);

/* Milliseconds on CLOCK_MONOTONIC (or the injected source): for intervals, deadlines, cadences.
 * Never goes back when the wall clock is stepped. Any thread. */
int64_t kg_clock__mono_ms(void);

/* Milliseconds since the epoch on CLOCK_REALTIME (or the injected source): only for timestamps
 * that are shown or stored (last seen, connected at, a measurement's time check). Any thread. */
int64_t kg_clock__wall_ms(void);

/* A replacement clock for tests: both functions get arg. */
struct kg_clock_source {
	int64_t (*mono_ms)(void *arg);
	int64_t (*wall_ms)(void *arg);
	void *arg;
};

/* Installs src (NULL: back to the system clocks). Tests only, before any thread reads the clock;
 * src must outlive its use. */
void kg_clock__inject(const struct kg_clock_source *src);

/* A periodic task on the monotonic clock: zero-initialised it is due at once. */
struct kg_every {
	int64_t next_ms;
};

/* Whether the task is due at mono_now (kg_clock__mono_ms()); when it is, the next deadline becomes
 * mono_now + period_ms. A period <= 0 is never due. Pure; the caller owns e. */
bool kg_clock__every(struct kg_every *e, int64_t period_ms, int64_t mono_now);

#endif
