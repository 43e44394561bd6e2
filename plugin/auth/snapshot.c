/* snapshot.c -- the kits snapshot and its loader thread (see snapshot.h). Never calls mosquitto_*.
 *
 * Thread rules: a sealed snapshot is immutable and freed by whichever thread drops its last
 * reference (an atomic count). The loader's shared state (newest snapshot, pending kicks) is behind
 * one mutex held only for pointer swaps; `generation` lets the broker's TICK skip the lock when
 * nothing new was published. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kitgate/clock.h"
#include "kitgate/log.h"
#include "kitgate/pgconn.h"
#include "kitgate/reloadsched.h"
#include "kitgate/snapshot.h"

struct periph {
	int32_t id;
	int32_t kit_id;         /* until sealed */
	uint32_t kit;           /* index into kits, once sealed */
	char *configuration;
};

struct kg_snapshot {
	_Atomic unsigned refs;
	bool sealed;
	struct kg_snapshot_kit *kits;      /* sorted by serial (strcmp) */
	size_t nkits, kits_cap;
	struct periph *periphs;            /* sorted by id */
	size_t nperiphs, periphs_cap;
	int32_t *qts;                      /* sorted */
	size_t nqts, qts_cap;
};

/* ---------------------------------------------------------------- building */

struct kg_snapshot *kg_snapshot__new(void)
{
	struct kg_snapshot *s = calloc(1, sizeof(*s));

	if(s) atomic_init(&s->refs, 1);
	return s;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t ncap;

	if(n < *cap) return 0;
	ncap = *cap ? *cap * 2 : 64;
	p = realloc(*arr, ncap * elem);
	if(!p) return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

int kg_snapshot__add_kit(struct kg_snapshot *s, int32_t id, const char *serial, const char *hash)
{
	struct kg_snapshot_kit *k;

	assert(!s->sealed && serial && hash);
	if(grow((void **)&s->kits, &s->kits_cap, s->nkits, sizeof(*s->kits))) return -1;
	k = &s->kits[s->nkits];
	k->id = id;
	k->serial = strdup(serial);
	k->password_hash = strdup(hash);
	if(!k->serial || !k->password_hash){
		free((char *)k->serial);
		free((char *)k->password_hash);
		return -1;
	}
	s->nkits++;
	return 0;
}

int kg_snapshot__add_peripheral(struct kg_snapshot *s, int32_t id, int32_t kit_id, const char *configuration)
{
	struct periph *p;

	assert(!s->sealed);
	if(grow((void **)&s->periphs, &s->periphs_cap, s->nperiphs, sizeof(*s->periphs))) return -1;
	p = &s->periphs[s->nperiphs];
	p->id = id;
	p->kit_id = kit_id;
	p->kit = 0;
	p->configuration = strdup(configuration ? configuration : "null");
	if(!p->configuration) return -1;
	s->nperiphs++;
	return 0;
}

int kg_snapshot__add_quantity_type(struct kg_snapshot *s, int32_t id)
{
	assert(!s->sealed);
	if(grow((void **)&s->qts, &s->qts_cap, s->nqts, sizeof(*s->qts))) return -1;
	s->qts[s->nqts++] = id;
	return 0;
}

static int cmp_kit_serial(const void *a, const void *b)
{
	return strcmp(((const struct kg_snapshot_kit *)a)->serial, ((const struct kg_snapshot_kit *)b)->serial);
}

static int cmp_periph_id(const void *a, const void *b)
{
	int32_t x = ((const struct periph *)a)->id, y = ((const struct periph *)b)->id;
	return (x > y) - (x < y);
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

struct id_index {
	int32_t id;
	uint32_t index;
};

static int cmp_id_index(const void *a, const void *b)
{
	int32_t x = ((const struct id_index *)a)->id, y = ((const struct id_index *)b)->id;
	return (x > y) - (x < y);
}

int kg_snapshot__seal(struct kg_snapshot *s)
{
	struct id_index *byid = NULL, key, *hit;
	size_t i, j;

	assert(!s->sealed);
	if(s->nkits > UINT32_MAX) return -1;
	/* (empty arrays are NULL: qsort/bsearch/memcmp must not see them) */
	if(s->nkits) qsort(s->kits, s->nkits, sizeof(*s->kits), cmp_kit_serial);
	if(s->nqts) qsort(s->qts, s->nqts, sizeof(*s->qts), cmp_i32);
	if(s->nperiphs) qsort(s->periphs, s->nperiphs, sizeof(*s->periphs), cmp_periph_id);
	if(s->nkits){
		byid = malloc(s->nkits * sizeof(*byid));
		if(!byid) return -1;
		for(i = 0; i < s->nkits; i++){
			byid[i].id = s->kits[i].id;
			byid[i].index = (uint32_t)i;
		}
		qsort(byid, s->nkits, sizeof(*byid), cmp_id_index);
	}
	for(i = j = 0; i < s->nperiphs; i++){
		key.id = s->periphs[i].kit_id;
		hit = byid ? bsearch(&key, byid, s->nkits, sizeof(*byid), cmp_id_index) : NULL;
		if(!hit){
			free(s->periphs[i].configuration);
			continue;
		}
		s->periphs[j] = s->periphs[i];
		s->periphs[j].kit = hit->index;
		j++;
	}
	s->nperiphs = j;
	free(byid);
	s->sealed = true;
	return 0;
}

/* ---------------------------------------------------------------- reading */

struct kg_snapshot *kg_snapshot__ref(struct kg_snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void kg_snapshot__unref(struct kg_snapshot *s)
{
	size_t i;

	if(!s) return;
	if(atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
	for(i = 0; i < s->nkits; i++){
		free((char *)s->kits[i].serial);
		free((char *)s->kits[i].password_hash);
	}
	for(i = 0; i < s->nperiphs; i++) free(s->periphs[i].configuration);
	free(s->kits);
	free(s->periphs);
	free(s->qts);
	free(s);
}

size_t kg_snapshot__nkits(const struct kg_snapshot *s) { return s->nkits; }
size_t kg_snapshot__nperipherals(const struct kg_snapshot *s) { return s->nperiphs; }
size_t kg_snapshot__nquantity_types(const struct kg_snapshot *s) { return s->nqts; }

const struct kg_snapshot_kit *kg_snapshot__kit(const struct kg_snapshot *s, const char *serial, size_t len)
{
	size_t lo = 0, hi = s->nkits;

	assert(s->sealed);
	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		const char *k = s->kits[mid].serial;
		int c = strncmp(k, serial, len);

		if(c == 0) c = k[len] != '\0';   /* k is longer than serial: k > serial */
		if(c == 0) return &s->kits[mid];
		if(c < 0) lo = mid + 1;
		else hi = mid;
	}
	return NULL;
}

static const struct periph *find_periph(const struct kg_snapshot *s, int32_t id)
{
	struct periph key;

	key.id = id;
	if(!s->nperiphs) return NULL;
	return bsearch(&key, s->periphs, s->nperiphs, sizeof(*s->periphs), cmp_periph_id);
}

const char *kg_snapshot__peripheral_configuration(const struct kg_snapshot *s, int32_t peripheral)
{
	const struct periph *p = find_periph(s, peripheral);
	return p ? p->configuration : NULL;
}

enum kg_reason kg_snapshot__check(const struct kg_snapshot *s, const char *serial, size_t slen,
		int32_t peripheral, int32_t quantity_type)
{
	const struct periph *p;
	const char *owner;

	assert(s->sealed);
	p = find_periph(s, peripheral);
	if(!p) return KG_UNKNOWN_PERIPHERAL;
	owner = s->kits[p->kit].serial;
	if(strlen(owner) != slen || memcmp(owner, serial, slen)) return KG_FOREIGN_PERIPHERAL;
	if(!s->nqts || !bsearch(&quantity_type, s->qts, s->nqts, sizeof(*s->qts), cmp_i32)) return KG_UNKNOWN_QUANTITY_TYPE;
	return KG_OK;
}

int kg_snapshot__same(const struct kg_snapshot *a, const struct kg_snapshot *b)
{
	size_t i;

	if(a->nkits != b->nkits || a->nperiphs != b->nperiphs || a->nqts != b->nqts) return 0;
	for(i = 0; i < a->nkits; i++){
		if(a->kits[i].id != b->kits[i].id || strcmp(a->kits[i].serial, b->kits[i].serial)
				|| strcmp(a->kits[i].password_hash, b->kits[i].password_hash)){
			return 0;
		}
	}
	for(i = 0; i < a->nperiphs; i++){
		if(a->periphs[i].id != b->periphs[i].id || a->periphs[i].kit != b->periphs[i].kit
				|| strcmp(a->periphs[i].configuration, b->periphs[i].configuration)){
			return 0;
		}
	}
	return a->nqts == 0 || memcmp(a->qts, b->qts, a->nqts * sizeof(*a->qts)) == 0;
}

size_t kg_snapshot__diff(const struct kg_snapshot *old, const struct kg_snapshot *new_,
		void (*fn)(const char *serial, void *arg), void *arg)
{
	size_t i = 0, j = 0, n = 0;

	/* Both are sorted by serial: one merge walk. */
	while(i < old->nkits){
		int c = j < new_->nkits ? strcmp(old->kits[i].serial, new_->kits[j].serial) : -1;

		if(c > 0){
			j++;
			continue;
		}
		if(c < 0 || strcmp(old->kits[i].password_hash, new_->kits[j].password_hash)){
			fn(old->kits[i].serial, arg);
			n++;
		}
		i++;
		if(c == 0) j++;
	}
	return n;
}

/* ---------------------------------------------------------------- the loader thread */

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 5000
#define NOTIFY_DEBOUNCE_MS 50
#define NOTIFY_MAX_DELAY_MS 1000   /* a notification is served within this (plus the load) */
#define ASK_MIN_MS 5000            /* the broker's asks: at most one load per this */
#define ERROR_LOG_EVERY_MS 60000
#define CHANNEL "kitgate_kits"

struct kg_snapshot_loader {
	char *url;
	int refresh_ms;
	int wake[2];                 /* pipe: a byte wakes the loader (stop or poke) */
	_Atomic int stopping;
	pthread_t thread;
	/* shared, under lock */
	pthread_mutex_t lock;
	struct kg_snapshot *newest;  /* one reference held here */
	char **kicks;
	size_t nkicks, kicks_cap;
	_Atomic uint64_t generation; /* bumped after newest changes */
	_Atomic uint64_t loads;      /* loads that succeeded (published or equal) */
	atomic_bool asked;           /* the broker wants a fresh snapshot (kg_snapshot__ask_refresh) */
	atomic_bool poked;           /* load now (kg_snapshot__poke) */
	_Atomic uint64_t asks;       /* asks that woke the loader */
	struct kg_pgconn_cancel cancel;  /* conn's cancel handle: stop interrupts a blocked query */
	struct kg_snapshot *(*source)(void *arg);   /* tests: instead of PostgreSQL (kg_snapshot__test_source) */
	void *source_arg;
	/* loader thread only */
	PGconn *conn;
	struct kg_snapshot *published;   /* the loader's own reference to the last one published */
	int64_t last_error_log_ms;
	bool failing;
};

static void report_error(struct kg_snapshot_loader *l, const char *what, const char *detail)
{
	int64_t now = kg_clock__mono_ms();
	size_t n = detail ? strlen(detail) : 0;

	while(n && (detail[n - 1] == '\n' || detail[n - 1] == ' ')) n--;
	if(!l->failing || now - l->last_error_log_ms >= ERROR_LOG_EVERY_MS){
		kg_log(KG_LOG_WARNING, "auth: kits snapshot %s: %.*s (%s; retrying)", what, (int)n,
				detail ? detail : "", l->published ? "keeping the last snapshot" :
				"kits are refused until a snapshot loads");
		l->last_error_log_ms = now;
	}
	l->failing = true;
}

static void drop_conn(struct kg_snapshot_loader *l)
{
	kg_pgconn__cancel_set(&l->cancel, NULL);
	if(l->conn) PQfinish(l->conn);
	l->conn = NULL;
}

static int connect_db(struct kg_snapshot_loader *l)
{
	PGresult *res;

	/* keepalives, tcp_user_timeout, statement/lock timeouts; the URI's own settings win */
	l->conn = kg_pgconn__connect(l->url, "kitgate-auth", 5);
	if(!l->conn || PQstatus(l->conn) != CONNECTION_OK){
		report_error(l, "connection failed", l->conn ? PQerrorMessage(l->conn) : "out of memory");
		drop_conn(l);
		return -1;
	}
	kg_pgconn__cancel_set(&l->cancel, l->conn);
	if(kg_pgconn__cancel_fired(&l->cancel)){   /* stopping: fired before the handle existed */
		drop_conn(l);
		return -1;
	}
	res = PQexec(l->conn, "LISTEN " CHANNEL);
	if(PQresultStatus(res) != PGRES_COMMAND_OK){
		report_error(l, "LISTEN failed", PQerrorMessage(l->conn));
		PQclear(res);
		drop_conn(l);
		return -1;
	}
	PQclear(res);
	return 0;
}

static PGresult *query(struct kg_snapshot_loader *l, const char *sql, ExecStatusType want)
{
	PGresult *res = PQexec(l->conn, sql);

	if(PQresultStatus(res) != want){
		report_error(l, "query failed", PQerrorMessage(l->conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

static int32_t int_at(PGresult *r, int row, int col)
{
	return (int32_t)strtol(PQgetvalue(r, row, col), NULL, 10);
}

/* One consistent read (REPEATABLE READ) of the three tables into a sealed snapshot, or NULL. */
static struct kg_snapshot *load(struct kg_snapshot_loader *l)
{
	struct kg_snapshot *s = NULL;
	PGresult *kits = NULL, *periphs = NULL, *qts = NULL, *res;
	int i;

	if(l->source){
		s = l->source(l->source_arg);
		if(!s) report_error(l, "load failed", "the test source had none");
		return s;
	}
	res = query(l, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK);
	if(!res) return NULL;
	PQclear(res);
	kits = query(l, "SELECT id, serial, password_hash FROM kits", PGRES_TUPLES_OK);
	if(kits) periphs = query(l, "SELECT id, kit_id, configuration::text FROM peripherals", PGRES_TUPLES_OK);
	if(periphs) qts = query(l, "SELECT id FROM quantity_types", PGRES_TUPLES_OK);
	res = PQexec(l->conn, qts ? "COMMIT" : "ROLLBACK");
	PQclear(res);
	if(!qts) goto done;
	s = kg_snapshot__new();
	if(!s) goto oom;
	for(i = 0; i < PQntuples(kits); i++){
		if(kg_snapshot__add_kit(s, int_at(kits, i, 0), PQgetvalue(kits, i, 1), PQgetvalue(kits, i, 2))) goto oom;
	}
	for(i = 0; i < PQntuples(periphs); i++){
		if(kg_snapshot__add_peripheral(s, int_at(periphs, i, 0), int_at(periphs, i, 1),
					PQgetisnull(periphs, i, 2) ? NULL : PQgetvalue(periphs, i, 2))) goto oom;
	}
	for(i = 0; i < PQntuples(qts); i++){
		if(kg_snapshot__add_quantity_type(s, int_at(qts, i, 0))) goto oom;
	}
	if(kg_snapshot__seal(s)) goto oom;
	goto done;
oom:
	report_error(l, "load failed", "out of memory");
	kg_snapshot__unref(s);
	s = NULL;
done:
	PQclear(kits);
	PQclear(periphs);
	PQclear(qts);
	return s;
}

struct kick_acc {
	struct kg_snapshot_loader *l;
	int oom;
};

/* Under l->lock. */
static void add_kick(const char *serial, void *arg)
{
	struct kick_acc *a = arg;
	struct kg_snapshot_loader *l = a->l;
	char *dup;

	if(grow((void **)&l->kicks, &l->kicks_cap, l->nkicks, sizeof(*l->kicks)) || !(dup = strdup(serial))){
		a->oom = 1;
		return;
	}
	l->kicks[l->nkicks++] = dup;
}

/* Publish s (takes the caller's reference) unless it equals the last one. */
static void publish(struct kg_snapshot_loader *l, struct kg_snapshot *s)
{
	struct kg_snapshot *old_newest;
	struct kick_acc acc = { l, 0 };
	size_t nk = 0;

	if(l->published && kg_snapshot__same(l->published, s)){
		kg_snapshot__unref(s);
		return;
	}
	pthread_mutex_lock(&l->lock);
	if(l->published) nk = kg_snapshot__diff(l->published, s, add_kick, &acc);
	old_newest = l->newest;
	l->newest = kg_snapshot__ref(s);
	atomic_fetch_add_explicit(&l->generation, 1, memory_order_release);
	pthread_mutex_unlock(&l->lock);
	kg_snapshot__unref(old_newest);
	if(acc.oom) kg_log(KG_LOG_ERROR, "auth: out of memory recording kits to disconnect");
	kg_log(l->published ? KG_LOG_DEBUG : KG_LOG_INFO, "auth: kits snapshot loaded: %zu kits, %zu "
			"peripherals, %zu quantity types; %zu kit(s) to disconnect", s->nkits, s->nperiphs, s->nqts, nk);
	kg_snapshot__unref(l->published);
	l->published = s;
}

/* Wait up to ms for a wake byte or (when connected) input on the connection. Returns WOKE_NOTIFY
 * and/or WOKE_PIPE when a notification or a wake byte arrived, 0 on timeout, -1 when the connection
 * broke. */
#define WOKE_NOTIFY 1
#define WOKE_PIPE 2
static int wait_event(struct kg_snapshot_loader *l, int ms)
{
	struct pollfd fds[2];
	char buf[64];
	int n = 1, rc, got = 0;
	PGnotify *nt;

	fds[0].fd = l->wake[0];
	fds[0].events = POLLIN;
	if(l->conn){
		fds[1].fd = PQsocket(l->conn);
		fds[1].events = POLLIN;
		n = 2;
	}
	rc = poll(fds, (nfds_t)n, ms);
	if(rc <= 0) return 0;
	if(fds[0].revents & POLLIN){
		while(read(l->wake[0], buf, sizeof(buf)) > 0){}
		got |= WOKE_PIPE;
	}
	if(n == 2 && fds[1].revents){
		if(PQconsumeInput(l->conn) != 1){
			report_error(l, "connection lost", PQerrorMessage(l->conn));
			drop_conn(l);
			return -1;
		}
		while((nt = PQnotifies(l->conn))){
			got |= WOKE_NOTIFY;
			PQfreemem(nt);
		}
	}
	return got;
}

static void *loader_main(void *arg)
{
	struct kg_snapshot_loader *l = arg;
	struct kg_snapshot *s;
	struct kg_reloadsched sched;
	int backoff = BACKOFF_MIN_MS;
	int64_t now, due, started;
	int rc;

	pthread_setname_np(pthread_self(), "kg-snapshot"); /* named for per-thread CPU (ci/bench-fleet) */

	kg_reloadsched__init(&sched, l->refresh_ms, NOTIFY_DEBOUNCE_MS, NOTIFY_MAX_DELAY_MS, ASK_MIN_MS);
	while(!atomic_load(&l->stopping)){
		if(!l->conn && !l->source){
			if(connect_db(l) != 0){
				wait_event(l, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			kg_reloadsched__force(&sched); /* notifications sent while we were not listening are lost */
		}
		now = kg_clock__mono_ms();
		due = kg_reloadsched__due(&sched);
		if(now >= due){
			started = now;
			/* this load serves the asks made so far; one made while it runs wakes us again and is
			 * served by a later load (the scheduler keeps it at least ASK_MIN_MS apart) */
			atomic_store(&l->asked, false);
			s = load(l);
			if(!s){
				if(PQstatus(l->conn) != CONNECTION_OK) drop_conn(l);
				wait_event(l, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			if(l->failing && l->published) kg_log(KG_LOG_INFO, "auth: kits snapshot reloads again");
			l->failing = false;
			backoff = BACKOFF_MIN_MS;
			publish(l, s);
			kg_reloadsched__loaded(&sched, started);
			atomic_fetch_add_explicit(&l->loads, 1, memory_order_relaxed);
			continue;
		}
		/* A burst of notifications (one per statement and table) coalesces into one load: the
		 * scheduler waits for a quiet debounce, but never longer than NOTIFY_MAX_DELAY_MS after the
		 * burst's first one, and never past the periodic reload. */
		rc = wait_event(l, due - now > INT32_MAX ? INT32_MAX : (int)(due - now));
		if(rc > 0){
			now = kg_clock__mono_ms();
			/* a wake byte is the broker's ask (rate-limited by the scheduler) and/or a poke */
			if((rc & WOKE_PIPE) && atomic_load(&l->asked)) kg_reloadsched__ask(&sched, now);
			if((rc & WOKE_PIPE) && atomic_exchange(&l->poked, false)) kg_reloadsched__force(&sched);
			if(rc & WOKE_NOTIFY) kg_reloadsched__notify(&sched, now);
		}
	}
	drop_conn(l);
	return NULL;
}

static struct kg_snapshot *(*test_source)(void *arg);
static void *test_source_arg;

void kg_snapshot__test_source(struct kg_snapshot *(*fn)(void *arg), void *arg)
{
	test_source = fn;
	test_source_arg = arg;
}

struct kg_snapshot_loader *kg_snapshot__start(const char *database_url, int refresh_s)
{
	struct kg_snapshot_loader *l = calloc(1, sizeof(*l));
	sigset_t all, old;
	int rc;

	if(!l) return NULL;
	l->wake[0] = l->wake[1] = -1;
	l->refresh_ms = refresh_s * 1000;
	l->source = test_source;
	l->source_arg = test_source_arg;
	l->url = strdup(database_url);
	if(!l->url || pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0 || pthread_mutex_init(&l->lock, NULL) != 0){
		if(l->wake[0] >= 0){
			close(l->wake[0]);
			close(l->wake[1]);
		}
		free(l->url);
		free(l);
		return NULL;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);   /* signals stay with the broker thread */
	kg_pgconn__cancel_init(&l->cancel);
	rc = pthread_create(&l->thread, NULL, loader_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(rc != 0){
		close(l->wake[0]);
		close(l->wake[1]);
		kg_pgconn__cancel_destroy(&l->cancel);
		pthread_mutex_destroy(&l->lock);
		free(l->url);
		free(l);
		return NULL;
	}
	return l;
}

struct kg_snapshot *kg_snapshot__take(struct kg_snapshot_loader *l, uint64_t *gen, char ***kicks, size_t *nkicks)
{
	struct kg_snapshot *s;

	*kicks = NULL;
	*nkicks = 0;
	if(atomic_load_explicit(&l->generation, memory_order_acquire) == *gen) return NULL;
	pthread_mutex_lock(&l->lock);
	*gen = atomic_load_explicit(&l->generation, memory_order_relaxed);
	s = l->newest ? kg_snapshot__ref(l->newest) : NULL;
	*kicks = l->kicks;
	*nkicks = l->nkicks;
	l->kicks = NULL;
	l->nkicks = l->kicks_cap = 0;
	pthread_mutex_unlock(&l->lock);
	return s;
}

static void wake(struct kg_snapshot_loader *l)
{
	char c = 1;

	if(write(l->wake[1], &c, 1) < 0){
		/* full pipe: a wake-up is already pending */
	}
}

void kg_snapshot__poke(struct kg_snapshot_loader *l)
{
	atomic_store(&l->poked, true);
	wake(l);
}

void kg_snapshot__ask_refresh(struct kg_snapshot_loader *l)
{
	if(atomic_load_explicit(&l->asked, memory_order_relaxed) || atomic_exchange(&l->asked, true)) return;
	atomic_fetch_add_explicit(&l->asks, 1, memory_order_relaxed);
	wake(l);
}

void kg_snapshot__counts(struct kg_snapshot_loader *l, uint64_t *loads, uint64_t *asks)
{
	*loads = atomic_load_explicit(&l->loads, memory_order_relaxed);
	*asks = atomic_load_explicit(&l->asks, memory_order_relaxed);
}

void kg_snapshot__stop(struct kg_snapshot_loader *l)
{
	size_t i;

	if(!l) return;
	atomic_store(&l->stopping, 1);
	kg_snapshot__poke(l);
	kg_pgconn__cancel_fire(&l->cancel);   /* a query blocked on a lock or a slow server */
	pthread_join(l->thread, NULL);
	kg_pgconn__cancel_destroy(&l->cancel);
	close(l->wake[0]);
	close(l->wake[1]);
	kg_snapshot__unref(l->newest);
	kg_snapshot__unref(l->published);
	for(i = 0; i < l->nkicks; i++) free(l->kicks[i]);
	free(l->kicks);
	pthread_mutex_destroy(&l->lock);
	free(l->url);
	free(l);
}
