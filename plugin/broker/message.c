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
 * error (the broker logs "Client <id> disconnected: <strerror>.").
 *
 * Measurements are validated one step earlier, in the ACL WRITE check (kg_message__on_write, called
 * by acl.c), because wills pass that check at send time and never reach MESSAGE: an invalid
 * measurement or will is denied there (MOSQ_ERR_ACL_DENIED: never delivered, never retained,
 * counted by reason). The encoded record waits in p->memo, and the events module (events.h) notes
 * the write's identity: when it says the MESSAGE is that write's (KG_EVENTS_MSG_MEMO), the memo is
 * pushed without validating again; when another event finds the write still pending, it was a
 * will and the module calls kg_message__will, which pushes the record then. A will whose push
 * fails was delivered anyway (the broker sends it after the check): it is counted as wills_unsaved
 * and logged; nothing can be denied retroactively. A MESSAGE without a memo of its own (another
 * plugin decided the ACL, a bridge connection, which mosquitto never ACL-checks) is validated here
 * as before. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "broker_api.h"

#include "kitgate/clock.h"
#include "kitgate/events.h"
#include "kitgate/ingest.h"
#include "kitgate/kits.h"
#include "kitgate/snapshot.h"
#include "kitgate/tokenbucket.h"
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

/* Contract in kitgate_internal.h. Broker thread. */
int kg_message__on_write(struct kg_plugin *p, struct mosquitto_evt_acl_check *ed)
{
	struct kg_ingest_out out;
	enum kg_ingest_result r;
	int64_t t0 = clock_ns(CLOCK_MONOTONIC);

	/* acl.c fed this event to kg_events__other: no will is pending in p->memo any more */
	r = kg_ingest__check(&p->ingest, ed->topic, ed->payload, ed->payloadlen, ed->retain,
			kg_clock__wall_ms(), &p->memo, &out);
	if(r == KG_INGEST_PASS) return MOSQ_ERR_SUCCESS;
	p->counters.broker_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - t0);
	if(r == KG_INGEST_REJECTED){
		p->counters.broker_msgs++;
		p->counters.rejected[out.reason]++;
		log_reject(p, out.reason, out.serial, out.serial_len, ed->topic, out.detail);
		/* no client: this may be a will, sent while (or after) its client goes away */
		kg_live__measurement(p, NULL, out.serial, out.serial_len, ed->topic, out.reason, out.detail, &p->memo.dec);
		return MOSQ_ERR_ACL_DENIED; /* v5: PUBACK/PUBREC 0x87; v3.1.1: dropped; a will: not sent */
	}
	kg_events__write(p->events, ed->client, ed->topic, ed->payload, (size_t)ed->payloadlen);
	return MOSQ_ERR_SUCCESS;
}

/* Contract in kitgate_internal.h. Broker thread. */
void kg_message__will(struct kg_plugin *p)
{
	struct kg_ingest_out out;
	enum kg_ingest_result r;
	uint64_t suppressed;

	if(p->memo.n == 0) return;
	r = kg_ingest__push(&p->ingest, &p->memo, &out);
	p->counters.broker_msgs++;
	if(r == KG_INGEST_ACCEPTED){
		p->counters.accepted++;
		p->counters.wills_accepted++;
		kg_live__measurement(p, NULL, out.serial, out.serial_len, "(will)", KG_OK, NULL, &p->memo.dec);
		return;
	}
	p->counters.wills_unsaved++;
	if(kg_ratelimit__allow(&p->will_log, &suppressed)){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: the will of kit %.*s was delivered but not "
				"handed to the sink: %s (%s) [+%llu more suppressed]", (int)out.serial_len,
				out.serial ? out.serial : "-", out.detail ? out.detail : "-",
				out.err ? strerror(-out.err) : "queue full", (unsigned long long)suppressed);
	}
}

/* kg_ingest's check hook (plugin.c installs it): with auth postgres, the kits snapshot rejects
 * what it knows to be wrong: a peripheral of another kit (KG_FOREIGN_PERIPHERAL). A peripheral or
 * quantity type it does not know may be newer than the snapshot: it passes (the sink's database
 * check decides, as without a snapshot), is counted, and the loader is asked for a fresh snapshot
 * (kg_snapshot__ask_refresh: rate-limited there). KG_OK without a snapshot (auth none). Broker
 * thread (the snapshot is swapped in TICK, on this thread). */
enum kg_reason kg_message__check(void *ud, const char *serial, size_t serial_len,
		const struct kg_record *rec, const char **detail)
{
	struct kg_plugin *p = ud;
	enum kg_reason r;

	if(!p->auth.snap) return KG_OK;
	r = kg_snapshot__check(p->auth.snap, serial, serial_len, rec->peripheral, rec->quantity_type);
	if(r == KG_UNKNOWN_PERIPHERAL || r == KG_UNKNOWN_QUANTITY_TYPE){
		p->auth.unknown_passed++;
		if(p->auth.loader) kg_snapshot__ask_refresh(p->auth.loader);
		return KG_OK;
	}
	if(r != KG_OK) *detail = "kits snapshot";
	return r;
}

/* kit_rate_limit: the publish of a kit on its own topics (kit/<its serial>/...) takes a token from
 * its bucket, which lives in the kit table (live.c, bounded); over the limit the publish is dropped
 * before validation or the sink: MOSQ_ERR_QUOTA_EXCEEDED on 2.1 (v5 0x97), MOSQ_ERR_ACL_DENIED on
 * 2.0 (0x87; any other code would disconnect), counted as rate_limited. Never a disconnect.
 * O(serial length), no allocation (the kit's entry exists once it connected). */
static bool over_rate(struct kg_plugin *p, const struct mosquitto_evt_message *ed)
{
	const char *user = mosquitto_client_username(ed->client);
	struct kg_kit *kit;
	size_t ulen;

	if(!user || strncmp(ed->topic, "kit/", 4) != 0) return false;
	ulen = strlen(user);
	if(strncmp(ed->topic + 4, user, ulen) != 0 || ed->topic[4 + ulen] != '/') return false;
	if(kg_config__is_service(&p->cfg, user)) return false;
	kit = kg_live__kit(p, user, ulen);
	return kit && !kg_tokenbucket__take(&kit->rate, p->cfg.kit_rate_limit, p->cfg.kit_rate_burst,
			clock_ns(CLOCK_MONOTONIC));
}

static int rate_limited(struct kg_plugin *p, const struct mosquitto_evt_message *ed, bool own_memo)
{
	const char *serial = ed->topic + 4;
	size_t slen = strcspn(serial, "/");

	if(own_memo) p->memo.n = 0;   /* validated in the ACL check; never pushed */
	p->counters.rejected[KG_RATE_LIMITED]++;
	log_reject(p, KG_RATE_LIMITED, serial, slen, ed->topic, "kit_rate_limit");
	kg_live__measurement(p, ed->client, serial, slen, ed->topic, KG_RATE_LIMITED, "kit_rate_limit", &p->memo.dec);
	return p->quota_rc;
}

int kg_message__on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct kg_plugin *p = userdata;
	struct kg_ingest_out out;
	enum kg_ingest_result r;
	uint64_t suppressed;
	int64_t t0 = clock_ns(CLOCK_MONOTONIC);
	bool own_memo;

	(void)event;
	/* the write this MESSAGE belongs to, if any; another write still pending was a will (pushed) */
	own_memo = kg_events__message(p->events, ed->client, ed->topic, ed->payload, (size_t)ed->payloadlen)
		== KG_EVENTS_MSG_MEMO && p->memo.n > 0;
	if(p->cfg.kit_rate_limit && over_rate(p, ed)) return rate_limited(p, ed, own_memo);
	if(own_memo){
		r = kg_ingest__push(&p->ingest, &p->memo, &out);
	}else{
		r = kg_ingest__check(&p->ingest, ed->topic, ed->payload, ed->payloadlen, ed->retain,
				kg_clock__wall_ms(), &p->memo, &out);
		if(r == KG_INGEST_ACCEPTED) r = kg_ingest__push(&p->ingest, &p->memo, &out);
		else if(r == KG_INGEST_PASS && !out.serial) r = kg_ingest__message(&p->ingest, ed->topic,
				ed->payload, ed->payloadlen, kg_clock__wall_ms(), &out); /* bridge */
	}
	/* The live view (live.c): statistics of generic stats_topics, per-kit status and statistics.
	 * A measurement's decoded record is p->memo.dec (kg_ingest__check). */
	if(r == KG_INGEST_PASS || r == KG_INGEST_BRIDGED || r == KG_INGEST_REFUSED_TOPIC){
		if(strncmp(ed->topic, "kit/", 4)) kg_live__other(p, ed->topic, ed->payload, (size_t)ed->payloadlen);
	}else if(r != KG_INGEST_UNDURABLE){
		kg_live__measurement(p, ed->client, out.serial, out.serial_len, ed->topic,
				r == KG_INGEST_ACCEPTED ? KG_OK : out.reason, out.detail, &p->memo.dec);
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
				mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: bridge: topic \"%.100s…\": %s; routed to MQTT "
						"subscribers, not forwarded to Kafka (+%llu more suppressed)",
						ed->topic, out.detail ? out.detail : "refused", (unsigned long long)suppressed);
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
