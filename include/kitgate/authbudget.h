/* authbudget.h -- the global budget of broker-thread time for cold kit logins (login-cache misses
 * that would run PBKDF2): a token bucket of nanoseconds, refilled at `ms_per_s` milliseconds per
 * second, holding at most one second's worth, charged with each check's measured duration.
 *
 * Two classes share it. A CLEAN login (its serial has no failed check on record) may draw whenever
 * the balance is positive; a SUSPECT login (its serial failed a check and was not cleared by a
 * success since) only while the balance is above half the bucket. So suspects get only what clean
 * logins leave, and a clean login arriving while suspects drain the bucket finds half a second's
 * worth reserved for it. A check may overdraw the balance (its cost is known only afterwards); the
 * debt is repaid by the refill, so the long-run rate holds whatever a check costs.
 *
 * Pure and not locked: one budget belongs to one thread (the broker's); times are the caller's
 * monotonic nanoseconds, so the tests drive it with a fake clock. Zero-initialise, then init. */
#ifndef KITGATE_AUTHBUDGET_H
#define KITGATE_AUTHBUDGET_H

#include <stdbool.h>
#include <stdint.h>

enum kg_authbudget_class { KG_AUTHBUDGET_CLEAN = 0, KG_AUTHBUDGET_SUSPECT };

struct kg_authbudget {
	int64_t ms_per_s;       /* refill rate: ms of checks per second, 1..1000 */
	int64_t capacity_ns;    /* one second's worth: ms_per_s * 1e6 */
	int64_t reserve_ns;     /* suspects draw only above this: capacity / 2 */
	int64_t balance_ns;     /* may be negative (debt), never above capacity */
	int64_t last_ns;        /* time of the last refill */
};

/* A full budget of ms_per_s (1..1000) milliseconds of checks per second, as of now_ns. */
void kg_authbudget__init(struct kg_authbudget *b, int ms_per_s, int64_t now_ns);

/* True if a check of class cls may run at now_ns (refills first). Does not charge: call charge
 * with the check's cost once it ran. A clock that went backwards refills nothing. */
bool kg_authbudget__allow(struct kg_authbudget *b, enum kg_authbudget_class cls, int64_t now_ns);

/* A check that allow admitted took cost_ns (>= 0; clamped to 1 s, so one stalled check cannot
 * lock cold logins out for long). */
void kg_authbudget__charge(struct kg_authbudget *b, int64_t cost_ns);

/* Nanoseconds until a check of class cls would be allowed at now_ns (0: now). For log lines. */
int64_t kg_authbudget__wait_ns(struct kg_authbudget *b, enum kg_authbudget_class cls, int64_t now_ns);

#endif
