/* view.c -- the snapshot exchange and the test-measurement queue between the broker thread and
 * the HTTP thread(s): one mutex, one condition variable. Contract in view.h. */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/view.h"

struct kg_view {
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* new snapshot, request outcome, or stop */
	struct kg_view_snapshot *current;
	uint64_t seq;
	bool stopping;
	struct kg_test_req *head, *tail;
	atomic_int queued;             /* lets the broker thread skip the lock when idle */
	atomic_llong wanted_ms;        /* CLOCK_MONOTONIC ms a reader last wanted a snapshot */
};

void kg_view__want(struct kg_view *v)
{
	atomic_store_explicit(&v->wanted_ms, kg_clock__mono_ms(), memory_order_relaxed);
}

int kg_view__wanted(struct kg_view *v, int within_ms)
{
	int64_t w = atomic_load_explicit(&v->wanted_ms, memory_order_relaxed);

	return w != 0 && kg_clock__mono_ms() - w <= within_ms;
}

struct kg_view *kg_view__new(void)
{
	struct kg_view *v = calloc(1, sizeof(*v));
	pthread_condattr_t ca;

	if(!v) return NULL;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);
	return v;
}

static void snapshot_free(struct kg_view_snapshot *s)
{
	cJSON_Delete(s->state);
	free(s->metrics);
	free(s);
}

static void req_free(struct kg_test_req *r)
{
	free(r->payload);
	free(r);
}

void kg_view__free(struct kg_view *v)
{
	struct kg_test_req *r, *next;

	if(!v) return;
	if(v->current && --v->current->refs == 0) snapshot_free(v->current);
	for(r = v->head; r; r = next){
		next = r->next;
		if(--r->refs == 0) req_free(r);
	}
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

void kg_view__publish(struct kg_view *v, cJSON *state, char *metrics, int64_t at_ms)
{
	struct kg_view_snapshot *s = calloc(1, sizeof(*s)), *old;

	if(!s){
		cJSON_Delete(state);
		free(metrics);
		return;
	}
	s->state = state;
	s->metrics = metrics;
	s->at_ms = at_ms;
	s->mono_ms = kg_clock__mono_ms();
	s->refs = 1; /* the view's */
	pthread_mutex_lock(&v->lock);
	s->seq = ++v->seq;
	old = v->current;
	v->current = s;
	if(old && --old->refs == 0){
		/* free outside the lock */
	}else{
		old = NULL;
	}
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if(old) snapshot_free(old);
}

struct kg_view_snapshot *kg_view__acquire(struct kg_view *v)
{
	struct kg_view_snapshot *s;

	pthread_mutex_lock(&v->lock);
	s = v->current;
	if(s) s->refs++;
	pthread_mutex_unlock(&v->lock);
	return s;
}

void kg_view__release(struct kg_view *v, struct kg_view_snapshot *s)
{
	bool last;

	if(!s) return;
	pthread_mutex_lock(&v->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&v->lock);
	if(last) snapshot_free(s);
}

struct kg_view_snapshot *kg_view__acquire_fresh(struct kg_view *v, int max_age_ms, int timeout_ms)
{
	struct kg_view_snapshot *s;
	struct timespec ts;
	int rc = 0;

	kg_view__want(v);
	kg_clock__deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&v->lock);
	while(!v->stopping && (!v->current || kg_clock__mono_ms() - v->current->mono_ms > max_age_ms) && rc != ETIMEDOUT){
		rc = pthread_cond_timedwait(&v->cond, &v->lock, &ts);
	}
	s = v->current;
	if(s) s->refs++;
	pthread_mutex_unlock(&v->lock);
	return s;
}

struct kg_view_snapshot *kg_view__wait_newer(struct kg_view *v, uint64_t after, int timeout_ms)
{
	struct kg_view_snapshot *s = NULL;
	struct timespec ts;
	int rc = 0;

	kg_view__want(v);
	kg_clock__deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&v->lock);
	while(!v->stopping && (!v->current || v->current->seq <= after) && rc != ETIMEDOUT){
		rc = pthread_cond_timedwait(&v->cond, &v->lock, &ts);
	}
	if(!v->stopping && v->current && v->current->seq > after){
		s = v->current;
		s->refs++;
	}
	pthread_mutex_unlock(&v->lock);
	return s;
}

void kg_view__stop(struct kg_view *v)
{
	pthread_mutex_lock(&v->lock);
	v->stopping = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

int kg_view__submit(struct kg_view *v, struct kg_test_req *req, int timeout_ms)
{
	struct timespec ts;
	int rc = 0, done;

	kg_clock__deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&v->lock);
	if(v->stopping){
		pthread_mutex_unlock(&v->lock);
		return -1;
	}
	req->refs = 2; /* the caller's and the queue's */
	req->next = NULL;
	if(v->tail) v->tail->next = req; else v->head = req;
	v->tail = req;
	atomic_fetch_add(&v->queued, 1);
	while(!req->done && !v->stopping && rc != ETIMEDOUT){
		rc = pthread_cond_timedwait(&v->cond, &v->lock, &ts);
	}
	done = req->done;
	pthread_mutex_unlock(&v->lock);
	return done ? 0 : -1;
}

struct kg_test_req *kg_view__take_requests(struct kg_view *v)
{
	struct kg_test_req *list;

	if(atomic_load_explicit(&v->queued, memory_order_acquire) == 0) return NULL;
	pthread_mutex_lock(&v->lock);
	list = v->head;
	v->head = v->tail = NULL;
	atomic_store(&v->queued, 0);
	pthread_mutex_unlock(&v->lock);
	return list;
}

void kg_view__complete(struct kg_view *v, struct kg_test_req *req, int status, const char *message)
{
	bool last;

	pthread_mutex_lock(&v->lock);
	req->status = status;
	snprintf(req->message, sizeof(req->message), "%s", message ? message : "");
	req->done = 1;
	last = --req->refs == 0;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if(last) req_free(req);
}

void kg_view__req_release(struct kg_view *v, struct kg_test_req *req)
{
	bool last;

	pthread_mutex_lock(&v->lock);
	last = --req->refs == 0;
	pthread_mutex_unlock(&v->lock);
	if(last) req_free(req);
}
