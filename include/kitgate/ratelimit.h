/* ratelimit.h -- log rate limiting: at most one line per second per limiter. */
#ifndef KITGATE_RATELIMIT_H
#define KITGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Rate limiter for log lines: at most one line per second per limiter, counting what it held
 * back. Zero-initialise. Not locked: one limiter belongs to one thread. */
struct kg_ratelimit {
	int64_t last_ms;        /* monotonic; 0 = never logged */
	uint64_t suppressed;
};

/* True if a line may be logged now; then *suppressed is how many were held back since the last
 * one. The caller's thread owns rl. */
bool kg_ratelimit__allow(struct kg_ratelimit *rl, uint64_t *suppressed);

#endif
