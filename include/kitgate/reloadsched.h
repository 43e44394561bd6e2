/* reloadsched.h -- when the kits snapshot loader reloads: every refresh period whatever the
 * notifications do, and after a notification (or a poke) once the burst has been quiet for a
 * debounce, but never later than a bound after the burst's first one. A stream of notifications
 * (a busy kits table: NOTIFY per statement, 1,000 a second) therefore coalesces into at most one
 * load per max_delay and never postpones the periodic reload, where a debounce that restarts on
 * every notification postponed every load for as long as the stream lasted.
 *
 * The broker also asks for a fresh snapshot when a measurement names a peripheral or quantity type
 * the snapshot does not know (it may be newer): such an ask is served at once after a quiet
 * period, but at most once per ask_min after the last load, so a kit that keeps sending an unknown
 * peripheral cannot make the loader reload back to back.
 *
 * Pure arithmetic on times the caller passes (monotonic milliseconds): no clock, no lock. One
 * owner (the loader thread; tests). */
#ifndef KITGATE_RELOADSCHED_H
#define KITGATE_RELOADSCHED_H

#include <stdbool.h>
#include <stdint.h>

struct kg_reloadsched {
	int64_t refresh_ms;     /* period of the unconditional reload */
	int64_t debounce_ms;    /* quiet time that ends a burst of notifications */
	int64_t max_delay_ms;   /* a notification is served at most this long after it came */
	int64_t next_periodic;  /* when the periodic reload is due */
	int64_t burst_first;    /* first notification not yet served by a load; 0 = none */
	int64_t burst_last;     /* last notification of that burst */
	bool now_due;           /* load at once (start, reconnect) */
	int64_t ask_min_ms;     /* an ask is served no sooner than this after the last load */
	int64_t last_load;      /* when the last load started; 0 = none yet */
	int64_t ask_at;         /* when the pending ask came; 0 = none */
};

/* Set the periods; the first load is due at once. */
void kg_reloadsched__init(struct kg_reloadsched *s, int64_t refresh_ms, int64_t debounce_ms, int64_t max_delay_ms,
		int64_t ask_min_ms);
/* Load at once (a new connection: notifications sent meanwhile were lost). */
void kg_reloadsched__force(struct kg_reloadsched *s);
/* A notification (or a poke) arrived at now. */
void kg_reloadsched__notify(struct kg_reloadsched *s, int64_t now);
/* The broker asked for a fresh snapshot at now (an unknown peripheral or quantity type). */
void kg_reloadsched__ask(struct kg_reloadsched *s, int64_t now);
/* When the next load is due (may be <= now: due). */
int64_t kg_reloadsched__due(const struct kg_reloadsched *s);
/* A load started at started (before its query) has published: notifications up to then are
 * served (and the ask), the next periodic load is a refresh period after it. */
void kg_reloadsched__loaded(struct kg_reloadsched *s, int64_t started);

#endif
