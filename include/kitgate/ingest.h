/* ingest.h -- the pure part of MOSQ_EVT_MESSAGE: classify the topic, validate a measurement,
 * encode it, push it into its stream's hand-off (measurements or bridge), and say what the
 * broker must do with the message. message.c adds only the mosquitto glue (return codes,
 * counters, rate-limited log lines); tools/kitgate-microbench.c measures this very function.
 *
 * Threads: kg_ingest__message runs on the broker thread (the one appender of both hand-offs).
 * struct kg_ingest is read-only after kg_ingest__init (and the check hook set right after it). */
#ifndef KITGATE_INGEST_H
#define KITGATE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "kitgate/config.h"
#include "kitgate/record.h"
#include "kitgate/validate.h"

struct kg_handoff;

enum kg_ingest_result {
	KG_INGEST_PASS = 0,       /* not ours (other kit topics, topics not bridged): route untouched */
	KG_INGEST_ACCEPTED,       /* a valid measurement, held by its stream (or sink none): route */
	KG_INGEST_BRIDGED,        /* a bridged message, held by the bridge stream: route */
	KG_INGEST_REFUSED_TOPIC,  /* bridged topic without a legal Kafka name: route, not forwarded */
	KG_INGEST_REJECTED,       /* invalid measurement (out->reason, out->detail): drop */
	KG_INGEST_OVERLOAD,       /* memory-only stream full (spool_dir off): drop, reason overload */
	KG_INGEST_UNDURABLE,      /* the stream's spool append failed (out->err = -errno): the message
	                           * must not be acknowledged */
};

struct kg_ingest_out {
	enum kg_reason reason;    /* REJECTED: why; OVERLOAD: KG_OVERLOAD */
	const char *detail;       /* static text or NULL */
	const char *serial;       /* measurement topics: the topic's serial (not NUL-terminated) */
	size_t serial_len;
	int err;                  /* UNDURABLE: -errno from the spool */
	struct kg_record rec;     /* measurement topics, once validation got that far: the decoded
	                           * record (ACCEPTED: complete; read by the live view's statistics) */
};

/* An extra check of a valid measurement (auth postgres: the kits snapshot's ownership rules).
 * Returns KG_OK or the reason, setting *detail. Broker thread. */
typedef enum kg_reason (*kg_ingest_check_fn)(void *ud, const char *serial, size_t serial_len,
		const struct kg_record *rec, const char **detail);

struct kg_ingest {
	const struct kg_config *cfg;
	struct kg_limits limits;
	struct kg_handoff *measurements; /* NULL: sink none (validated, not handed off) */
	struct kg_handoff *bridge;       /* NULL: no bridge_topics */
	kg_ingest_check_fn check;        /* NULL: none; set after kg_ingest__init */
	void *check_ud;
};

/* cfg and the hand-offs must outlive ig. Main thread. */
void kg_ingest__init(struct kg_ingest *ig, const struct kg_config *cfg,
		struct kg_handoff *measurements, struct kg_handoff *bridge);

/* One inbound message. payload may be NULL when len is 0. now_ms: wall clock (epoch ms).
 * Allocation-free for measurements (a stack buffer) except the hand-off's one item. */
enum kg_ingest_result kg_ingest__message(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, int64_t now_ms, struct kg_ingest_out *out);

#endif
