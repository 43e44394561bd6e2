/* worker.c -- one stream's worker thread: hand-off -> sink -> settle -> checkpoint.
 * Contract and invariants in worker.h.
 *
 * Thread rules: everything here runs on the worker thread except kg_worker__new/start/stop/free
 * (main thread) and kg_worker__stats (any thread, under stats_lock). The worker never calls
 * mosquitto_*; it logs with kg_log (the plugin routes those lines through the outbox). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/handoff.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/record.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"

#define INFLIGHT_MAX_DEFAULT 20000 /* records taken but not yet settled */
#define COMMIT_INTERVAL_MS 200     /* checkpoint writes at most this often while busy */
#define SYNC_INTERVAL_MS 20        /* fdatasync of fresh spool data at most this often */
#define HEALTH_INTERVAL_MS 200     /* sink health snapshot refresh */
#define REWIND_BACKOFF_MS 1000     /* pause before replaying after a sink failure */

/* kg_item.state */
enum { ST_TAKEN = 0, ST_SETTLED = 1 };

struct kg_worker {
	struct kg_worker_config cfg;
	struct kg_spool *spool;       /* may be NULL */
	struct kg_handoff *h;
	struct kg_sink sink;          /* owned; its ops are called by the worker thread only */
	pthread_t thread;
	bool started;                 /* main thread */

	pthread_mutex_t stats_lock;
	struct kg_worker_stats pub;   /* [stats_lock] what kg_worker__stats copies */

	/* worker thread only */
	struct kg_worker_stats st;
	struct kg_item *fifo_head, *fifo_tail; /* taken, oldest first, not yet released */
	size_t fifo_len;
	struct kg_item **batch;       /* take buffer */
	struct kg_record *recs;       /* decoded, waiting to be submitted: [pend_off, npend) */
	void **items;
	size_t npend, pend_off;
	bool failed;                  /* a FAILED report: rewind before anything else */
	uint64_t released_pos;        /* spool end of the newest released record */
	uint64_t committed_pos;
	int64_t last_commit_ms, last_sync_ms, last_health_ms;
	int64_t deadline_ms;          /* 0 until a stop is seen */
	struct kg_ratelimit foreign_log, corrupt_log, lost_log;
};

/* True once a stop was requested and its drain deadline has passed. */
static bool past_deadline(struct kg_worker *w)
{
	if(!w->deadline_ms){
		if(!kg_handoff__stopping(w->h)) return false;
		w->deadline_ms = kg_clock__mono_ms() + w->cfg.shutdown_timeout_ms;
	}
	return kg_clock__mono_ms() >= w->deadline_ms;
}

/* Sleep ms in short slices, returning early when the drain deadline passes. */
static void backoff_sleep(struct kg_worker *w, int ms)
{
	while(ms > 0 && !past_deadline(w)){
		int slice = ms < 50 ? ms : 50;
		struct timespec ts = { 0, (long)slice * 1000000L };
		nanosleep(&ts, NULL);
		ms -= slice;
	}
}

static void publish_stats(struct kg_worker *w)
{
	pthread_mutex_lock(&w->stats_lock);
	w->pub = w->st;
	pthread_mutex_unlock(&w->stats_lock);
}

static void refresh_health(struct kg_worker *w, bool force)
{
	int64_t now = kg_clock__mono_ms();

	if(!force && now - w->last_health_ms < HEALTH_INTERVAL_MS) return;
	w->sink.ops->health(w->sink.state, &w->st.sink);
	w->last_health_ms = now;
}

static void count_reason(struct kg_worker *w, const char *reason)
{
	size_t i;

	if(!reason) reason = "unknown";
	for(i = 0; i < w->st.nreasons; i++){
		if(w->st.reasons[i].reason == reason || !strcmp(w->st.reasons[i].reason, reason)){
			w->st.reasons[i].n++;
			return;
		}
	}
	if(w->st.nreasons < KG_WORKER_REASONS - 1){
		w->st.reasons[w->st.nreasons].reason = reason;
		w->st.reasons[w->st.nreasons].n = 1;
		w->st.nreasons++;
		return;
	}
	/* the last slot collects the rest */
	w->st.reasons[KG_WORKER_REASONS - 1].reason = "other";
	w->st.reasons[KG_WORKER_REASONS - 1].n++;
	w->st.nreasons = KG_WORKER_REASONS;
}

static void fifo_push(struct kg_worker *w, struct kg_item *it)
{
	it->next = NULL;
	it->state = ST_TAKEN;
	if(w->fifo_tail) w->fifo_tail->next = it;
	else w->fifo_head = it;
	w->fifo_tail = it;
	w->fifo_len++;
}

static void settle(struct kg_worker *w, struct kg_item *it)
{
	assert(it->state == ST_TAKEN); /* settled at most once */
	it->state = ST_SETTLED;
	w->st.settled++;
}

/* Free the settled prefix of the FIFO and move the checkpoint over it (throttled, or forced).
 * The checkpoint never passes an unsettled record: that is the stream's cursor invariant. */
static void release_settled(struct kg_worker *w, bool force_commit)
{
	while(w->fifo_head && w->fifo_head->state == ST_SETTLED){
		struct kg_item *it = w->fifo_head;
		w->fifo_head = it->next;
		if(!w->fifo_head) w->fifo_tail = NULL;
		w->fifo_len--;
		if(it->end){
			assert(it->end > w->released_pos); /* spool order */
			w->released_pos = it->end;
		}
		free(it);
	}
	if(!w->spool || w->released_pos <= w->committed_pos) return;
	if(!force_commit && kg_clock__mono_ms() - w->last_commit_ms < COMMIT_INTERVAL_MS) return;
	if(kg_spool__commit(w->spool, w->released_pos) == 0){
		w->committed_pos = w->released_pos;
		w->st.checkpoint = w->committed_pos;
	}
	w->last_commit_ms = kg_clock__mono_ms();
}

/* The sink's report callback (called from poll, on this thread). */
static void on_report(void *item, enum kg_settle how, const char *reason, void *ud)
{
	struct kg_worker *w = ud;
	struct kg_item *it = item;
	uint64_t suppressed;

	assert(it->state == ST_TAKEN);
	switch(how){
		case KG_SETTLE_OK:
			w->st.ok++;
			settle(w, it);
			break;
		case KG_SETTLE_REJECTED:
			w->st.rejected++;
			count_reason(w, reason);
			settle(w, it);
			break;
		case KG_SETTLE_FAILED:
			if(w->spool && it->end){
				w->failed = true; /* stays unsettled: replayed after the rewind */
				break;
			}
			w->st.lost++;
			if(kg_ratelimit__allow(&w->lost_log, &suppressed)){
				kg_log(KG_LOG_ERROR, "%s: sink %s failed a record (%s) and there is no spool to "
						"replay it from: lost (+%llu more suppressed)", w->cfg.name, w->sink.ops->name,
						reason ? reason : "-", (unsigned long long)suppressed);
			}
			settle(w, it);
			break;
	}
}

/* Decode a taken record into the pending submission, or settle it at once when it cannot go to
 * this stream's sink. */
static void admit(struct kg_worker *w, struct kg_item *it)
{
	struct kg_record *rec = &w->recs[w->npend];
	uint64_t suppressed;

	fifo_push(w, it);
	w->st.taken++;
	if(kg_record__decode(it->body, it->len, rec) != 0){
		w->st.corrupt++;
		if(kg_ratelimit__allow(&w->corrupt_log, &suppressed)){
			kg_log(KG_LOG_ERROR, "%s: spooled record of %u bytes does not decode; skipped "
					"(+%llu more suppressed)", w->cfg.name, it->len, (unsigned long long)suppressed);
		}
		settle(w, it);
		return;
	}
	if(!(w->cfg.kinds & KG_WORKER_KIND(rec->kind))){
		w->st.foreign++;
		if(kg_ratelimit__allow(&w->foreign_log, &suppressed)){
			kg_log(KG_LOG_WARNING, "%s: spooled record of kind %u does not belong to this stream "
					"(left from the single-stream spool layout); settled without writing "
					"(+%llu more suppressed)", w->cfg.name, rec->kind, (unsigned long long)suppressed);
		}
		settle(w, it);
		return;
	}
	w->items[w->npend++] = it;
}

static void submit_pending(struct kg_worker *w)
{
	size_t k;

	if(w->pend_off >= w->npend) return;
	k = w->sink.ops->submit(w->sink.state, w->recs + w->pend_off, w->items + w->pend_off,
			w->npend - w->pend_off);
	assert(k <= w->npend - w->pend_off);
	w->pend_off += k;
	if(w->pend_off == w->npend) w->pend_off = w->npend = 0;
}

/* After a FAILED report: the sink drops what it holds, the FIFO is forgotten, and the hand-off
 * reads the spool again from the last released record. */
static void rewind_stream(struct kg_worker *w)
{
	struct kg_item *it, *next;

	w->sink.ops->rewind(w->sink.state); /* from here on, nothing in flight is reported */
	release_settled(w, true);
	for(it = w->fifo_head; it; it = next){
		next = it->next;
		free(it);
	}
	w->fifo_head = w->fifo_tail = NULL;
	w->fifo_len = 0;
	w->npend = w->pend_off = 0;
	kg_handoff__rewind(w->h, w->released_pos);
	w->failed = false;
	w->st.rewinds++;
	kg_log(KG_LOG_WARNING, "%s: sink %s failed; replaying from the spool at position %llu",
			w->cfg.name, w->sink.ops->name, (unsigned long long)w->released_pos);
	publish_stats(w);
	backoff_sleep(w, REWIND_BACKOFF_MS);
}

/* Take up to batch_size records: wait up to idle_ms for the first, then linger up to batch_ms
 * for the batch to fill (one wait, woken only when the rest of the batch is queued). */
static size_t take_batch(struct kg_worker *w, int idle_ms)
{
	size_t max = (size_t)w->cfg.batch_size, n;

	n = kg_handoff__take(w->h, w->batch, max, 1, idle_ms);
	if(n == 0 || n >= max || w->cfg.batch_ms <= 0) return n;
	return n + kg_handoff__take(w->h, w->batch + n, max - n, max - n, w->cfg.batch_ms);
}

/* fdatasync what was appended since the last sync, at most every SYNC_INTERVAL_MS. Called on every
 * loop iteration, not only when a batch was taken: records appended while the sink is down (the
 * worker takes nothing while its in-flight window is full) or the tail of a burst must reach the
 * disk too. Cheap when nothing is new (one atomic load). kg_spool__end is an atomic load, safe
 * from this (reader) thread. */
static void maybe_sync(struct kg_worker *w)
{
	uint64_t end;

	if(!w->spool) return;
	end = kg_spool__end(w->spool);
	if(end == w->st.synced || kg_clock__mono_ms() - w->last_sync_ms < SYNC_INTERVAL_MS) return;
	/* a failure is logged by the spool itself, at most once a second; retried next time */
	if(kg_spool__sync(w->spool) == 0) w->st.synced = end;
	w->last_sync_ms = kg_clock__mono_ms();
}

static void *worker_main(void *arg)
{
	struct kg_worker *w = arg;
	struct kg_item *it, *next;
	size_t i, n, left = 0;

	pthread_setname_np(pthread_self(), "kg-worker"); /* named for per-thread CPU (ci/bench-fleet) */

	kg_log(KG_LOG_INFO, "%s: worker started (sink %s, spool %s)", w->cfg.name, w->sink.ops->name,
			w->spool ? "on" : "off");
	for(;;){
		if(past_deadline(w)) break;
		if(w->deadline_ms && w->fifo_len == 0 && kg_handoff__empty(w->h)) break; /* drained */

		n = 0;
		if(w->npend == 0 && w->fifo_len < w->cfg.inflight_max){
			n = take_batch(w, w->fifo_len ? 0 : 100);
		}
		maybe_sync(w); /* fresh spool data (throttled), before the sink sees a taken batch */
		for(i = 0; i < n; i++) admit(w, w->batch[i]);
		submit_pending(w);
		w->sink.ops->poll(w->sink.state, n == 0 && w->fifo_len ? 10 : 0, on_report, w);
		if(w->failed) rewind_stream(w);
		release_settled(w, n == 0 && w->fifo_len == 0);
		/* every iteration (at least every ~100 ms): prepares the next segment off the broker
		 * thread, retries a failed preparation/checkpoint, watches the directory (spool.h) */
		if(w->spool) kg_spool__maintain(w->spool);
		refresh_health(w, false);
		publish_stats(w);
	}
	/* Collect what already landed, then drop the rest: it stays after the checkpoint. */
	w->sink.ops->poll(w->sink.state, 0, on_report, w);
	release_settled(w, true);
	w->sink.ops->rewind(w->sink.state);
	for(it = w->fifo_head; it; it = next){
		next = it->next;
		left++;
		free(it);
	}
	w->fifo_head = w->fifo_tail = NULL;
	w->fifo_len = 0;
	w->npend = w->pend_off = 0;
	if(w->spool) kg_spool__sync(w->spool);
	if(left){
		kg_log(KG_LOG_WARNING, "%s: worker stopped with %zu records unsettled: they stay in the "
				"spool and are replayed at the next start", w->cfg.name, left);
	}
	kg_log(KG_LOG_INFO, "%s: worker stopped: %llu records settled since start", w->cfg.name,
			(unsigned long long)w->st.settled);
	refresh_health(w, true);
	w->st.running = false;
	publish_stats(w);
	return NULL;
}

struct kg_worker *kg_worker__new(const struct kg_worker_config *cfg, struct kg_spool *spool,
		struct kg_handoff *h, struct kg_sink *sink)
{
	struct kg_worker *w;
	size_t max;

	assert(cfg && h && sink && sink->ops);
	w = calloc(1, sizeof(*w));
	if(!w || cfg->batch_size < 1 || pthread_mutex_init(&w->stats_lock, NULL)){
		free(w);
		kg_sink__free(sink);
		return NULL;
	}
	w->cfg = *cfg;
	if(!w->cfg.name) w->cfg.name = "stream";
	if(!w->cfg.inflight_max) w->cfg.inflight_max = INFLIGHT_MAX_DEFAULT;
	w->spool = spool;
	w->h = h;
	w->sink = *sink;
	sink->ops = NULL;
	sink->state = NULL;
	max = (size_t)cfg->batch_size;
	w->batch = calloc(max, sizeof(*w->batch));
	w->recs = calloc(max, sizeof(*w->recs));
	w->items = calloc(max, sizeof(*w->items));
	if(!w->batch || !w->recs || !w->items){
		kg_worker__free(w);
		return NULL;
	}
	if(spool) w->committed_pos = w->released_pos = kg_spool__checkpoint(spool);
	w->st.checkpoint = w->committed_pos;
	w->pub = w->st;
	return w;
}

int kg_worker__start(struct kg_worker *w)
{
	sigset_t all, old;
	int rc;

	if(w->started) return 0;
	w->st.running = true;
	w->pub.running = true;
	/* The worker (and librdkafka's and the sink's threads, created from it or inheriting the
	 * mask) must never take the broker's SIGTERM/SIGHUP: signal dispositions are process-wide. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(rc){
		w->st.running = w->pub.running = false;
		return -1;
	}
	w->started = true;
	return 0;
}

void kg_worker__stop(struct kg_worker *w)
{
	if(!w || !w->started) return;
	kg_handoff__stop(w->h); /* the stop signal; also wakes a waiting take() */
	pthread_join(w->thread, NULL);
	w->started = false;
}

void kg_worker__stats(struct kg_worker *w, struct kg_worker_stats *out)
{
	pthread_mutex_lock(&w->stats_lock);
	*out = w->pub;
	pthread_mutex_unlock(&w->stats_lock);
}

void kg_worker__free(struct kg_worker *w)
{
	struct kg_item *it, *next;

	if(!w) return;
	kg_worker__stop(w);
	kg_sink__free(&w->sink);
	for(it = w->fifo_head; it; it = next){
		next = it->next;
		free(it);
	}
	free(w->batch);
	free(w->recs);
	free(w->items);
	pthread_mutex_destroy(&w->stats_lock);
	free(w);
}
