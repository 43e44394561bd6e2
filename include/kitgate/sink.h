/* sink.h -- where a stream's records go: a small ops table behind an opaque state, implemented by
 * the PostgreSQL writer (sink_pg.c), the Kafka producer (sink_kafka.c) and `none` (sink_none.c).
 *
 * Contract between the worker (worker.c) and a sink:
 * - submit() hands over decoded records, each with an opaque item pointer. The sink copies what
 *   it needs from the record (a BRIDGE record's topic/payload are views into the item's body;
 *   the worker keeps the item alive until it is reported or rewound). It never dereferences item.
 * - poll() reports each submitted item exactly once, through the callback: OK (written, already
 *   present, delivered), REJECTED (the sink refuses this one record for good: reason is a static
 *   snake_case string; the record is done, never retried) or FAILED (not written; the worker
 *   replays it from the spool after a rewind). Reports come only from poll(), on the worker's thread.
 * - rewind() drops everything in flight: after it returns, no item submitted before it is ever
 *   reported (the worker frees them and reads the spool again). A record whose write was already
 *   under way may still land: sinks are idempotent on the record id (ON CONFLICT, Kafka consumers
 *   de-duplicate), so the replay never doubles a row.
 * - health() fills a snapshot; free() releases everything without reporting anything.
 *
 * Threads: every op is called by ONE thread (the stream's worker). A sink may run its own threads
 * (the PostgreSQL sink runs one per connection); it never calls mosquitto_*, it logs with kg_log. */
#ifndef KITGATE_SINK_H
#define KITGATE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/config.h"
#include "kitgate/record.h"

enum kg_settle {
	KG_SETTLE_OK = 0,
	KG_SETTLE_REJECTED,
	KG_SETTLE_FAILED,
};

/* reason: NULL for OK; a static string for REJECTED and FAILED. */
typedef void (*kg_sink_report_fn)(void *item, enum kg_settle how, const char *reason, void *ud);

struct kg_sink_health {
	bool connected;          /* the last attempt reached the server */
	size_t in_flight;        /* submitted, not yet reported */
	uint64_t written;        /* rows inserted / messages delivered */
	uint64_t duplicates;     /* rows already present (PostgreSQL) */
	uint64_t errors;         /* failed attempts (each retried or replayed) */
	uint64_t reconnects;
	char last_error[160];    /* "" when none */
};

struct kg_sink_ops {
	const char *name;        /* "postgres", "kafka", "none" */
	/* Accept up to n records. Returns how many were taken (0..n, a prefix): fewer when the sink
	 * is full; the worker polls and submits the rest later. */
	size_t (*submit)(void *state, const struct kg_record *recs, void *const *items, size_t n);
	/* Report settled items through report(), waiting up to timeout_ms for the first one.
	 * Returns how many were reported. */
	size_t (*poll)(void *state, int timeout_ms, kg_sink_report_fn report, void *ud);
	void (*rewind)(void *state);
	void (*health)(void *state, struct kg_sink_health *out);
	void (*free)(void *state);
};

struct kg_sink {
	const struct kg_sink_ops *ops;
	void *state;
};

/* Constructors. Each returns 0 and fills *out, or -1 with one line in err (bad option, out of
 * memory). None connects: a server that is down never makes them fail. Any thread; the sink then
 * belongs to the thread that calls its ops. */

/* PostgreSQL: cfg->pg_connections independent connections to cfg->database_url, each on its own
 * thread with its own batches (<= cfg->batch_size rows) and commits, retrying its own batch with
 * backoff until it commits or the sink is rewound or freed. Takes RAW/AGGREGATE records. */
int kg_sink_pg__new(struct kg_sink *out, const struct kg_config *cfg, char *err, size_t errlen);

/* Kafka: one producer (kafka.c); RAW/AGGREGATE go to cfg->kafka_topic_raw/aggregate keyed by
 * serial, BRIDGE records to their mapped topic (bridge.c) keyed by MQTT topic. A delivery failure
 * is reported FAILED; a fatal producer is replaced at the next rewind. cfg must outlive the sink. */
int kg_sink_kafka__new(struct kg_sink *out, const struct kg_config *cfg, char *err, size_t errlen);

/* None: every record is reported OK at the next poll. */
int kg_sink_none__new(struct kg_sink *out, char *err, size_t errlen);

static inline void kg_sink__free(struct kg_sink *s)
{
	if(s->ops) s->ops->free(s->state);
	s->ops = NULL;
	s->state = NULL;
}

#endif
