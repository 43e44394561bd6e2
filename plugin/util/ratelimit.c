/* ratelimit.c -- at most one log line per second per limiter, counting the suppressed ones; one a
 * minute once the limiter has been busy for a minute (see ratelimit.h). */
#include <time.h>

#include "kitgate/ratelimit.h"

bool kg_ratelimit__allow_at(struct kg_ratelimit *rl, int64_t now, uint64_t *suppressed)
{
	int64_t interval = KG_RATELIMIT_FAST_MS;

	if(!rl->busy_since_ms || now - rl->seen_ms >= KG_RATELIMIT_QUIET_MS) rl->busy_since_ms = now;
	rl->seen_ms = now;
	if(now - rl->busy_since_ms >= KG_RATELIMIT_BUSY_MS) interval = KG_RATELIMIT_SLOW_MS;
	if(rl->last_ms && now - rl->last_ms < interval){
		rl->suppressed++;
		return false;
	}
	rl->last_ms = now;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

bool kg_ratelimit__allow(struct kg_ratelimit *rl, uint64_t *suppressed)
{
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if(now <= 0) now = 1; /* 0 means "never" in the limiter */
	return kg_ratelimit__allow_at(rl, now, suppressed);
}
