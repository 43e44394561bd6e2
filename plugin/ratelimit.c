/* ratelimit.c -- at most one log line per second per limiter, counting the suppressed ones. */
#include "kitgate_internal.h"

bool kg_ratelimit__allow(struct kg_ratelimit *rl, uint64_t *suppressed)
{
	time_t now = time(NULL);

	if(now == rl->last){
		rl->suppressed++;
		return false;
	}
	rl->last = now;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}
