/* sink_pg.c -- the PostgreSQL sink: cfg->pg_connections independent connections, each on its own
 * thread with its own kg_pg (pgwriter.h), taking whole batches from a shared queue and committing
 * them on its own; a failed batch is retried by its connection with backoff until it commits or
 * the sink is rewound or freed. Batches of different connections commit in any order (ids are
 * unique, ON CONFLICT (id) DO NOTHING). Contract in sink.h.
 *
 * Threads: the ops run on the stream's worker; the connection threads touch only what is marked
 * [lock] below and their own struct conn. Records are copied into the batch at submit, and item
 * pointers are carried, never dereferenced, so a rewind can free items while a connection is still
 * writing: its batch is then discarded, not reported (the generation no longer matches). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/log.h"
#include "kitgate/pgwriter.h"
#include "kitgate/sink.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct batch {
	struct batch *next;
	uint64_t gen;             /* sink generation at submit */
	size_t n;
	void **items;
	uint8_t *status;
	const struct kg_record **recs; /* into data: each record sized to its data (kg_record__store) */
	_Alignas(struct kg_record) unsigned char data[];
};

struct pg_sink;

struct conn {
	struct pg_sink *s;
	int idx;
	pthread_t th;
	bool started;
	struct kg_pg *pg;         /* this thread's own */
	struct kg_pg_stats st;    /* [lock] last snapshot */
	bool down;                /* this thread's own: logged an outage */
};

struct pg_sink {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* connections wait for batches, and sleep their backoff, here */
	pthread_cond_t done_cv;   /* poll waits for finished batches */
	struct batch *todo_head, *todo_tail; /* [lock] */
	size_t ntodo;             /* [lock] */
	struct batch *done_head, *done_tail; /* [lock] */
	uint64_t gen;             /* [lock] bumped by rewind */
	bool stopping;            /* [lock] */
	char last_error[160];     /* [lock] */
	bool last_write_ok;        /* [lock] the latest write attempt of any connection committed: the
	                           * sink's "connected" (an idle connection cannot know the server left) */
	size_t max_todo;          /* constant */
	size_t batch_size;        /* constant */
	size_t in_flight;         /* worker only */
	int nconn;
	struct conn *conns;
};

static void free_list(struct batch *b)
{
	while(b){
		struct batch *next = b->next;
		free(b);
		b = next;
	}
}

/* Connection thread: write b until it commits, the sink is rewound past it, or stopped.
 * Returns true when b committed and is still current. */
static bool write_batch(struct conn *c, struct batch *b)
{
	struct pg_sink *s = c->s;
	int backoff = BACKOFF_MIN_MS;

	for(;;){
		int rc = kg_pg__write_ptrs(c->pg, b->recs, b->n, b->status);
		bool current;

		pthread_mutex_lock(&s->lock);
		kg_pg__stats(c->pg, &c->st);
		c->st.connected = kg_pg__connected(c->pg);
		s->last_write_ok = rc == 0;
		current = b->gen == s->gen && !s->stopping;
		if(rc != 0){
			snprintf(s->last_error, sizeof(s->last_error), "connection %d: write of %zu rows failed",
					c->idx, b->n);
		}
		pthread_mutex_unlock(&s->lock);
		if(rc == 0){
			if(c->down){
				kg_log(KG_LOG_INFO, "PostgreSQL connection %d is back: batch of %zu rows written",
						c->idx, b->n);
				c->down = false;
			}
			return current;
		}
		if(!c->down){
			kg_log(KG_LOG_WARNING, "PostgreSQL connection %d: write of %zu rows failed; retrying "
					"with backoff (nothing is dropped: the rows wait in the queue and the spool)",
					c->idx, b->n);
			c->down = true;
		}
		if(!current) return false;
		/* Back off, waking early on rewind or stop. */
		pthread_mutex_lock(&s->lock);
		{
			struct timespec until;
			kg_clock__deadline_in(&until, backoff);
			while(b->gen == s->gen && !s->stopping){
				if(pthread_cond_timedwait(&s->work, &s->lock, &until) == ETIMEDOUT) break;
			}
			current = b->gen == s->gen && !s->stopping;
		}
		pthread_mutex_unlock(&s->lock);
		if(!current) return false;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct pg_sink *s = c->s;

	pthread_setname_np(pthread_self(), "kg-pg"); /* named for per-thread CPU (ci/bench-fleet) */

	pthread_mutex_lock(&s->lock);
	for(;;){
		struct batch *b;

		while(!s->stopping && !s->todo_head) pthread_cond_wait(&s->work, &s->lock);
		if(s->stopping) break;
		b = s->todo_head;
		s->todo_head = b->next;
		if(!s->todo_head) s->todo_tail = NULL;
		s->ntodo--;
		b->next = NULL;
		pthread_mutex_unlock(&s->lock);

		bool ok = write_batch(c, b);

		pthread_mutex_lock(&s->lock);
		if(ok && b->gen == s->gen){
			if(s->done_tail) s->done_tail->next = b;
			else s->done_head = b;
			s->done_tail = b;
			pthread_cond_signal(&s->done_cv);
		}else{
			free(b); /* rewound or stopping: not reported; the worker replays from the spool */
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static size_t pg_submit(void *state, const struct kg_record *recs, void *const *items, size_t n)
{
	struct pg_sink *s = state;
	size_t taken = 0;

	while(taken < n){
		size_t k = n - taken < s->batch_size ? n - taken : s->batch_size;
		struct batch *b;

		pthread_mutex_lock(&s->lock);
		if(s->ntodo >= s->max_todo){
			pthread_mutex_unlock(&s->lock);
			break; /* every connection busy and the queue full: the worker waits */
		}
		pthread_mutex_unlock(&s->lock);
		/* the records sized to their data (about 130 bytes for a RAW one, not the struct's 3.6 KB),
		 * then the pointers to them, the items and the status bytes */
		size_t bytes = 0, off = 0;
		for(size_t i = 0; i < k; i++) bytes += kg_record__stored(&recs[taken + i]);
		b = malloc(sizeof(*b) + bytes + k * sizeof(b->recs[0]) + k * sizeof(void *) + k);
		if(!b) break;
		b->next = NULL;
		b->n = k;
		b->recs = (const struct kg_record **)(void *)(b->data + bytes);
		b->items = (void **)(b->recs + k);
		b->status = (uint8_t *)(b->items + k);
		for(size_t i = 0; i < k; i++){
			b->recs[i] = (const struct kg_record *)(void *)(b->data + off);
			off += kg_record__store(b->data + off, &recs[taken + i]);
		}
		memcpy(b->items, items + taken, k * sizeof(void *));
		memset(b->status, 0, k);
		pthread_mutex_lock(&s->lock);
		b->gen = s->gen;
		if(s->todo_tail) s->todo_tail->next = b;
		else s->todo_head = b;
		s->todo_tail = b;
		s->ntodo++;
		pthread_cond_signal(&s->work);
		pthread_mutex_unlock(&s->lock);
		taken += k;
		s->in_flight += k;
	}
	return taken;
}

static size_t pg_poll(void *state, int timeout_ms, kg_sink_report_fn report, void *ud)
{
	struct pg_sink *s = state;
	struct batch *b, *next;
	size_t i, n = 0;

	pthread_mutex_lock(&s->lock);
	if(!s->done_head && timeout_ms > 0 && s->in_flight > 0){
		struct timespec until;
		kg_clock__deadline_in(&until, timeout_ms);
		while(!s->done_head){
			if(pthread_cond_timedwait(&s->done_cv, &s->lock, &until) == ETIMEDOUT) break;
		}
	}
	b = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	for(; b; b = next){
		next = b->next;
		for(i = 0; i < b->n; i++){
			if(b->status[i] == KG_PG_ROW_OK) report(b->items[i], KG_SETTLE_OK, NULL, ud);
			else report(b->items[i], KG_SETTLE_REJECTED, kg_pg__row_name(b->status[i]), ud);
		}
		assert(s->in_flight >= b->n);
		s->in_flight -= b->n;
		n += b->n;
		free(b);
	}
	return n;
}

static void pg_rewind(void *state)
{
	struct pg_sink *s = state;
	struct batch *todo, *done;

	pthread_mutex_lock(&s->lock);
	s->gen++; /* batches being written are discarded by their connection, not reported */
	todo = s->todo_head;
	done = s->done_head;
	s->todo_head = s->todo_tail = NULL;
	s->done_head = s->done_tail = NULL;
	s->ntodo = 0;
	pthread_cond_broadcast(&s->work); /* cut backoffs short */
	pthread_mutex_unlock(&s->lock);
	free_list(todo);
	free_list(done);
	s->in_flight = 0;
}

static void pg_health(void *state, struct kg_sink_health *out)
{
	struct pg_sink *s = state;
	int i;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&s->lock);
	for(i = 0; i < s->nconn; i++){
		const struct kg_pg_stats *st = &s->conns[i].st;
		out->written += st->rows_inserted;
		out->duplicates += st->rows_duplicate;
		out->errors += st->errors;
		out->reconnects += st->reconnects;
	}
	out->connected = s->last_write_ok;
	memcpy(out->last_error, s->last_error, sizeof(out->last_error));
	pthread_mutex_unlock(&s->lock);
	out->in_flight = s->in_flight;
}

static void pg_free(void *state)
{
	struct pg_sink *s = state;
	int i;

	if(!s) return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	/* A connection blocked in a statement (a lock wait, a slow server) would hold up the joins
	 * past shutdown_timeout_ms: cancel it. Its batch is not reported; it stays in the spool. */
	for(i = 0; i < s->nconn; i++){
		if(s->conns[i].pg) kg_pg__cancel(s->conns[i].pg);
	}
	for(i = 0; i < s->nconn; i++){
		if(s->conns[i].started) pthread_join(s->conns[i].th, NULL);
		if(s->conns[i].pg) kg_pg__free(s->conns[i].pg);
	}
	free_list(s->todo_head);
	free_list(s->done_head);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done_cv);
	pthread_mutex_destroy(&s->lock);
	free(s->conns);
	free(s);
}

static const struct kg_sink_ops pg_ops = {
	"postgres", pg_submit, pg_poll, pg_rewind, pg_health, pg_free,
};

int kg_sink_pg__new(struct kg_sink *out, const struct kg_config *cfg, char *err, size_t errlen)
{
	struct pg_sink *s;
	pthread_condattr_t attr;
	int i;

	s = calloc(1, sizeof(*s));
	if(!s) goto nomem;
	s->nconn = cfg->pg_connections > 0 ? cfg->pg_connections : 2;
	s->batch_size = cfg->batch_size > 0 ? (size_t)cfg->batch_size : 1000;
	s->max_todo = (size_t)s->nconn; /* one waiting batch per connection beside the one it writes */
	s->conns = calloc((size_t)s->nconn, sizeof(*s->conns));
	if(!s->conns){
		free(s);
		goto nomem;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->work, &attr);
	pthread_cond_init(&s->done_cv, &attr);
	pthread_condattr_destroy(&attr);
	for(i = 0; i < s->nconn; i++){
		struct conn *c = &s->conns[i];
		c->s = s;
		c->idx = i + 1;
		c->pg = kg_pg__new(cfg->database_url);
		if(!c->pg) goto fail;
	}
	/* The connection threads inherit the caller's signal mask; the plugin creates the sink on the
	 * main thread, so block everything while they start. */
	{
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		for(i = 0; i < s->nconn; i++){
			if(pthread_create(&s->conns[i].th, NULL, conn_main, &s->conns[i]) != 0) break;
			s->conns[i].started = true;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if(i < s->nconn) goto fail;
	}
	out->ops = &pg_ops;
	out->state = s;
	return 0;

fail:
	pg_free(s);
nomem:
	snprintf(err, errlen, "kitgate: PostgreSQL sink: out of memory or threads");
	return -1;
}
