/* authpool.h -- delayed kit logins (mosquitto 2.1, MOSQ_ERR_AUTH_DELAYED): the PBKDF2 checks of
 * logins that missed the login cache run on `auth_threads` worker threads; their results come back
 * to the broker thread, which completes the logins (mosquitto_complete_basic_auth) in TICK.
 *
 * The pool owns every job from submit to take: the password (zeroed when the job is freed), the
 * client id, the serial, the parsed hash. Broker thread: submit, take, pending, counters. Worker
 * threads: only the hash (kg_pbkdf2__verify) on their own job. One mutex guards the queues; the
 * broker thread's sections are O(1) apart from hashing the client id and serial (SipHash).
 *
 * The budget of this mode bounds *pending hashes* (no broker-thread time is spent on them):
 * - at most max_pending jobs are in the pool (queued, running or done but not taken); a CLEAN
 *   login may take any free slot, a SUSPECT one (its serial failed a check, backoff.h) only while
 *   fewer than max_pending / 2 are used, so attacked serials leave half the slots to clean kits;
 * - at most one job per key (the plugin passes the backoff's (serial, source address) key): a
 *   second login with a key whose check is still pending is refused unchecked (KG_AUTHPOOL_BUSY); the first one's success fills the login cache, so the
 *   kit's next reconnect is a cache hit. A flood of wrong secrets for one serial thus costs one
 *   hash per backoff window, as on the broker thread;
 * - a job for a client id that is already pending supersedes the older job: mosquitto 2.1 refuses
 *   a second CONNECT with an id whose login is delayed, so a new BASIC_AUTH with that id means the
 *   old client is gone; its result must never complete the newcomer's login. The old job is not
 *   hashed if it has not started; if it ran, its result is returned marked stale (the caller may
 *   still update the login cache and the backoff with it, never complete a login).
 *
 * nthreads == 0 makes a pool without threads whose jobs run only through kg_authpool__run_one
 * (unit tests drive it step by step). */
#ifndef KITGATE_AUTHPOOL_H
#define KITGATE_AUTHPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/pbkdf2.h"

struct kg_authpool;

enum kg_authpool_class { KG_AUTHPOOL_CLEAN = 0, KG_AUTHPOOL_SUSPECT };

enum kg_authpool_submit {
	KG_AUTHPOOL_QUEUED = 0,     /* the login is delayed: its result comes back through take */
	KG_AUTHPOOL_FULL,           /* no slot for its class: refuse now, unchecked */
	KG_AUTHPOOL_BUSY,           /* this key already has a check pending: refuse now, unchecked */
	KG_AUTHPOOL_NOMEM,          /* out of memory: refuse now */
};

/* A finished check, handed to the broker thread. Strings are owned by the result until
 * kg_authpool__release. */
struct kg_authresult {
	char *client_id;
	char *serial;
	char *key;                  /* the key it was submitted with (kg_authpool__submit) */
	char *hash;                 /* the stored hash string the check ran against (login cache key) */
	char *password;             /* for the login cache only; zeroed by release */
	size_t pwlen;
	int verdict;                /* kg_pbkdf2__verify: 1 match, 0 mismatch, -1 OpenSSL failed */
	int64_t cost_ns;            /* the hash's duration on its worker */
	bool stale;                 /* superseded: never complete a login with it */
	void *job_;                 /* private */
};

struct kg_authpool_counters {
	uint64_t submitted, full, busy, superseded, skipped, hashed, hash_ns;
};

/* A pool of nthreads (0..256) worker threads and max_pending (>= 2) slots. NULL when out of memory
 * or a thread cannot be started. Main thread. */
struct kg_authpool *kg_authpool__new(int nthreads, size_t max_pending);

/* Stops and joins the threads (a running hash finishes first), frees every job. Main thread. */
void kg_authpool__free(struct kg_authpool *ap);

/* Queue a check of password against h for the login of client_id as serial (hash = the stored
 * hash string h was parsed from). At most one check per key is pending (BUSY otherwise): the
 * plugin passes the backoff's (serial, source address) key, so an attacker's pending wrong secret
 * never holds a kit's own login from another address. Copies everything it keeps. Broker thread. */
enum kg_authpool_submit kg_authpool__submit(struct kg_authpool *ap, const char *client_id,
		const char *serial, const char *key, const char *hash, const struct kg_pbkdf2 *h,
		const char *password, size_t pwlen, enum kg_authpool_class cls);

/* Take one finished check (1) or none (0), oldest first. (A job superseded before it ran was freed
 * when it was superseded and never comes back.) The caller must kg_authpool__release the result. Broker thread. */
int kg_authpool__take(struct kg_authpool *ap, struct kg_authresult *out);
void kg_authpool__release(struct kg_authpool *ap, struct kg_authresult *r);

/* Jobs in the pool (queued, running, done and not taken): > 0 means the broker thread should
 * look again soon. Broker thread. */
size_t kg_authpool__pending(struct kg_authpool *ap);

/* Run the oldest queued job on the calling thread: 1 if one ran or was skipped, 0 if none was
 * queued. For pools made with nthreads == 0 (tests). */
int kg_authpool__run_one(struct kg_authpool *ap);

void kg_authpool__counters(struct kg_authpool *ap, struct kg_authpool_counters *out);

#endif
