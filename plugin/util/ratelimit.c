/* ratelimit.c -- at most one log line per second per limiter, counting the suppressed ones. */
#include <time.h>

#include "kitgate/ratelimit.h"

#define RATELIMIT_INTERVAL_MS 1000

bool kg_ratelimit__allow(struct kg_ratelimit *rl, uint64_t *suppressed)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if(rl->last_ms && now - rl->last_ms < RATELIMIT_INTERVAL_MS){
		rl->suppressed++;
		return false;
	}
	rl->last_ms = now;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
