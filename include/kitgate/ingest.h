/* ingest.h -- the pure part of MOSQ_EVT_MESSAGE: classify the topic, validate a measurement,
 * encode it, push it into its stream's hand-off (measurements or bridge), and say what the
 * broker must do with the message. message.c adds only the mosquitto glue (return codes,
 * counters, rate-limited log lines); tools/kitgate-microbench.c measures this very function.
 *
 * Threads: kg_ingest__message runs on the broker thread (the one appender of both hand-offs).
 * struct kg_ingest is read-only after kg_ingest__init (and the check hook set right after it). */
#ifndef KITGATE_INGEST_H
#define KITGATE_INGEST_H

#include <stdbool.h>
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

/* A measurement validated and encoded by kg_ingest__check but not yet pushed: the plugin validates
 * in the ACL WRITE check (which wills pass too, at send time) and pushes in MESSAGE (which wills
 * never reach). One entry; the broker thread owns it. client, topic and payload are opaque tokens
 * compared with the MESSAGE that follows in the same synchronous call chain, never dereferenced
 * later. n == 0: empty. */
struct kg_ingest_memo {
	uint32_t n;                      /* bytes of rec used */
	const char *serial;              /* serial_buf; for the live view and log lines while the memo
	                                  * is pending */
	size_t serial_len;
	char serial_buf[KG_SERIAL_MAX + 1];  /* a copy: a will's topic is freed by the broker right
	                                  * after its ACL check (will__clear), before the event that
	                                  * pushes the memo */
	uint8_t rec[KG_RECORD_MAX_FIXED];/* the encoded record */
	struct kg_record dec;            /* the decoded record (the live view's statistics); valid
	                                  * after ACCEPTED until the next check */
};

/* cfg and the hand-offs must outlive ig. Main thread. */
void kg_ingest__init(struct kg_ingest *ig, const struct kg_config *cfg,
		struct kg_handoff *measurements, struct kg_handoff *bridge);

/* One inbound message. payload may be NULL when len is 0. now_ms: wall clock (epoch ms).
 * Allocation-free for measurements (a stack buffer) except the hand-off's one item. */
enum kg_ingest_result kg_ingest__message(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, int64_t now_ms, struct kg_ingest_out *out);

/* The first half of kg_ingest__message for a publish or a will (the ACL WRITE check): on a
 * measurement topic validate (payload rules, kits snapshot) and encode into memo (memo->n > 0),
 * returning KG_INGEST_ACCEPTED (nothing pushed yet) or KG_INGEST_REJECTED (out->reason). An empty
 * retained publish (len 0, retain) on a measurement topic clears the retained message: it is not a
 * measurement, KG_INGEST_PASS. The check hook runs as in kg_ingest__message; out->rec is not
 * filled (the record is memo->dec). Every other topic: KG_INGEST_PASS (memo->n == 0). memo is
 * overwritten (which write it belongs to is the events module's business, events.h). Allocation-free except cJSON's. */
enum kg_ingest_result kg_ingest__check(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, bool retain, int64_t now_ms, struct kg_ingest_memo *memo,
		struct kg_ingest_out *out);

/* The second half: push memo's record into the measurements stream and empty the memo (n = 0).
 * KG_INGEST_ACCEPTED, KG_INGEST_OVERLOAD or KG_INGEST_UNDURABLE (out->err), as kg_ingest__message.
 * memo->n must be > 0. */
enum kg_ingest_result kg_ingest__push(const struct kg_ingest *ig, struct kg_ingest_memo *memo,
		struct kg_ingest_out *out);

#endif
