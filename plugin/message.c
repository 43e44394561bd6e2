/* message.c -- MOSQ_EVT_MESSAGE: the mosquitto glue around kg_ingest__message (ingest.c): return
 * codes, counters, rate-limited log lines. Broker thread only; this is the hot path: one parse,
 * one encode into a stack buffer, one malloc and one spool append (a memcpy into the page cache)
 * in the hand-off, no other I/O.
 *
 * Return codes (mosquitto 2.0.11): MOSQ_ERR_SUCCESS routes the message and acknowledges it;
 * MOSQ_ERR_ACL_DENIED drops it (v5: PUBACK/PUBREC 0x87; v3.1.1: a plain ack; QoS 0: silent);
 * any other code drops it and disconnects the client WITHOUT an acknowledgement, so a QoS 1/2
 * publisher sends it again after reconnecting. That is how "no acknowledgement without
 * durability" is kept when a spool append fails: MOSQ_ERR_ERRNO with errno set to the spool's
 * error (the broker logs "Client <id> disconnected: <strerror>."). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/ingest.h"
#include "kitgate/snapshot.h"
#include "kitgate/validate.h"
#include "kitgate_internal.h"

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void log_reject(struct kg_plugin *p, enum kg_reason r, const char *serial, size_t slen,
		const char *topic, const char *detail)
{
	uint64_t suppressed;

	if(!kg_ratelimit__allow(&p->reject_log[r], &suppressed)) return;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: rejected measurement from kit %.*s on %s: %s (%s)"
			" [+%llu more %s rejections suppressed]", (int)slen, serial ? serial : "-", topic,
			kg_reason__name(r), detail ? detail : "-", (unsigned long long)suppressed, kg_reason__name(r));
}

static int undurable(struct kg_plugin *p, struct mosquitto_evt_message *ed, int err)
{
	uint64_t suppressed;
	bool qos0 = ed->qos == 0;

	if(qos0) p->counters.spool_unavailable++;
	else p->counters.unacked++;
	if(kg_ratelimit__allow(&p->durable_log, &suppressed)){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: spool append failed (%s): message on %s %s "
				"[+%llu more suppressed]", strerror(-err), ed->topic,
				qos0 ? "dropped (QoS 0, counted as spool_unavailable)"
				: "not acknowledged; the client is disconnected and will send it again",
				(unsigned long long)suppressed);
	}
	if(qos0) return MOSQ_ERR_ACL_DENIED;
	errno = -err;
	return MOSQ_ERR_ERRNO;
}

/* kg_ingest's check hook (plugin.c installs it): with auth postgres, the kits snapshot decides
 * whether the kit owns the peripheral and the quantity type exists. KG_OK without a snapshot
 * (auth none). Broker thread (the snapshot is swapped in TICK, on this thread). */
enum kg_reason kg_message__check(void *ud, const char *serial, size_t serial_len,
		const struct kg_record *rec, const char **detail)
{
	struct kg_plugin *p = ud;
	enum kg_reason r;

	if(!p->auth.snap) return KG_OK;
	r = kg_snapshot__check(p->auth.snap, serial, serial_len, rec->peripheral, rec->quantity_type);
	if(r != KG_OK) *detail = "kits snapshot";
	return r;
}

int kg_message__on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct kg_plugin *p = userdata;
	struct kg_ingest_out out;
	enum kg_ingest_result r;
	uint64_t suppressed;
	int64_t t0 = clock_ns(CLOCK_MONOTONIC);

	(void)event;
	r = kg_ingest__message(&p->ingest, ed->topic, ed->payload, ed->payloadlen,
			clock_ns(CLOCK_REALTIME) / 1000000, &out);
	/* The live view (live.c): statistics of generic stats_topics, per-kit status and statistics. */
	if(r == KG_INGEST_PASS || r == KG_INGEST_BRIDGED || r == KG_INGEST_REFUSED_TOPIC){
		if(strncmp(ed->topic, "kit/", 4)) kg_live__other(p, ed->topic, ed->payload, (size_t)ed->payloadlen);
	}else if(r != KG_INGEST_UNDURABLE){
		kg_live__measurement(p, ed->client, out.serial, out.serial_len, ed->topic,
				r == KG_INGEST_ACCEPTED ? KG_OK : out.reason, out.detail, &out.rec);
	}
	if(r == KG_INGEST_PASS) return MOSQ_ERR_SUCCESS;
	p->counters.broker_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
	p->counters.broker_msgs++;
	switch(r){
		case KG_INGEST_ACCEPTED:
			p->counters.accepted++;
			return MOSQ_ERR_SUCCESS;
		case KG_INGEST_BRIDGED:
			p->counters.bridge_forwarded++;
			return MOSQ_ERR_SUCCESS;
		case KG_INGEST_REFUSED_TOPIC:
			p->counters.bridge_refused++;
			if(kg_ratelimit__allow(&p->bridge_log, &suppressed)){
				mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: bridge: topic \"%.100s…\" has no legal "
						"Kafka name (over 249 characters); not forwarded (+%llu more suppressed)",
						ed->topic, (unsigned long long)suppressed);
			}
			return MOSQ_ERR_SUCCESS;
		case KG_INGEST_REJECTED:
		case KG_INGEST_OVERLOAD:
			p->counters.rejected[out.reason]++;
			log_reject(p, out.reason, out.serial, out.serial_len, ed->topic, out.detail);
			return MOSQ_ERR_ACL_DENIED; /* v5: PUBACK/PUBREC 0x87; v3.1.1: dropped; never routed */
		case KG_INGEST_UNDURABLE:
			return undurable(p, ed, out.err);
		case KG_INGEST_PASS:
			break;
	}
	return MOSQ_ERR_SUCCESS;
}
