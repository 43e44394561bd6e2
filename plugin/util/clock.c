/* clock.c -- the one clock module: monotonic and wall milliseconds, schedules, an injectable
 * source for tests (see clock.h). */
#include <stddef.h>

#include "kitgate/clock.h"

static const struct kg_clock_source *injected;

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

static int64_t system_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kg_clock__mono_ms(void)
{
	return injected ? injected->mono_ms(injected->arg) : system_ms(CLOCK_MONOTONIC);
}

int64_t kg_clock__wall_ms(void)
{
	return injected ? injected->wall_ms(injected->arg) : system_ms(CLOCK_REALTIME);
}

void kg_clock__inject(const struct kg_clock_source *src)
{
	injected = src;
}

bool kg_clock__every(struct kg_every *e, int64_t period_ms, int64_t mono_now)
{
	if(period_ms <= 0 || mono_now < e->next_ms) return false;
	e->next_ms = mono_now + period_ms;
	return true;
}
