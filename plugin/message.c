/* message.c -- MOSQ_EVT_MESSAGE: validate kit measurements inside the broker and hand accepted ones
 * (and bridged topics) to the worker. Broker thread only; this is the hot path: one parse, one
 * encode into a stack buffer, one malloc and one write(2) in the hand-off, no other I/O. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/bridge.h"
#include "kitgate/payload.h"
#include "kitgate/record.h"
#include "kitgate/topic.h"
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
			" [+%llu more %s rejections suppressed]", (int)slen, serial, topic, kg_reason__name(r),
			detail ? detail : "-", (unsigned long long)suppressed, kg_reason__name(r));
}

/* Encode rec and push it; returns 0 or -1 when it cannot be held (overload). */
static int hand_off(struct kg_plugin *p, const struct kg_record *rec)
{
	uint8_t stack[KG_RECORD_MAX_FIXED];
	uint8_t *buf = stack;
	size_t n;
	int rc;

	n = kg_record__encode(rec, stack, sizeof(stack));
	if(n == 0) return -1; /* not encodable: cannot happen for a validated record */
	if(n > sizeof(stack)){
		buf = malloc(n); /* bridged payloads can be large */
		if(!buf) return -1;
		kg_record__encode(rec, buf, n);
	}
	rc = n > UINT32_MAX ? -1 : kg_handoff__push(&p->handoff, buf, (uint32_t)n);
	if(buf != stack) free(buf);
	return rc;
}

static int on_measurement(struct kg_plugin *p, struct mosquitto_evt_message *ed, int kind,
		const char *serial, size_t slen)
{
	struct kg_record rec;
	const char *detail = NULL;
	enum kg_reason r;
	int64_t t0 = clock_ns(CLOCK_MONOTONIC);

	r = kg_payload__validate(p->cfg.payload_format, kind, serial, slen, ed->payload, ed->payloadlen,
			clock_ns(CLOCK_REALTIME) / 1000000, &p->limits, &rec, &detail);
	if(r == KG_OK && p->auth.snap && (r = kg_snapshot__check(p->auth.snap, serial, slen, rec.peripheral, rec.quantity_type)) != KG_OK) detail = "kits snapshot";
	if(r == KG_OK && p->handing_off && hand_off(p, &rec) != 0){
		r = KG_OVERLOAD;
		detail = "queue full and spool unavailable";
	}
	p->counters.broker_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
	p->counters.broker_msgs++;
	if(r != KG_OK){
		p->counters.rejected[r]++;
		log_reject(p, r, serial, slen, ed->topic, detail);
		return MOSQ_ERR_ACL_DENIED; /* v5: PUBACK/PUBREC 0x87; v3.1.1: dropped; never routed */
	}
	p->counters.accepted++;
	return MOSQ_ERR_SUCCESS;
}

static int on_bridged(struct kg_plugin *p, struct mosquitto_evt_message *ed)
{
	struct kg_record rec;
	size_t tlen = strlen(ed->topic);
	int64_t t0 = clock_ns(CLOCK_MONOTONIC);
	int rc;

	char ktopic[250];
	uint64_t suppressed;

	/* A topic with no legal Kafka name is refused here, where it is cheap, and still routed to
	 * MQTT subscribers as usual. */
	if(tlen > UINT16_MAX || kg_bridge__kafka_topic(ed->topic, p->cfg.kafka_topic_separator, ktopic) < 0){
		p->counters.bridge_refused++;
		if(kg_ratelimit__allow(&p->bridge_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: bridge: topic \"%.100s…\" has no legal "
					"Kafka name (over 249 characters); not forwarded (+%llu more suppressed)",
					ed->topic, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_SUCCESS;
	}
	memset(&rec, 0, sizeof(rec.kind) + sizeof(rec.id));
	rec.kind = KG_KIND_BRIDGE;
	rec.topic = ed->topic;
	rec.topic_len = (uint16_t)tlen;
	rec.payload = ed->payload;
	rec.payload_len = ed->payloadlen;
	rc = hand_off(p, &rec);
	p->counters.broker_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
	p->counters.broker_msgs++;
	if(rc != 0){
		p->counters.rejected[KG_OVERLOAD]++;
		log_reject(p, KG_OVERLOAD, "-", 1, ed->topic, "bridge: queue full and spool unavailable");
		return MOSQ_ERR_ACL_DENIED;
	}
	p->counters.bridge_forwarded++;
	return MOSQ_ERR_SUCCESS;
}

int kg_message__on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct kg_plugin *p = userdata;
	const char *serial = NULL;
	size_t slen = 0;

	(void)event;
	switch(kg_topic__classify(ed->topic, &serial, &slen)){
		case KG_TOPIC_KIT_RAW:
			return on_measurement(p, ed, KG_KIND_RAW, serial, slen);
		case KG_TOPIC_KIT_AGGREGATE:
			return on_measurement(p, ed, KG_KIND_AGGREGATE, serial, slen);
		case KG_TOPIC_OTHER:
			if(p->cfg.nbridge_topics && kg_bridge__wanted(&p->cfg, ed->topic)){
				return on_bridged(p, ed);
			}
			return MOSQ_ERR_SUCCESS;
		default:
			return MOSQ_ERR_SUCCESS; /* other kit topics (rpc, media) are routed untouched */
	}
}
