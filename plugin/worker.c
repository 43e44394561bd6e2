/* worker.c -- the worker thread: takes accepted records from the hand-off, writes them to the
 * sink (PostgreSQL or Kafka; bridge routes to Kafka), and advances the spool checkpoint once the
 * sink has them.
 *
 * Thread rules: everything here runs on the worker thread except kg_worker__start/stop (main
 * thread). The worker never calls mosquitto_*; it logs with kg_log (the plugin's log sink routes
 * those lines through the outbox) and publishes numbers through the atomic counters in
 * struct kg_counters.
 *
 * Ordering and exactly-once: records are taken in spool order and kept, in that order, in a FIFO
 * until the sink has settled them; the checkpoint only moves over a settled prefix. A sink failure
 * leaves the unsettled records in the spool (and, for Kafka, rewinds to the last released
 * position), so nothing accepted is dropped; the sinks are idempotent on the measurement id. */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/bridge.h"
#include "kitgate/kafka.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"
#include "kitgate/json.h"
#include "kitgate/spool.h"
#include "kitgate_internal.h"

#define KAFKA_INFLIGHT_MAX 20000   /* records produced but not yet reported */
#define COMMIT_INTERVAL_MS 200     /* checkpoint writes at most this often while busy */
#define SYNC_INTERVAL_MS 20        /* fdatasync of fresh spool data at most this often */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct worker {
	struct kg_plugin *p;
	struct kg_counters *c;
	struct kg_pg *pg;
	struct kg_kafka *kafka;
	struct kg_item *fifo_head, *fifo_tail; /* taken, oldest first, not yet released */
	size_t fifo_len;
	size_t kafka_pending;
	bool kafka_failed;       /* a delivery failed: rewind to the spool */
	bool kafka_fatal;        /* the producer is unusable: rewind and create a new one */
	uint64_t released_pos;   /* spool end of the newest released record */
	uint64_t committed_pos;
	int64_t last_commit_ms, last_sync_ms;
	int64_t deadline_ms;     /* 0 until a stop is requested */
	struct kg_item **batch;
	struct kg_record *recs;  /* PostgreSQL batch */
	struct kg_item **rec_items;
	uint8_t *status;
	size_t nrecs;
	char *json;              /* Kafka value buffer */
	size_t json_cap;
	struct kg_ratelimit refused_log;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stop_requested(struct worker *w)
{
	bool stopping;

	pthread_mutex_lock(&w->p->handoff.lock);
	stopping = w->p->handoff.stopping;
	pthread_mutex_unlock(&w->p->handoff.lock);
	return stopping;
}

/* True once a stop was requested and its drain deadline has passed. */
static bool past_deadline(struct worker *w)
{
	if(!w->deadline_ms){
		if(!stop_requested(w)) return false;
		w->deadline_ms = now_ms() + w->p->cfg.shutdown_timeout_ms;
	}
	return now_ms() >= w->deadline_ms;
}

/* Sleep ms in short slices, returning early when the drain deadline passes. */
static void backoff_sleep(struct worker *w, int ms)
{
	while(ms > 0 && !past_deadline(w)){
		int slice = ms < 100 ? ms : 100;
		struct timespec ts = { 0, (long)slice * 1000000L };
		nanosleep(&ts, NULL);
		ms -= slice;
	}
}

static void fifo_push(struct worker *w, struct kg_item *it)
{
	it->next = NULL;
	if(w->fifo_tail) w->fifo_tail->next = it;
	else w->fifo_head = it;
	w->fifo_tail = it;
	w->fifo_len++;
}

static void settle(struct worker *w, struct kg_item *it)
{
	assert(!it->settled);
	it->settled = 1;
	atomic_fetch_add_explicit(&w->c->settled, 1, memory_order_relaxed);
}

/* Free the settled prefix of the FIFO and move the checkpoint over it (throttled, or forced). */
static void release_settled(struct worker *w, bool force_commit)
{
	struct kg_spool *sp = w->p->spool;

	while(w->fifo_head && w->fifo_head->settled){
		struct kg_item *it = w->fifo_head;
		w->fifo_head = it->next;
		if(!w->fifo_head) w->fifo_tail = NULL;
		w->fifo_len--;
		if(it->end) w->released_pos = it->end;
		free(it);
	}
	if(!sp || w->released_pos <= w->committed_pos) return;
	if(!force_commit && now_ms() - w->last_commit_ms < COMMIT_INTERVAL_MS) return;
	if(kg_spool__commit(sp, w->released_pos) == 0){
		w->committed_pos = w->released_pos;
	}
	w->last_commit_ms = now_ms();
}

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

static void pg_publish_stats(struct worker *w)
{
	struct kg_pg_stats st;
	int i;

	kg_pg__stats(w->pg, &st);
	atomic_store_explicit(&w->c->inserted, st.rows_inserted, memory_order_relaxed);
	atomic_store_explicit(&w->c->duplicates, st.rows_duplicate, memory_order_relaxed);
	for(i = 0; i < KG_PG_ROW_COUNT; i++){
		atomic_store_explicit(&w->c->sink_rejected[i], st.rows_rejected[i], memory_order_relaxed);
	}
	atomic_store_explicit(&w->c->sink_errors, st.errors, memory_order_relaxed);
	atomic_store_explicit(&w->c->reconnects, st.reconnects, memory_order_relaxed);
	atomic_store_explicit(&w->c->sink_connected, kg_pg__connected(w->pg), memory_order_relaxed);
}

/* Write the pending PostgreSQL batch, retrying with backoff until it is settled or the drain
 * deadline passes (then the rows stay unsettled: they are in the spool for the next start). */
static void pg_flush(struct worker *w)
{
	int backoff = BACKOFF_MIN_MS;
	bool logged = false;
	size_t i;

	if(w->nrecs == 0) return;
	for(;;){
		int rc = kg_pg__write(w->pg, w->recs, w->nrecs, w->status);
		pg_publish_stats(w);
		if(rc == 0) break;
		if(!logged){
			kg_log(KG_LOG_WARNING, "PostgreSQL write of %zu rows failed; retrying with backoff "
					"(nothing is dropped: the rows wait in the queue and the spool)", w->nrecs);
			logged = true;
		}
		if(past_deadline(w)){
			w->nrecs = 0;
			return;
		}
		backoff_sleep(w, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	if(logged) kg_log(KG_LOG_INFO, "PostgreSQL is back: batch of %zu rows written", w->nrecs);
	for(i = 0; i < w->nrecs; i++) settle(w, w->rec_items[i]);
	w->nrecs = 0;
}

/* ---- Kafka --------------------------------------------------------------------------------- */

static void kafka_dr(void *opaque, int err, const char *errstr, void *ud)
{
	struct worker *w = ud;
	struct kg_item *it = opaque;

	assert(w->kafka_pending > 0);
	w->kafka_pending--;
	atomic_store_explicit(&w->c->sink_connected, err == 0, memory_order_relaxed);
	if(err == 0){
		atomic_fetch_add_explicit(&w->c->delivered, 1, memory_order_relaxed);
		settle(w, it);
		return;
	}
	if(w->kafka_failed) return; /* purged during a rewind: replayed from the spool */
	atomic_fetch_add_explicit(&w->c->delivery_failures, 1, memory_order_relaxed);
	if(w->p->spool && it->end){
		kg_log(KG_LOG_WARNING, "Kafka delivery failed (%s); replaying from the spool", errstr);
		w->kafka_failed = true;
	}else{
		kg_log(KG_LOG_ERROR, "Kafka delivery failed (%s) and the record is not in a spool: lost", errstr);
		settle(w, it);
	}
}

/* Produce one message for it, waiting (polling) while librdkafka's queue is full. A message
 * librdkafka refuses outright (it can never be delivered, e.g. too large) is settled as failed;
 * when the producer itself is broken the record stays unsettled and the main loop replays it
 * from the spool with a new producer. */
static void kafka_send(struct worker *w, struct kg_item *it, const char *topic, const void *key,
		size_t keylen, const void *value, size_t vlen, int64_t ts, const char *hdr)
{
	if(w->kafka_fatal) return; /* left for the replay */
	for(;;){
		int rc = kg_kafka__produce(w->kafka, topic, key, keylen, value, vlen, ts, hdr, it);
		if(rc == 0){
			w->kafka_pending++;
			return;
		}
		if(rc == -2 && w->p->spool && it->end){
			w->kafka_fatal = true;
			return;
		}
		if(rc < 0 || past_deadline(w)){
			atomic_fetch_add_explicit(&w->c->delivery_failures, 1, memory_order_relaxed);
			settle(w, it);
			return;
		}
		kg_kafka__poll(w->kafka, 100);
	}
}

static bool ensure_json(struct worker *w, size_t need)
{
	char *n;

	if(need <= w->json_cap) return true;
	n = realloc(w->json, need);
	if(!n) return false;
	w->json = n;
	w->json_cap = need;
	return true;
}

static void kafka_measurement(struct worker *w, struct kg_item *it, const struct kg_record *rec)
{
	const struct kg_config *cfg = &w->p->cfg;
	char hdr[KG_SERIAL_MAX + 40];
	size_t n;

	n = kg_json__record(rec, w->json, w->json_cap);
	if(n >= w->json_cap){
		if(!ensure_json(w, n + 1)){
			settle(w, it);
			return;
		}
		n = kg_json__record(rec, w->json, w->json_cap);
	}
	snprintf(hdr, sizeof(hdr), "kit/%s/measurement/%s", rec->serial,
			rec->kind == KG_KIND_RAW ? "raw" : "aggregate");
	kafka_send(w, it, rec->kind == KG_KIND_RAW ? cfg->kafka_topic_raw : cfg->kafka_topic_aggregate,
			rec->serial, strlen(rec->serial), w->json, n, 0, hdr);
}

static void kafka_bridge(struct worker *w, struct kg_item *it, const struct kg_record *rec)
{
	char ktopic[250];
	char *mqtt_topic;
	const uint8_t *value;
	size_t vlen;
	int owned = 0;
	int64_t ts = 0;

	mqtt_topic = strndup(rec->topic, rec->topic_len);
	if(!mqtt_topic){
		settle(w, it);
		return;
	}
	if(kg_bridge__kafka_topic(mqtt_topic, w->p->cfg.kafka_topic_separator, ktopic) < 0){
		uint64_t suppressed;
		atomic_fetch_add_explicit(&w->c->bridge_refused_worker, 1, memory_order_relaxed);
		if(kg_ratelimit__allow(&w->refused_log, &suppressed)){
			kg_log(KG_LOG_WARNING, "bridge: topic \"%s\" has no legal Kafka name (over 249 characters); "
					"not forwarded (+%llu more suppressed)", mqtt_topic, (unsigned long long)suppressed);
		}
		settle(w, it);
		free(mqtt_topic);
		return;
	}
	if(kg_bridge__transform(&w->p->cfg, mqtt_topic, rec->payload, rec->payload_len,
				&value, &vlen, &owned, &ts) != 0){
		value = rec->payload;
		vlen = rec->payload_len;
		owned = 0;
	}
	kafka_send(w, it, ktopic, mqtt_topic, strlen(mqtt_topic), value, vlen, ts, mqtt_topic);
	if(owned) free((void *)value);
	free(mqtt_topic);
}

/* After a failed delivery: drop what librdkafka holds, forget the FIFO, and read the spool again
 * from the last released record. Records already settled behind an unsettled one are sent again;
 * consumers de-duplicate on the measurement id. */
static void kafka_rewind(struct worker *w)
{
	struct kg_item *it, *next;

	kg_kafka__purge(w->kafka);
	while(w->kafka_pending > 0 && !past_deadline(w)) kg_kafka__poll(w->kafka, 100);
	if(w->kafka_pending > 0) return; /* shutting down: the spool keeps them */
	release_settled(w, true);
	for(it = w->fifo_head; it; it = next){
		next = it->next;
		free(it);
	}
	w->fifo_head = w->fifo_tail = NULL;
	w->fifo_len = 0;
	w->nrecs = 0;
	kg_handoff__rewind(&w->p->handoff, w->released_pos);
	if(w->kafka_fatal || kg_kafka__fatal(w->kafka)){
		kg_log(KG_LOG_WARNING, "Kafka producer hit a fatal error: creating a new one and replaying "
				"from the spool");
		kg_kafka__free(w->kafka);
		w->kafka = NULL; /* the main loop creates the next one before taking records */
		w->kafka_fatal = false;
	}
	w->kafka_failed = false;
	backoff_sleep(w, 1000);
}

/* ---- main loop ----------------------------------------------------------------------------- */

static void route(struct worker *w, struct kg_item *it)
{
	const struct kg_config *cfg = &w->p->cfg;
	struct kg_record *rec = &w->recs[w->nrecs];

	fifo_push(w, it);
	if(kg_record__decode(it->body, it->len, rec) != 0){
		atomic_fetch_add_explicit(&w->c->corrupt_records, 1, memory_order_relaxed);
		kg_log(KG_LOG_ERROR, "spooled record of %u bytes does not decode; skipped", it->len);
		settle(w, it);
		return;
	}
	if(rec->kind == KG_KIND_BRIDGE){
		if(w->kafka) kafka_bridge(w, it, rec);
		else settle(w, it);
		return;
	}
	switch(cfg->sink){
		case KG_SINK_POSTGRES:
			w->rec_items[w->nrecs++] = it; /* rec stays in recs[] for the batch */
			break;
		case KG_SINK_KAFKA:
			kafka_measurement(w, it, rec);
			break;
		case KG_SINK_NONE:
			settle(w, it);
			break;
	}
}

/* Take up to batch_size records: wait up to idle_ms for the first, then linger up to batch_ms
 * for the batch to fill (one wait, woken only when the rest of the batch is queued). While the
 * sink is busy, records accumulate on their own, so batches grow with the load. */
static size_t take_batch(struct worker *w, int idle_ms)
{
	const struct kg_config *cfg = &w->p->cfg;
	size_t max = (size_t)cfg->batch_size, n;

	n = kg_handoff__take(&w->p->handoff, w->batch, max, 1, idle_ms);
	if(n == 0 || n >= max || cfg->batch_ms <= 0) return n;
	return n + kg_handoff__take(&w->p->handoff, w->batch + n, max - n, max - n, cfg->batch_ms);
}

static void maybe_sync(struct worker *w)
{
	if(!w->p->spool || now_ms() - w->last_sync_ms < SYNC_INTERVAL_MS) return;
	kg_spool__sync(w->p->spool); /* a failure is logged by the spool, at most once a second */
	w->last_sync_ms = now_ms();
}

static bool kafka_needed(const struct kg_config *cfg)
{
	return cfg->sink == KG_SINK_KAFKA || cfg->nbridge_topics > 0;
}

/* Create the Kafka producer; false (logged) on a bad property or out of memory. */
static bool kafka_create(struct worker *w)
{
	char err[512];

	w->kafka = kg_kafka__new(&w->p->cfg, kafka_dr, w, err, sizeof(err));
	if(!w->kafka) kg_log(KG_LOG_ERROR, "Kafka producer: %s", err);
	return w->kafka != NULL;
}

static int worker_init(struct worker *w, struct kg_plugin *p)
{
	const struct kg_config *cfg = &p->cfg;

	memset(w, 0, sizeof(*w));
	w->p = p;
	w->c = &p->counters;
	w->batch = calloc((size_t)cfg->batch_size, sizeof(*w->batch));
	w->recs = calloc((size_t)cfg->batch_size, sizeof(*w->recs));
	w->rec_items = calloc((size_t)cfg->batch_size, sizeof(*w->rec_items));
	w->status = calloc((size_t)cfg->batch_size, 1);
	if(!w->batch || !w->recs || !w->rec_items || !w->status || !ensure_json(w, 4096)) return -1;
	if(p->spool) w->committed_pos = w->released_pos = kg_spool__checkpoint(p->spool);
	if(cfg->sink == KG_SINK_POSTGRES){
		w->pg = kg_pg__new(cfg->database_url);
		if(!w->pg) return -1;
	}
	if(kafka_needed(cfg) && !kafka_create(w)) return -1;
	return 0;
}

static void worker_free(struct worker *w)
{
	struct kg_item *it, *next;
	size_t left = 0;

	/* librdkafka first: it holds items as opaques until it is destroyed. */
	if(w->kafka) kg_kafka__free(w->kafka);
	if(w->pg) kg_pg__free(w->pg);
	for(it = w->fifo_head; it; it = next){
		next = it->next;
		left++;
		free(it);
	}
	if(left) kg_log(KG_LOG_WARNING, "worker stopped with %zu records unsettled: they stay in the "
			"spool and are replayed at the next start", left);
	if(w->p->spool) kg_spool__sync(w->p->spool);
	free(w->batch);
	free(w->recs);
	free(w->rec_items);
	free(w->status);
	free(w->json);
}

static void *worker_main(void *arg)
{
	struct kg_plugin *p = arg;
	struct worker w;
	size_t i, n;

	if(worker_init(&w, p) != 0){
		kg_log(KG_LOG_ERROR, "worker could not start (out of memory or bad Kafka settings); accepted "
				"records stay in the spool");
		worker_free(&w);
		return NULL;
	}
	kg_log(KG_LOG_INFO, "worker started (sink %s%s)",
			p->cfg.sink == KG_SINK_POSTGRES ? "postgres" : p->cfg.sink == KG_SINK_KAFKA ? "kafka" : "none",
			p->cfg.nbridge_topics ? ", bridge routes to Kafka" : "");
	for(;;){
		bool busy = w.fifo_len > 0;

		if(p->spool) kg_spool__maintain(p->spool); /* prepares the next segment, retries failures */
		if(past_deadline(&w)) break;
		if(w.deadline_ms && !busy && kg_handoff__empty(&p->handoff)) break; /* drained */
		if(!w.kafka && kafka_needed(&p->cfg) && !kafka_create(&w)){
			backoff_sleep(&w, 1000); /* nothing is taken without a producer: it waits in the spool */
			continue;
		}

		n = 0;
		if(w.fifo_len < KAFKA_INFLIGHT_MAX){
			n = take_batch(&w, busy ? 5 : 100);
		}
		if(n) maybe_sync(&w);
		for(i = 0; i < n; i++) route(&w, w.batch[i]);
		pg_flush(&w);
		if(w.kafka){
			kg_kafka__poll(w.kafka, n == 0 && w.kafka_pending ? 10 : 0);
			if(w.kafka_failed || w.kafka_fatal) kafka_rewind(&w);
		}
		release_settled(&w, n == 0 && w.fifo_len == 0);
	}
	if(w.kafka){
		int64_t left = w.deadline_ms ? w.deadline_ms - now_ms() : 0;
		kg_kafka__flush(w.kafka, left > 0 ? (int)left : 0);
		kg_kafka__purge(w.kafka);
		w.kafka_failed = true; /* purged reports settle nothing */
		kg_kafka__poll(w.kafka, 0);
	}
	release_settled(&w, true);
	kg_log(KG_LOG_INFO, "worker stopped: %llu records settled since start",
			(unsigned long long)atomic_load(&p->counters.settled));
	worker_free(&w);
	return NULL;
}

int kg_worker__start(struct kg_plugin *p)
{
	sigset_t all, old;
	int rc;

	/* The worker (and librdkafka's threads, created from it) must never take the broker's
	 * SIGTERM/SIGHUP: signal dispositions are process-wide. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->worker, NULL, worker_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(rc) return -1;
	p->worker_started = true;
	return 0;
}

void kg_worker__stop(struct kg_plugin *p)
{
	if(!p->worker_started) return;
	kg_handoff__stop(&p->handoff);
	pthread_join(p->worker, NULL);
	p->worker_started = false;
}
