/* ingest.c -- the broker thread's MESSAGE path without mosquitto: classify, validate, encode,
 * push into the stream's hand-off. Contract in ingest.h. */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/bridge.h"
#include "kitgate/handoff.h"
#include "kitgate/ingest.h"
#include "kitgate/payload.h"
#include "kitgate/record.h"
#include "kitgate/spool.h"
#include "kitgate/topic.h"

void kg_ingest__init(struct kg_ingest *ig, const struct kg_config *cfg,
		struct kg_handoff *measurements, struct kg_handoff *bridge)
{
	memset(ig, 0, sizeof(*ig));
	ig->cfg = cfg;
	ig->limits.max_payload = cfg->max_payload;
	ig->limits.max_clock_skew_ms = cfg->max_clock_skew_s * 1000;
	ig->measurements = measurements;
	ig->bridge = bridge;
}

/* Encode rec and push it into h: 0, -ENOBUFS (memory-only and full) or -errno (spool). */
static int hand_off(struct kg_handoff *h, const struct kg_record *rec)
{
	uint8_t stack[KG_RECORD_MAX_FIXED];
	uint8_t *buf = stack;
	size_t n;
	int rc;

	n = kg_record__encode(rec, stack, sizeof(stack));
	if(n == 0 || n > UINT32_MAX) return -EINVAL; /* cannot happen for a validated record */
	if(n > sizeof(stack)){
		buf = malloc(n); /* bridged payloads can be large */
		if(!buf) return -ENOBUFS;
		kg_record__encode(rec, buf, n);
	}
	rc = kg_handoff__push(h, buf, (uint32_t)n);
	if(buf != stack) free(buf);
	return rc;
}

static enum kg_ingest_result push_result(int rc, struct kg_ingest_out *out, enum kg_ingest_result ok)
{
	if(rc == 0) return ok;
	if(rc == -ENOBUFS){
		out->reason = KG_OVERLOAD;
		out->detail = "queue full and no spool";
		return KG_INGEST_OVERLOAD;
	}
	out->err = rc;
	out->detail = "spool append failed";
	return KG_INGEST_UNDURABLE;
}

static enum kg_ingest_result measurement(const struct kg_ingest *ig, int kind, const void *payload,
		size_t len, int64_t now_ms, struct kg_ingest_out *out)
{
	struct kg_record *rec = &out->rec;

	out->reason = kg_payload__validate(ig->cfg->payload_format, kind, out->serial, out->serial_len, payload, len, now_ms,
			&ig->limits, rec, &out->detail);
	if(out->reason != KG_OK) return KG_INGEST_REJECTED;
	if(ig->check && (out->reason = ig->check(ig->check_ud, out->serial, out->serial_len, rec, &out->detail)) != KG_OK){
		return KG_INGEST_REJECTED;
	}
	if(!ig->measurements) return KG_INGEST_ACCEPTED; /* sink none */
	return push_result(hand_off(ig->measurements, rec), out, KG_INGEST_ACCEPTED);
}

static enum kg_ingest_result bridged(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, struct kg_ingest_out *out)
{
	struct kg_record rec;
	size_t tlen = strlen(topic);
	char ktopic[250];

	/* A topic with no legal Kafka name is refused here, where it is cheap, and still routed to
	 * MQTT subscribers as usual. */
	if(tlen > UINT16_MAX || kg_bridge__kafka_topic(topic, ig->cfg->kafka_topic_separator, ktopic) < 0){
		out->detail = "no legal Kafka name (over 249 characters)";
		return KG_INGEST_REFUSED_TOPIC;
	}
	/* A record the spool can never hold must not be treated as a failed append: the publisher
	 * would be disconnected and resend it forever. Routed to MQTT subscribers, not forwarded. */
	if(len > KG_SPOOL_MAX_BODY - tlen - 64){
		out->detail = "payload over the spool's 16 MiB record limit";
		return KG_INGEST_REFUSED_TOPIC;
	}
	memset(&rec, 0, sizeof(rec.kind) + sizeof(rec.id));
	rec.kind = KG_KIND_BRIDGE;
	rec.topic = topic;
	rec.topic_len = (uint16_t)tlen;
	rec.payload = payload;
	rec.payload_len = (uint32_t)len;
	return push_result(hand_off(ig->bridge, &rec), out, KG_INGEST_BRIDGED);
}

/* Contract in ingest.h. The same rules as measurement(), stopping before the hand-off. */
enum kg_ingest_result kg_ingest__check(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, bool retain, int64_t now_ms, struct kg_ingest_memo *memo,
		struct kg_ingest_out *out)
{
	struct kg_record *rec = &memo->dec;
	int kind;
	size_t n;

	memset(out, 0, offsetof(struct kg_ingest_out, rec)); /* rec is not used here: memo->dec is */
	memo->n = 0;
	switch(kg_topic__classify(topic, &out->serial, &out->serial_len)){
		case KG_TOPIC_KIT_RAW: kind = KG_KIND_RAW; break;
		case KG_TOPIC_KIT_AGGREGATE: kind = KG_KIND_AGGREGATE; break;
		default: return KG_INGEST_PASS;
	}
	if(len == 0 && retain) return KG_INGEST_PASS; /* clears the retained message */
	out->reason = kg_payload__validate(ig->cfg->payload_format, kind, out->serial, out->serial_len,
			payload, len, now_ms, &ig->limits, rec, &out->detail);
	if(out->reason != KG_OK) return KG_INGEST_REJECTED;
	if(ig->check && (out->reason = ig->check(ig->check_ud, out->serial, out->serial_len, rec, &out->detail)) != KG_OK){
		return KG_INGEST_REJECTED;
	}
	n = kg_record__encode(rec, memo->rec, sizeof(memo->rec));
	if(n == 0 || n > sizeof(memo->rec)){ /* cannot happen for a validated record */
		out->reason = KG_MALFORMED;
		out->detail = "record does not encode";
		return KG_INGEST_REJECTED;
	}
	memo->n = (uint32_t)n;
	assert(out->serial_len <= KG_SERIAL_MAX);  /* kg_payload__validate refuses a longer one */
	memcpy(memo->serial_buf, out->serial, out->serial_len);
	memo->serial_buf[out->serial_len] = '\0';
	memo->serial = memo->serial_buf;
	memo->serial_len = out->serial_len;
	return KG_INGEST_ACCEPTED;
}

/* Contract in ingest.h. */
enum kg_ingest_result kg_ingest__push(const struct kg_ingest *ig, struct kg_ingest_memo *memo,
		struct kg_ingest_out *out)
{
	uint32_t n = memo->n;

	assert(n > 0);
	memset(out, 0, offsetof(struct kg_ingest_out, rec)); /* the decoded record is memo->dec */
	out->serial = memo->serial;
	out->serial_len = memo->serial_len;
	memo->n = 0;
	if(!ig->measurements) return KG_INGEST_ACCEPTED; /* sink none */
	return push_result(kg_handoff__push(ig->measurements, memo->rec, n), out, KG_INGEST_ACCEPTED);
}

enum kg_ingest_result kg_ingest__message(const struct kg_ingest *ig, const char *topic,
		const void *payload, size_t len, int64_t now_ms, struct kg_ingest_out *out)
{
	memset(out, 0, sizeof(*out));
	switch(kg_topic__classify(topic, &out->serial, &out->serial_len)){
		case KG_TOPIC_KIT_RAW:
			return measurement(ig, KG_KIND_RAW, payload, len, now_ms, out);
		case KG_TOPIC_KIT_AGGREGATE:
			return measurement(ig, KG_KIND_AGGREGATE, payload, len, now_ms, out);
		case KG_TOPIC_OTHER:
			if(ig->bridge && kg_bridge__wanted(ig->cfg, topic)) return bridged(ig, topic, payload, len, out);
			return KG_INGEST_PASS;
		default:
			return KG_INGEST_PASS; /* other kit topics (rpc, media) are routed untouched */
	}
}
