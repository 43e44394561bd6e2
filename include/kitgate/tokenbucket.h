/* tokenbucket.h -- the per-kit message rate limit (SPEC "Rate limit", kit_rate_limit
 * <messages/s>[:<burst>]): a token bucket of `burst` messages refilled at `rate` messages per
 * second. O(1), no allocation, integer arithmetic (one message = 1e9 units, so rates down to one
 * per second refill exactly over any interval). Pure and not locked: a bucket belongs to one thread
 * (the broker's); times are the caller's monotonic nanoseconds, so the tests inject a clock.
 * A zeroed bucket is full at its first use. */
#ifndef KITGATE_TOKENBUCKET_H
#define KITGATE_TOKENBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct kg_tokenbucket {
	int64_t units;      /* tokens * 1e9, 0..burst * 1e9 */
	int64_t last_ns;    /* time of the last refill */
	bool primed;        /* false: zeroed, full at first use */
};

/* One message at now_ns: true (a token taken) or false (over the limit: nothing taken). rate and
 * burst are 1..1000000. A clock that went backwards refills nothing. */
bool kg_tokenbucket__take(struct kg_tokenbucket *b, int rate, int burst, int64_t now_ns);

#endif
