/* handoff.c -- one stream's bounded queue between the broker thread and its worker, spilling to
 * the stream's spool. Contract and thread rules in handoff.h; everything below h->lock is private. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/handoff.h"
#include "kitgate/log.h"
#include "kitgate/spool.h"

/* Fields under lock are shared by the broker thread (push) and the worker (take/rewind);
 * read_pos is the worker's own. */
struct kg_handoff {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kg_item *head, *tail;   /* [lock] queued in memory, oldest first */
	size_t count, limit;           /* [lock] count; limit is constant */
	struct kg_spool *spool;        /* constant; NULL: memory only. Appends happen under lock */
	bool spilling;                 /* [lock] records after the queue's tail are on disk only */
	bool stopping;                 /* [lock] */
	bool worker_waiting;           /* [lock] */
	size_t wake_at;                /* [lock] the waiting worker wants a signal at this count */
	uint64_t read_pos;             /* [worker] next spool position to read when spilling */
	uint64_t spilled;              /* [lock] records that went to disk only (stat) */
};

struct kg_handoff *kg_handoff__new(size_t limit, struct kg_spool *spool)
{
	struct kg_handoff *h;
	pthread_condattr_t attr;

	if(limit == 0) return NULL;
	h = calloc(1, sizeof(*h));
	if(!h) return NULL;
	if(pthread_mutex_init(&h->lock, NULL)){
		free(h);
		return NULL;
	}
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* deadlines are monotonic */
	if(pthread_cond_init(&h->cond, &attr)){
		pthread_condattr_destroy(&attr);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	pthread_condattr_destroy(&attr);
	h->limit = limit;
	h->spool = spool;
	if(spool){
		h->read_pos = kg_spool__checkpoint(spool);
		if(kg_spool__end(spool) > h->read_pos){
			h->spilling = true;
			kg_log(KG_LOG_INFO, "replaying %llu bytes of spooled records",
					(unsigned long long)(kg_spool__end(spool) - h->read_pos));
		}
	}
	return h;
}

static struct kg_item *item_new(const uint8_t *body, uint32_t len, uint64_t end)
{
	struct kg_item *it = malloc(sizeof(*it) + len);
	if(!it) return NULL;
	it->next = NULL;
	it->end = end;
	it->len = len;
	it->state = 0;
	memcpy(it->body, body, len);
	return it;
}

static void queue_append(struct kg_handoff *h, struct kg_item *it)
{
	if(h->tail) h->tail->next = it;
	else h->head = it;
	h->tail = it;
	h->count++;
}

int kg_handoff__push(struct kg_handoff *h, const uint8_t *body, uint32_t len)
{
	struct kg_item *it;
	uint64_t end = 0;
	int rc;

	/* Allocate outside the lock; in the spill case the item is simply freed. */
	it = item_new(body, len, 0);

	pthread_mutex_lock(&h->lock);
	if(h->spool){
		rc = kg_spool__append(h->spool, body, len, &end);
		if(rc != 0){
			/* Not durable: not queued either, so the caller refuses it and nothing the sink
			 * writes was unacknowledged. The spool recovers by itself (spool.h). */
			pthread_mutex_unlock(&h->lock);
			free(it);
			return rc < 0 ? rc : -EIO;
		}
	}
	if(!h->spilling && h->count < h->limit && it){
		it->end = end;
		queue_append(h, it);
		it = NULL;
	}else if(h->spool){
		h->spilling = true; /* on disk only: the worker reads it back in order */
		h->spilled++;
	}else{
		pthread_mutex_unlock(&h->lock);
		free(it);
		return -ENOBUFS;
	}
	if(h->worker_waiting && (h->count >= h->wake_at || h->spilling)){
		h->worker_waiting = false; /* one wake-up per wait: the rest would be wasted syscalls */
		pthread_cond_signal(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	free(it);
	return 0;
}

/* Worker, lock held: are there at least min records to take right now? */
static bool have_work(struct kg_handoff *h, size_t min)
{
	if(h->count >= min) return true;
	return h->spilling && h->read_pos < kg_spool__end(h->spool);
}

/* Read up to max spooled records from h->read_pos, below limit. Worker, lock not held. */
static size_t read_spool(struct kg_handoff *h, struct kg_item **out, size_t max, uint64_t limit)
{
	size_t n = 0;

	while(n < max){
		uint8_t *body = NULL;
		uint32_t len = 0;
		int rc = kg_spool__read(h->spool, &h->read_pos, limit, &body, &len);
		if(rc <= 0){
			if(rc < 0) kg_log(KG_LOG_ERROR, "spool read failed: %s", strerror(-rc));
			break;
		}
		out[n] = item_new(body, len, h->read_pos);
		free(body);
		if(!out[n]) break;
		n++;
	}
	return n;
}

size_t kg_handoff__take(struct kg_handoff *h, struct kg_item **out, size_t max, size_t min, int timeout_ms)
{
	struct timespec until;
	size_t n = 0;

	assert(max > 0 && min > 0);
	pthread_mutex_lock(&h->lock);
	if(!have_work(h, min) && !h->stopping && timeout_ms > 0){
		kg_clock__deadline_in(&until, timeout_ms);
		h->worker_waiting = true;
		h->wake_at = min;
		while(!have_work(h, min) && !h->stopping){
			h->worker_waiting = true;
			if(pthread_cond_timedwait(&h->cond, &h->lock, &until) == ETIMEDOUT) break;
		}
		h->worker_waiting = false;
	}
	if(h->count && h->count <= max){
		/* Common case: detach the whole queue in O(1) and walk it after unlocking, so the broker
		 * thread never waits for the walk. */
		struct kg_item *it = h->head;
		h->head = h->tail = NULL;
		h->count = 0;
		pthread_mutex_unlock(&h->lock);
		for(; it; it = it->next){
			if(it->end) h->read_pos = it->end; /* read_pos is the worker's own */
			out[n++] = it;
		}
		assert(n <= max);
		return n;
	}
	while(n < max && h->head){
		struct kg_item *it = h->head;
		h->head = it->next;
		if(!h->head) h->tail = NULL;
		h->count--;
		if(it->end) h->read_pos = it->end;
		out[n++] = it;
	}
	if(n == 0 && h->spilling){
		uint64_t limit = kg_spool__end(h->spool);
		if(h->read_pos >= limit){
			h->spilling = false; /* caught up: new records queue in memory again */
		}else{
			pthread_mutex_unlock(&h->lock);
			n = read_spool(h, out, max, limit);
			pthread_mutex_lock(&h->lock);
			if(h->read_pos >= kg_spool__end(h->spool)) h->spilling = false; /* caught up */
			pthread_mutex_unlock(&h->lock);
			return n;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}

void kg_handoff__rewind(struct kg_handoff *h, uint64_t pos)
{
	struct kg_item *it, *next;

	if(!h->spool) return;
	pthread_mutex_lock(&h->lock);
	for(it = h->head; it; it = next){
		next = it->next;
		free(it);
	}
	h->head = h->tail = NULL;
	h->count = 0;
	h->read_pos = pos;
	h->spilling = true;
	pthread_mutex_unlock(&h->lock);
}

bool kg_handoff__empty(struct kg_handoff *h)
{
	bool empty;

	pthread_mutex_lock(&h->lock);
	empty = !have_work(h, 1);
	pthread_mutex_unlock(&h->lock);
	return empty;
}

size_t kg_handoff__depth(struct kg_handoff *h, bool *spilling, uint64_t *spilled)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->count;
	if(spilling) *spilling = h->spilling;
	if(spilled) *spilled = h->spilled;
	pthread_mutex_unlock(&h->lock);
	return n;
}

void kg_handoff__stop(struct kg_handoff *h)
{
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

bool kg_handoff__stopping(struct kg_handoff *h)
{
	bool stopping;

	pthread_mutex_lock(&h->lock);
	stopping = h->stopping;
	pthread_mutex_unlock(&h->lock);
	return stopping;
}

void kg_handoff__free(struct kg_handoff *h)
{
	struct kg_item *it, *next;

	if(!h) return;
	for(it = h->head; it; it = next){
		next = it->next;
		free(it);
	}
	h->head = h->tail = NULL;
	h->count = 0;
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
