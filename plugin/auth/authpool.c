/* authpool.c -- delayed kit logins: the pending-login jobs, their worker threads and the slot
 * budget (see authpool.h). No mosquitto calls; one mutex for the queues and the indices. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "kitgate/authpool.h"
#include "kitgate/siphash.h"

enum job_state { J_QUEUED, J_RUNNING, J_DONE };

struct job {
	struct job *prev, *next;          /* in the queue or the done list */
	struct job *id_next, *serial_next; /* index chains (only while indexed) */
	enum job_state state;
	bool stale, indexed;
	char *client_id, *serial, *key, *hash, *password; /* key: one pending check per key */
	size_t pwlen;
	struct kg_pbkdf2 h;
	int verdict;
	int64_t cost_ns;
};

struct list { struct job *head, *tail; };

struct kg_authpool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	int nthreads;
	pthread_t *threads;
	struct list queue, done;
	size_t used, max_pending;
	size_t nbuckets;                   /* power of two */
	struct job **by_id, **by_serial;
	uint8_t key[KG_SIPHASH_KEY_LEN];
	struct kg_authpool_counters c;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void list_push(struct list *l, struct job *j)
{
	j->next = NULL;
	j->prev = l->tail;
	if(l->tail) l->tail->next = j; else l->head = j;
	l->tail = j;
}

static void list_unlink(struct list *l, struct job *j)
{
	if(j->prev) j->prev->next = j->next; else l->head = j->next;
	if(j->next) j->next->prev = j->prev; else l->tail = j->prev;
	j->prev = j->next = NULL;
}

static struct job *list_pop(struct list *l)
{
	struct job *j = l->head;
	if(j) list_unlink(l, j);
	return j;
}

static void job_free(struct job *j)
{
	if(!j) return;
	if(j->password) OPENSSL_cleanse(j->password, j->pwlen);
	OPENSSL_cleanse(&j->h, sizeof(j->h));
	free(j->password);
	free(j->client_id);
	free(j->serial);
	free(j->key);
	free(j->hash);
	free(j);
}

static size_t bucket(const struct kg_authpool *ap, const char *s)
{
	return (size_t)(kg_siphash__hash(ap->key, s, strlen(s)) & (ap->nbuckets - 1));
}

static struct job *find_id(struct kg_authpool *ap, const char *id)
{
	struct job *j;
	for(j = ap->by_id[bucket(ap, id)]; j; j = j->id_next) if(!strcmp(j->client_id, id)) return j;
	return NULL;
}

static struct job *find_key(struct kg_authpool *ap, const char *key)
{
	struct job *j;
	for(j = ap->by_serial[bucket(ap, key)]; j; j = j->serial_next) if(!strcmp(j->key, key)) return j;
	return NULL;
}

static void index_add(struct kg_authpool *ap, struct job *j)
{
	size_t b = bucket(ap, j->client_id);
	j->id_next = ap->by_id[b];
	ap->by_id[b] = j;
	b = bucket(ap, j->key);
	j->serial_next = ap->by_serial[b];
	ap->by_serial[b] = j;
	j->indexed = true;
}

static void index_remove(struct kg_authpool *ap, struct job *j)
{
	struct job **pp;

	if(!j->indexed) return;
	for(pp = &ap->by_id[bucket(ap, j->client_id)]; *pp; pp = &(*pp)->id_next){
		if(*pp == j){ *pp = j->id_next; break; }
	}
	for(pp = &ap->by_serial[bucket(ap, j->key)]; *pp; pp = &(*pp)->serial_next){
		if(*pp == j){ *pp = j->serial_next; break; }
	}
	j->id_next = j->serial_next = NULL;
	j->indexed = false;
}

/* Run j's hash (lock not held). */
static void run_job(struct job *j)
{
	int64_t t0 = mono_ns();
	j->verdict = kg_pbkdf2__verify(&j->h, j->password, j->pwlen);
	j->cost_ns = mono_ns() - t0;
}

/* A job's hash ran: hand it to the broker thread (lock held). */
static void finish(struct kg_authpool *ap, struct job *j)
{
	j->state = J_DONE;
	ap->c.hashed++;
	ap->c.hash_ns += (uint64_t)(j->cost_ns > 0 ? j->cost_ns : 0);
	list_push(&ap->done, j);
}

static void *worker_main(void *arg)
{
	struct kg_authpool *ap = arg;
	struct job *j;

	pthread_setname_np(pthread_self(), "kg-auth"); /* named for per-thread CPU (ci/bench-fleet) */

	pthread_mutex_lock(&ap->lock);
	for(;;){
		while(!ap->stopping && !ap->queue.head) pthread_cond_wait(&ap->wake, &ap->lock);
		if(ap->stopping) break;
		j = list_pop(&ap->queue);
		j->state = J_RUNNING;
		pthread_mutex_unlock(&ap->lock);
		run_job(j);
		pthread_mutex_lock(&ap->lock);
		finish(ap, j);
	}
	pthread_mutex_unlock(&ap->lock);
	return NULL;
}

struct kg_authpool *kg_authpool__new(int nthreads, size_t max_pending)
{
	struct kg_authpool *ap;
	int i;

	if(nthreads < 0 || nthreads > 256 || max_pending < 2) return NULL;
	ap = calloc(1, sizeof(*ap));
	if(!ap) return NULL;
	ap->max_pending = max_pending;
	for(ap->nbuckets = 4; ap->nbuckets < max_pending; ap->nbuckets *= 2){}
	ap->by_id = calloc(ap->nbuckets, sizeof(*ap->by_id));
	ap->by_serial = calloc(ap->nbuckets, sizeof(*ap->by_serial));
	ap->threads = nthreads ? calloc((size_t)nthreads, sizeof(*ap->threads)) : NULL;
	if(!ap->by_id || !ap->by_serial || (nthreads && !ap->threads)
			|| pthread_mutex_init(&ap->lock, NULL) != 0){
		free(ap->by_id);
		free(ap->by_serial);
		free(ap->threads);
		free(ap);
		return NULL;
	}
	pthread_cond_init(&ap->wake, NULL);
	kg_siphash__random_key(ap->key);
	for(i = 0; i < nthreads; i++){
		if(pthread_create(&ap->threads[i], NULL, worker_main, ap) != 0) break;
		ap->nthreads++;
	}
	if(ap->nthreads != nthreads){
		kg_authpool__free(ap);
		return NULL;
	}
	return ap;
}

void kg_authpool__free(struct kg_authpool *ap)
{
	struct job *j;
	int i;

	if(!ap) return;
	pthread_mutex_lock(&ap->lock);
	ap->stopping = true;
	pthread_cond_broadcast(&ap->wake);
	pthread_mutex_unlock(&ap->lock);
	for(i = 0; i < ap->nthreads; i++) pthread_join(ap->threads[i], NULL);
	/* Threads are gone: a job a worker held is in done (finish ran before it saw stopping). */
	while((j = list_pop(&ap->queue))) job_free(j);
	while((j = list_pop(&ap->done))) job_free(j);
	pthread_cond_destroy(&ap->wake);
	pthread_mutex_destroy(&ap->lock);
	free(ap->by_id);
	free(ap->by_serial);
	free(ap->threads);
	free(ap);
}

/* An older job of this client id: the client that started it is gone (authpool.h). Lock held. */
static void supersede(struct kg_authpool *ap, const char *client_id)
{
	struct job *old = find_id(ap, client_id);

	if(!old) return;
	ap->c.superseded++;
	index_remove(ap, old);
	old->stale = true;
	if(old->state == J_QUEUED){
		/* not started: never hashed */
		list_unlink(&ap->queue, old);
		ap->used--;
		ap->c.skipped++;
		job_free(old);
	}
}

enum kg_authpool_submit kg_authpool__submit(struct kg_authpool *ap, const char *client_id,
		const char *serial, const char *key, const char *hash, const struct kg_pbkdf2 *h,
		const char *password, size_t pwlen, enum kg_authpool_class cls)
{
	enum kg_authpool_submit rc = KG_AUTHPOOL_QUEUED;
	size_t limit;
	struct job *j = NULL;

	pthread_mutex_lock(&ap->lock);
	supersede(ap, client_id);
	limit = cls == KG_AUTHPOOL_SUSPECT ? ap->max_pending / 2 : ap->max_pending;
	if(find_key(ap, key)){
		ap->c.busy++;
		rc = KG_AUTHPOOL_BUSY;
		goto out;
	}
	if(ap->used >= limit){
		ap->c.full++;
		rc = KG_AUTHPOOL_FULL;
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if(!j || !(j->client_id = strdup(client_id)) || !(j->serial = strdup(serial)) || !(j->key = strdup(key))
			|| !(j->hash = strdup(hash)) || !(j->password = malloc(pwlen + 1))){
		job_free(j);
		rc = KG_AUTHPOOL_NOMEM;
		goto out;
	}
	memcpy(j->password, password, pwlen);
	j->password[pwlen] = '\0';
	j->pwlen = pwlen;
	j->h = *h;
	j->state = J_QUEUED;
	index_add(ap, j);
	list_push(&ap->queue, j);
	ap->used++;
	ap->c.submitted++;
	pthread_cond_signal(&ap->wake);
out:
	pthread_mutex_unlock(&ap->lock);
	return rc;
}

int kg_authpool__take(struct kg_authpool *ap, struct kg_authresult *out)
{
	struct job *j;

	pthread_mutex_lock(&ap->lock);
	j = list_pop(&ap->done);
	if(j){
		index_remove(ap, j);
		ap->used--;
	}
	pthread_mutex_unlock(&ap->lock);
	if(!j) return 0;
	memset(out, 0, sizeof(*out));
	out->client_id = j->client_id;
	out->serial = j->serial;
	out->key = j->key;
	out->hash = j->hash;
	out->password = j->password;
	out->pwlen = j->pwlen;
	out->verdict = j->verdict;
	out->cost_ns = j->cost_ns;
	out->stale = j->stale;
	out->job_ = j;
	return 1;
}

void kg_authpool__release(struct kg_authpool *ap, struct kg_authresult *r)
{
	(void)ap;
	if(!r || !r->job_) return;
	job_free(r->job_);
	memset(r, 0, sizeof(*r));
}

size_t kg_authpool__pending(struct kg_authpool *ap)
{
	size_t n;

	pthread_mutex_lock(&ap->lock);
	n = ap->used;
	pthread_mutex_unlock(&ap->lock);
	return n;
}

int kg_authpool__run_one(struct kg_authpool *ap)
{
	struct job *j;

	pthread_mutex_lock(&ap->lock);
	j = list_pop(&ap->queue);
	if(j) j->state = J_RUNNING;
	pthread_mutex_unlock(&ap->lock);
	if(!j) return 0;
	run_job(j);
	pthread_mutex_lock(&ap->lock);
	finish(ap, j);
	pthread_mutex_unlock(&ap->lock);
	return 1;
}

void kg_authpool__counters(struct kg_authpool *ap, struct kg_authpool_counters *out)
{
	pthread_mutex_lock(&ap->lock);
	*out = ap->c;
	pthread_mutex_unlock(&ap->lock);
}
