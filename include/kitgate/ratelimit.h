/* ratelimit.h -- log rate limiting: at most one line per second per limiter, one a minute once
 * the same limiter has been busy for a minute. */
#ifndef KITGATE_RATELIMIT_H
#define KITGATE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Backoff of a busy limiter: after KG_RATELIMIT_BUSY_MS of lines (none more than
 * KG_RATELIMIT_QUIET_MS apart), one line per KG_RATELIMIT_SLOW_MS instead of one per
 * KG_RATELIMIT_FAST_MS; a quiet KG_RATELIMIT_QUIET_MS (no line asked for) ends the backoff. */
#define KG_RATELIMIT_FAST_MS 1000
#define KG_RATELIMIT_SLOW_MS 60000
#define KG_RATELIMIT_BUSY_MS 60000
#define KG_RATELIMIT_QUIET_MS 60000

/* Rate limiter for log lines: at most one line per second per limiter, counting what it held
 * back; a cause that keeps coming (disk full for an hour) backs off to one line a minute after its
 * first minute. Zero-initialise. Not locked: one limiter belongs to one thread. */
struct kg_ratelimit {
	int64_t last_ms;        /* monotonic; 0 = never logged */
	uint64_t suppressed;
	int64_t busy_since_ms;  /* first line asked for in the current busy run; 0 = none yet */
	int64_t seen_ms;        /* last time a line was asked for */
};

/* True if a line may be logged now; then *suppressed is how many were held back since the last
 * one. The caller's thread owns rl. */
bool kg_ratelimit__allow(struct kg_ratelimit *rl, uint64_t *suppressed);

/* The same at now_ms (monotonic milliseconds, > 0): the clock injected (tests). */
bool kg_ratelimit__allow_at(struct kg_ratelimit *rl, int64_t now_ms, uint64_t *suppressed);

#endif
