/* tokenbucket.c -- the per-kit message rate limit's token bucket (see tokenbucket.h). */
#include <assert.h>

#include "kitgate/tokenbucket.h"

#define UNIT 1000000000LL   /* one message */

bool kg_tokenbucket__take(struct kg_tokenbucket *b, int rate, int burst, int64_t now_ns)
{
	int64_t cap, elapsed;

	assert(rate >= 1 && rate <= 1000000 && burst >= 1 && burst <= 1000000);
	cap = (int64_t)burst * UNIT;
	if(!b->primed){
		b->primed = true;
		b->units = cap;
		b->last_ns = now_ns;
	}
	elapsed = now_ns - b->last_ns;
	if(elapsed > 0){
		/* elapsed * rate would overflow only long after the bucket is full */
		if(elapsed >= cap / rate) b->units = cap;
		else b->units += elapsed * rate;
		if(b->units > cap) b->units = cap;
		b->last_ns = now_ns;
	}
	if(b->units < UNIT) return false;
	b->units -= UNIT;
	return true;
}
