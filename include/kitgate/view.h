/* view.h -- what the broker thread shows the HTTP thread(s): an immutable, reference-counted
 * snapshot swapped in under a lock (a few times a second, from MOSQ_EVT_TICK), and the queue of
 * test measurements going the other way (HTTP thread -> broker thread, drained in TICK).
 * Thread-safe: every function may be called from any thread unless it says otherwise. */
#ifndef KITGATE_VIEW_H
#define KITGATE_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kitgate/record.h"

/* Immutable once published: readers may walk `state` (cJSON reads are thread-safe on a tree
 * nobody modifies) and read `metrics` until they release it. */
struct kg_view_snapshot {
	uint64_t seq;          /* increases with every publish */
	int64_t at_ms;
	int64_t mono_ms;       /* CLOCK_MONOTONIC ms of the publish */
	cJSON *state;          /* {"now":…,"status":{},"rejections":[]}: bounded; kits are in the kitdir */
	char *metrics;         /* Prometheus text exposition */
	int refs;              /* under the view's lock */
};

/* A test measurement posted over HTTP, already validated. The HTTP thread fills the request
 * part, the broker thread the outcome; shared by both until both released it. */
struct kg_test_req {
	struct kg_test_req *next;
	struct kg_record rec;          /* validated, kitSerial filled */
	char topic[KG_SERIAL_MAX + 32];/* kit/<serial>/measurement/{raw,aggregate} */
	char *payload;                 /* the body as posted (what subscribers receive) */
	size_t len;
	/* outcome (under the view's lock) */
	int done;
	int status;                    /* HTTP status: 202 accepted, 422 refused by the kits snapshot,
	                                * 503 overload */
	int reason;                    /* enum kg_reason when not accepted */
	char message[160];
	int refs;
};

struct kg_view;

struct kg_view *kg_view__new(void);
/* Drop the current snapshot and any queued requests. No thread may use the view any more. */
void kg_view__free(struct kg_view *v);

/* Broker thread: publish a new snapshot (ownership of state and metrics taken, even on error)
 * and wake every waiter. */
void kg_view__publish(struct kg_view *v, cJSON *state, char *metrics, int64_t at_ms);

/* The current snapshot with a reference taken, or NULL before the first publish. */
struct kg_view_snapshot *kg_view__acquire(struct kg_view *v);

/* Snapshots are built only while someone reads them: readers say so (kg_view__want; acquire_fresh
 * and wait_newer do it themselves), and the broker thread asks kg_view__wanted(v, within_ms)
 * before building one, so an HTTP endpoint nobody uses costs the broker thread nothing. */
void kg_view__want(struct kg_view *v);
int kg_view__wanted(struct kg_view *v, int within_ms);

/* Like acquire, but first waits up to timeout_ms for a snapshot at most max_age_ms old (asking for
 * one). Returns the newest there is (possibly older, or NULL if none was ever published). */
struct kg_view_snapshot *kg_view__acquire_fresh(struct kg_view *v, int max_age_ms, int timeout_ms);
void kg_view__release(struct kg_view *v, struct kg_view_snapshot *s);

/* Wait up to timeout_ms for a snapshot with seq > after. Returns it (referenced) or NULL on
 * timeout or once the view is stopping. For server-sent events. */
struct kg_view_snapshot *kg_view__wait_newer(struct kg_view *v, uint64_t after, int timeout_ms);

/* Wake all waiters for good (HTTP shutdown). */
void kg_view__stop(struct kg_view *v);

/* HTTP thread: queue req (refs must be 1, the caller's) for the broker thread and wait up to
 * timeout_ms for its outcome. Returns 0 when done (req->status/message set), -1 on timeout or
 * stop. Either way the caller still owns one reference and must kg_view__req_release it. */
int kg_view__submit(struct kg_view *v, struct kg_test_req *req, int timeout_ms);

/* Broker thread: detach every queued request (oldest first). Each carries the queue's reference,
 * to be given back through kg_view__complete. Lock-free when nothing is queued. */
struct kg_test_req *kg_view__take_requests(struct kg_view *v);

/* Broker thread: set the outcome, wake the submitter, drop the queue's reference. */
void kg_view__complete(struct kg_view *v, struct kg_test_req *req, int status, const char *message);

void kg_view__req_release(struct kg_view *v, struct kg_test_req *req);

#endif
