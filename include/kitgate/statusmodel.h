/* statusmodel.h -- the one status model: two tables of fields (name in the $SYS status JSON, name
 * in the HTTP API snapshot, Prometheus metric, type, help, labels, where the number comes from)
 * that feed all three outputs: one for a stream (hand-off, spool, worker and sink), one for the
 * broker-wide numbers (counters of the MESSAGE path, auth, wills, live view, HTTP). Pure; the
 * caller gathers the numbers (struct kg_stream_status, struct kg_broker_status) on its own thread
 * and owns the cJSON tree it passes in. The documents built from them are in statusdoc.h.
 *
 * To add a status field: one row in `fields` (a stream's) or `broker_fields` (broker-wide) in
 * plugin/live/statusmodel.c with its getter; a NULL name leaves it out of that output. */
#ifndef KITGATE_STATUSMODEL_H
#define KITGATE_STATUSMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "kitgate/spool.h"
#include "kitgate/stats.h"
#include "kitgate/validate.h"
#include "kitgate/worker.h"

/* One stream's numbers, as gathered from its hand-off, spool and worker (zero where absent). */
struct kg_stream_status {
	const char *kind;            /* the sink's name: "postgres", "kafka", "none" */
	bool spool_enabled;
	size_t depth;                /* hand-off queue depth */
	bool spilling;
	uint64_t spilled;
	uint64_t handed;             /* records handed to the stream since start (the lag's base) */
	struct kg_spool_stats spool;
	struct kg_worker_stats worker;
};

/* Which JSON document a stream object is written for. */
enum kg_status_doc {
	KG_STATUS_SYS = 0,           /* $SYS/broker/kitgate/status (status.c) */
	KG_STATUS_API,               /* the HTTP API's "status" (live.c snapshot) */
};

/* Adds the stream's fields of doc to obj (nested objects such as "spool" and "sink" created as
 * needed, in table order). 0, or -1 on out of memory (obj then holds a prefix). */
int kg_statusmodel__json(cJSON *obj, const struct kg_stream_status *s, enum kg_status_doc doc);

/* Appends the stream's Prometheus metrics (# HELP, # TYPE, sample) through put, each name being
 * prefix + the table's metric name ("kitgate_" for the measurement stream, "kitgate_bridge_" for
 * the bridge stream). */
void kg_statusmodel__metrics(const struct kg_stream_status *s, const char *prefix,
		void (*put)(void *arg, const char *text), void *arg);

/* The broker-wide numbers, copied on the broker thread (kg_status__gather_broker in
 * plugin/broker/status.c); zero where a part is off (no live view, no auth postgres, no HTTP). */
struct kg_broker_status {
	/* the MESSAGE path (struct kg_counters) */
	uint64_t accepted;
	uint64_t rejected[KG_REASON_COUNT];
	uint64_t spool_unavailable, unacked;
	uint64_t broker_ns, broker_msgs;
	uint64_t bridge_forwarded, bridge_refused, bridge_undecodable;
	uint64_t wills_accepted, wills_unsaved;
	uint64_t clientid_refused, clientid_evicted;
	/* logins (struct kg_auth) */
	struct {
		uint64_t ok, cached, refused, backoff_refused, budget_refused, no_password;
		uint64_t pbkdf2_runs, pbkdf2_ns, kicked, backoff_evicted, backoff_overflowed;
		uint64_t threads, delayed, pending, slots_refused, busy_refused, stale, changed;
	} auth;
	bool snapshot_loader;        /* auth postgres: the "auth_snapshot" object is written */
	uint64_t snapshot_loads, snapshot_asks, unknown_passed;
	/* the live view (live.c) */
	const char *version;
	int64_t started_ms;          /* wall */
	uint64_t kits_known, kits_online, kits_evicted, kits_listed, kits_queued;
	uint64_t test_measurements;
	struct kg_stats_counters stats;
	uint64_t snapshot_ns, snapshots, tick_kits_max, kit_visits, status_cleared;
	bool http;                   /* the HTTP server runs: its server-sent event metrics are written */
	uint64_t http_responses[3];  /* 2xx, 4xx, 5xx */
	uint64_t sse_events, sse_event_bytes_max;
	/* the two streams: [0] measurements, [1] bridge */
	struct kg_stream_status streams[2];
};

/* Adds the broker-wide fields of doc (KG_STATUS_SYS or KG_STATUS_API) to obj, in table order, the
 * measurement stream's fields (kg_statusmodel__json) and, for $SYS, the "streams" object among
 * them. 0, or -1 on out of memory (obj then holds a prefix). */
int kg_statusmodel__broker_json(cJSON *obj, const struct kg_broker_status *s, enum kg_status_doc doc);

/* Appends every broker-wide metric and both streams' (kitgate_*, kitgate_bridge_*) through put. */
void kg_statusmodel__broker_metrics(const struct kg_broker_status *s,
		void (*put)(void *arg, const char *text), void *arg);

#endif
