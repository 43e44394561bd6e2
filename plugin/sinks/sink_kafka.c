/* sink_kafka.c -- the Kafka sink: kit measurements (JSON to kafka_topic_raw/aggregate, keyed by
 * serial) and bridge routes (mapped topic, filtered value, keyed by MQTT topic) through one
 * kg_kafka producer (kafka.c). Contract in sink.h.
 *
 * Threads: one (the stream's worker). Delivery reports arrive from kg_kafka__poll on that thread
 * and are queued in done[] until the end of poll(), so every report goes out through poll(). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/bridge.h"
#include "kitgate/json.h"
#include "kitgate/kafka.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/sink.h"

#define REWIND_WAIT_MS 5000 /* bound on waiting for purge reports before dropping the producer */

struct report {
	void *item;
	enum kg_settle how;
	const char *reason;
};

struct kafka_sink {
	const struct kg_config *cfg;
	struct kg_kafka *k;          /* NULL after a failed re-creation; retried in submit */
	size_t in_flight;            /* produced, delivery report not yet served */
	bool dropping;               /* rewinding: delivery reports are ignored */
	bool fatal;                  /* the producer is unusable: replaced at the next rewind */
	struct report *done;         /* reports waiting for the end of poll() */
	size_t ndone, capdone;
	char *json;                  /* measurement value buffer */
	size_t json_cap;
	bool connected;
	uint64_t delivered, errors, recreated;
	char last_error[160];
	struct kg_ratelimit refused_log, create_log;
};

static void note_error(struct kafka_sink *s, const char *what, const char *detail)
{
	snprintf(s->last_error, sizeof(s->last_error), "%.40s: %.110s", what, detail ? detail : "-");
}

/* Queue a report; on out of memory the item is left unreported, which the worker would wait on
 * forever, so reserve first (submit reserves one slot per accepted record). */
static void push_report(struct kafka_sink *s, void *item, enum kg_settle how, const char *reason)
{
	assert(s->ndone < s->capdone);
	s->done[s->ndone].item = item;
	s->done[s->ndone].how = how;
	s->done[s->ndone].reason = reason;
	s->ndone++;
}

/* Room for n more reports beyond everything in flight. */
static bool reserve_reports(struct kafka_sink *s, size_t n)
{
	size_t need = s->ndone + s->in_flight + n, cap;
	struct report *p;

	if(need <= s->capdone) return true;
	cap = s->capdone ? s->capdone : 1024;
	while(cap < need) cap *= 2;
	p = realloc(s->done, cap * sizeof(*p));
	if(!p) return false;
	s->done = p;
	s->capdone = cap;
	return true;
}

static void kafka_dr(void *opaque, int err, const char *errstr, void *ud)
{
	struct kafka_sink *s = ud;

	assert(s->in_flight > 0);
	s->in_flight--;
	if(s->dropping) return; /* purged during a rewind: the worker replays it from the spool */
	s->connected = err == 0;
	if(err == 0){
		s->delivered++;
		push_report(s, opaque, KG_SETTLE_OK, NULL);
		return;
	}
	s->errors++;
	note_error(s, "delivery failed", errstr);
	push_report(s, opaque, KG_SETTLE_FAILED, "delivery_failed");
}

static bool create_producer(struct kafka_sink *s)
{
	char err[512];
	uint64_t suppressed;

	s->k = kg_kafka__new(s->cfg, kafka_dr, s, err, sizeof(err));
	if(s->k) return true;
	note_error(s, "producer", err);
	if(kg_ratelimit__allow(&s->create_log, &suppressed)){
		kg_log(KG_LOG_ERROR, "Kafka producer: %s (+%llu more suppressed)", err, (unsigned long long)suppressed);
	}
	return false;
}

static bool ensure_json(struct kafka_sink *s, size_t need)
{
	char *n;

	if(need <= s->json_cap) return true;
	n = realloc(s->json, need);
	if(!n) return false;
	s->json = n;
	s->json_cap = need;
	return true;
}

/* Produce one message. 0 = produced (or settled: a report is queued), 1 = queue full (try again
 * after a poll). */
static int send_one(struct kafka_sink *s, void *item, const char *topic, const void *key, size_t keylen,
		const void *value, size_t vlen, int64_t ts, const char *hdr)
{
	int rc = kg_kafka__produce(s->k, topic, key, keylen, value, vlen, ts, hdr, item);

	if(rc == 0){
		s->in_flight++;
		return 0;
	}
	if(rc == 1) return 1;
	s->errors++;
	if(rc == -2){
		/* The producer is broken: report FAILED so the worker rewinds; rewind replaces it. */
		s->fatal = true;
		note_error(s, "producer", "fatal error");
		push_report(s, item, KG_SETTLE_FAILED, "producer_fatal");
		return 0;
	}
	note_error(s, "produce refused", topic);
	push_report(s, item, KG_SETTLE_REJECTED, "kafka_refused"); /* can never be accepted */
	return 0;
}

static int send_measurement(struct kafka_sink *s, void *item, const struct kg_record *rec)
{
	const struct kg_config *cfg = s->cfg;
	char hdr[KG_SERIAL_MAX + 40];
	size_t n;

	n = kg_json__record(rec, s->json, s->json_cap);
	if(n >= s->json_cap){
		if(!ensure_json(s, n + 1)) return 1; /* out of memory: try again later */
		n = kg_json__record(rec, s->json, s->json_cap);
	}
	snprintf(hdr, sizeof(hdr), "kit/%s/measurement/%s", rec->serial,
			rec->kind == KG_KIND_RAW ? "raw" : "aggregate");
	return send_one(s, item, rec->kind == KG_KIND_RAW ? cfg->kafka_topic_raw : cfg->kafka_topic_aggregate,
			rec->serial, strlen(rec->serial), s->json, n, 0, hdr);
}

static int send_bridge(struct kafka_sink *s, void *item, const struct kg_record *rec)
{
	char ktopic[250];
	char *mqtt_topic;
	const uint8_t *value;
	size_t vlen;
	int owned = 0, rc;
	int64_t ts = 0;
	uint64_t suppressed;

	mqtt_topic = strndup(rec->topic, rec->topic_len);
	if(!mqtt_topic) return 1;
	if(kg_bridge__kafka_topic(mqtt_topic, s->cfg->kafka_topic_separator, ktopic) < 0){
		if(kg_ratelimit__allow(&s->refused_log, &suppressed)){
			kg_log(KG_LOG_WARNING, "bridge: topic \"%.100s\" has no legal Kafka name (over 249 "
					"characters); not forwarded (+%llu more suppressed)", mqtt_topic,
					(unsigned long long)suppressed);
		}
		push_report(s, item, KG_SETTLE_REJECTED, "refused_topic");
		free(mqtt_topic);
		return 0;
	}
	if(kg_bridge__transform(s->cfg, mqtt_topic, rec->payload, rec->payload_len,
				&value, &vlen, &owned, &ts) != 0){
		value = rec->payload;
		vlen = rec->payload_len;
		owned = 0;
	}
	rc = send_one(s, item, ktopic, mqtt_topic, strlen(mqtt_topic), value, vlen, ts, mqtt_topic);
	if(owned) free((void *)value);
	free(mqtt_topic);
	return rc;
}

static size_t kafka_submit(void *state, const struct kg_record *recs, void *const *items, size_t n)
{
	struct kafka_sink *s = state;
	size_t i;

	if(s->fatal) return 0; /* wait for the rewind */
	if(!s->k && !create_producer(s)) return 0;
	if(!reserve_reports(s, n)) return 0;
	for(i = 0; i < n; i++){
		int rc = recs[i].kind == KG_KIND_BRIDGE ? send_bridge(s, items[i], &recs[i])
				: send_measurement(s, items[i], &recs[i]);
		if(rc != 0 || s->fatal) return rc != 0 ? i : i + 1;
	}
	return n;
}

static size_t kafka_poll(void *state, int timeout_ms, kg_sink_report_fn report, void *ud)
{
	struct kafka_sink *s = state;
	size_t i, n;

	if(s->k && (s->in_flight > 0 || s->ndone == 0)){
		kg_kafka__poll(s->k, s->ndone ? 0 : timeout_ms);
	}else if(!s->k && s->ndone == 0 && timeout_ms > 0){
		struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL); /* no producer yet: do not spin */
	}
	/* report() may not call back into the sink, so done[] is stable while we walk it */
	n = s->ndone;
	s->ndone = 0;
	for(i = 0; i < n; i++) report(s->done[i].item, s->done[i].how, s->done[i].reason, ud);
	return n;
}

static void kafka_rewind(void *state)
{
	struct kafka_sink *s = state;
	int waited = 0;

	s->dropping = true;
	if(s->k){
		kg_kafka__purge(s->k);
		while(s->in_flight > 0 && waited < REWIND_WAIT_MS){
			kg_kafka__poll(s->k, 100);
			waited += 100;
		}
		if(s->in_flight > 0 || s->fatal || kg_kafka__fatal(s->k)){
			if(s->fatal || kg_kafka__fatal(s->k)){
				kg_log(KG_LOG_WARNING, "Kafka producer hit a fatal error: creating a new one and "
						"replaying from the spool");
			}
			kg_kafka__free(s->k); /* drops the rest without reports */
			s->k = NULL;
			s->recreated++;
			s->in_flight = 0;
		}
	}
	s->ndone = 0;
	s->fatal = false;
	s->dropping = false;
}

static void kafka_health(void *state, struct kg_sink_health *out)
{
	struct kafka_sink *s = state;

	memset(out, 0, sizeof(*out));
	out->connected = s->connected;
	out->in_flight = s->in_flight + s->ndone;
	out->written = s->delivered;
	out->errors = s->errors;
	out->reconnects = s->recreated;
	memcpy(out->last_error, s->last_error, sizeof(out->last_error));
}

static void kafka_free(void *state)
{
	struct kafka_sink *s = state;

	if(!s) return;
	if(s->k){
		s->dropping = true;
		kg_kafka__free(s->k);
	}
	free(s->done);
	free(s->json);
	free(s);
}

static const struct kg_sink_ops kafka_ops = {
	"kafka", kafka_submit, kafka_poll, kafka_rewind, kafka_health, kafka_free,
};

int kg_sink_kafka__new(struct kg_sink *out, const struct kg_config *cfg, char *err, size_t errlen)
{
	struct kafka_sink *s = calloc(1, sizeof(*s));

	if(!s || !ensure_json(s, 4096)){
		if(s) free(s);
		snprintf(err, errlen, "kitgate: out of memory");
		return -1;
	}
	s->cfg = cfg;
	s->k = kg_kafka__new(cfg, kafka_dr, s, err, errlen);
	if(!s->k){
		free(s->json);
		free(s);
		return -1;
	}
	out->ops = &kafka_ops;
	out->state = s;
	return 0;
}
