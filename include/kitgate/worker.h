/* worker.h -- one stream's worker thread: takes records from the stream's hand-off (memory or
 * spool), hands them to the stream's sink, settles what the sink reports, and moves the stream's
 * spool checkpoint over the settled prefix.
 *
 * kitgate runs two independent streams, each with its own spool directory, hand-off, worker and
 * sink: kit measurements (<spool_dir>/measurements, sink postgres|kafka|none) and bridge routes
 * (<spool_dir>/bridge, its own Kafka producer). They share nothing but the configuration (read
 * only), so an outage of one sink never delays the other stream.
 *
 * Invariants (checked with assert() in worker.c; tested in tests/unit/test_worker.c):
 * - Cursor: records are taken in spool order and kept, in that order, in the worker's FIFO until
 *   the sink reports them; the checkpoint only moves over the settled prefix of the FIFO (a record
 *   is settled when reported OK or REJECTED, or dropped as undecodable/foreign). So after a crash
 *   every record after the checkpoint is replayed and none before it.
 * - Exactly once per sink: a FAILED report rewinds: the sink drops everything in flight (nothing
 *   of it is reported afterwards), the FIFO is freed, and the hand-off reads the spool again from
 *   the last released position. A record is therefore never settled twice; one that was already
 *   written may be written again, which the sinks absorb (ON CONFLICT (id) DO NOTHING, Kafka
 *   idempotent consumers). Without a spool a FAILED record cannot be replayed: it is counted lost.
 * - Shutdown: kg_worker__stop drains within shutdown_timeout_ms; what is not settled by then stays
 *   after the checkpoint and is replayed at the next start.
 *
 * Threads: new/start/stop/free on the main thread; stats from any thread. The worker thread never
 * calls mosquitto_*; it logs with kg_log. */
#ifndef KITGATE_WORKER_H
#define KITGATE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/sink.h"

struct kg_spool;
struct kg_handoff;
struct kg_worker;

/* Bits of enum kg_kind that a stream takes; a record of another kind found in its spool (e.g. a
 * bridge record in an adopted single-stream spool) is settled with a counted warning. */
#define KG_WORKER_KIND(k) (1u << (k))

struct kg_worker_config {
	const char *name;          /* "measurements", "bridge": in log lines */
	unsigned kinds;            /* KG_WORKER_KIND(...) | ... */
	int batch_size;            /* records per take (>= 1) */
	int batch_ms;              /* linger for a fuller batch */
	int shutdown_timeout_ms;   /* drain deadline after kg_worker__stop */
	size_t inflight_max;       /* records taken but not settled; 0 = 20000 */
};

#define KG_WORKER_REASONS 8     /* distinct rejection reasons counted; more go to "other" */

/* Counters, owned by the worker (relaxed atomics inside), copied out by kg_worker__stats. */
struct kg_worker_stats {
	uint64_t taken;            /* records taken from the hand-off (replays count again) */
	uint64_t settled;          /* records done: ok + rejected + corrupt + foreign + lost */
	uint64_t ok, rejected, lost, corrupt, foreign;
	uint64_t rewinds;
	uint64_t checkpoint;       /* last committed spool position */
	uint64_t synced;           /* spool position made durable by the worker's last fdatasync */
	struct { const char *reason; uint64_t n; } reasons[KG_WORKER_REASONS];
	size_t nreasons;
	bool running;
	struct kg_sink_health sink; /* snapshot refreshed by the worker at least every 200 ms */
};

/* Create a stopped worker. spool may be NULL (memory only); h and spool must outlive the worker;
 * the worker takes ownership of *sink (freed by kg_worker__free, or here on failure).
 * NULL on out of memory. Main thread. */
struct kg_worker *kg_worker__new(const struct kg_worker_config *cfg, struct kg_spool *spool,
		struct kg_handoff *h, struct kg_sink *sink);

/* Start the thread with all signals blocked (librdkafka's and the sink's threads inherit that).
 * 0 or -1. Main thread. */
int kg_worker__start(struct kg_worker *w);

/* Stop the hand-off, drain within shutdown_timeout_ms, leave the rest in the spool, join.
 * (kg_handoff__stop on the stream's hand-off alone starts the drain: the plugin stops both
 * streams' hand-offs first so they drain concurrently.) Main thread; idempotent. */
void kg_worker__stop(struct kg_worker *w);

/* Copy the counters. Any thread. */
void kg_worker__stats(struct kg_worker *w, struct kg_worker_stats *out);

/* Stop (if needed), free the sink and the worker. NULL is fine. Main thread. */
void kg_worker__free(struct kg_worker *w);

#endif
