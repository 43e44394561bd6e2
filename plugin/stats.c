/* stats.c -- rolling 1/5/30-minute exact means per stream: a time-sorted ring of samples per
 * stream with one compensated running sum and a start index per window; a hash table of streams
 * with a least-recently-updated list for eviction. Contract and memory bounds in stats.h. */
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/numfmt.h"
#include "kitgate/stats.h"

const int64_t kg_stats_window_ms[KG_STATS_WINDOWS] = { 60000, 300000, 1800000 };
#define LONGEST (KG_STATS_WINDOWS - 1)
#define RING_MIN 8

struct sample {
	int64_t t;
	double v;
};

struct group;

struct stream {
	uint32_t hash;
	struct stream *hnext;          /* hash chain; after eviction: the to-clear FIFO */
	struct stream *older, *newer;  /* update order (eviction takes the oldest) */
	struct group *group;           /* NULL: in no group */
	struct stream *golder, *gnewer; /* update order within the group */
	struct sample *ring;           /* sorted by t, oldest at head */
	size_t cap, head, n;
	size_t off[KG_STATS_WINDOWS];  /* logical index of the first sample in each window (off[LONGEST] == 0) */
	double sum[KG_STATS_WINDOWS], comp[KG_STATS_WINDOWS]; /* Neumaier-compensated sums */
	uint64_t cnt[KG_STATS_WINDOWS];
	bool has_latest;
	double latest;
	int64_t latest_at;
	int64_t first_t[KG_STATS_WINDOWS]; /* time of each window's first sample (INT64_MAX: empty), so that
	                                    * the common case of add (nothing to expire) stays in this struct */
	uint64_t version, published_version;
	int64_t published_at;
	char key[];                    /* NUL-terminated, allocated with the struct */
};

/* Streams sharing a key prefix (a kit's "kit/<serial>/"), capped at max_per_group. */
struct group {
	uint32_t hash;
	struct group *next;            /* hash chain */
	struct stream *oldest, *newest;
	size_t n;
	char prefix[];                 /* NUL-terminated */
};

struct kg_stats {
	struct stream **buckets;
	struct group **gbuckets;       /* nbuckets too */
	size_t nbuckets;               /* power of two */
	struct stream *oldest, *newest;
	struct stream *clear_head, *clear_tail; /* evicted streams (ring freed) whose key awaits clearing */
	size_t nclear;
	size_t max_streams, max_samples, max_per_group;
	struct kg_stats_counters c;
};

static uint32_t hash_mem(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while(n--){
		h ^= (uint8_t)*s++;
		h *= 16777619u;
	}
	return h;
}

static uint32_t hash_str(const char *s)
{
	return hash_mem(s, strlen(s));
}

static struct sample *at(struct stream *s, size_t i)
{
	return &s->ring[(s->head + i) & (s->cap - 1)];
}

static void sum_add(struct stream *s, int w, double x)
{
	double t = s->sum[w] + x;

	if(fabs(s->sum[w]) >= fabs(x)){
		s->comp[w] += (s->sum[w] - t) + x;
	}else{
		s->comp[w] += (x - t) + s->sum[w];
	}
	s->sum[w] = t;
}

static void window_remove(struct stream *s, int w, double x)
{
	assert(s->cnt[w] > 0);
	if(--s->cnt[w] == 0){
		s->sum[w] = s->comp[w] = 0; /* an empty window restarts exact */
	}else{
		sum_add(s, w, -x);
	}
}

static void refresh_first(struct stream *s)
{
	int w;

	for(w = 0; w < KG_STATS_WINDOWS; w++) s->first_t[w] = s->off[w] < s->n ? at(s, s->off[w])->t : INT64_MAX;
}

/* Drop samples that left each window at now. Returns whether anything changed. */
static bool expire(struct kg_stats *st, struct stream *s, int64_t now)
{
	bool changed = false;
	int w;

	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(s->first_t[w] < now - kg_stats_window_ms[w]) break;
	}
	if(w == KG_STATS_WINDOWS) return false; /* nothing to expire: the ring is not touched */
	for(w = 0; w < LONGEST; w++){
		int64_t cutoff = now - kg_stats_window_ms[w];

		while(s->off[w] < s->n && at(s, s->off[w])->t < cutoff){
			window_remove(s, w, at(s, s->off[w])->v);
			s->off[w]++;
			changed = true;
		}
	}
	while(s->n > 0 && at(s, 0)->t < now - kg_stats_window_ms[LONGEST]){
		window_remove(s, LONGEST, at(s, 0)->v);
		for(w = 0; w < LONGEST; w++){
			assert(s->off[w] > 0); /* shorter windows expired it first */
			s->off[w]--;
		}
		s->head = (s->head + 1) & (s->cap - 1);
		s->n--;
		st->c.samples--;
		changed = true;
	}
	refresh_first(s);
	if(changed) s->version++;
	return changed;
}

/* Drop the oldest sample to make room (the stream is at max_samples). */
static void drop_oldest(struct kg_stats *st, struct stream *s)
{
	double v = at(s, 0)->v;
	int w;

	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(s->off[w] == 0){
			window_remove(s, w, v);
		}else{
			s->off[w]--;
		}
	}
	s->head = (s->head + 1) & (s->cap - 1);
	s->n--;
	st->c.samples--;
	st->c.samples_dropped++;
	refresh_first(s);
}

/* Double the ring (a power of two, at most the power of two >= max_samples). 0 or -1. */
static int grow(struct stream *s)
{
	size_t ncap = s->cap ? s->cap * 2 : RING_MIN;
	struct sample *nr = malloc(ncap * sizeof(*nr));
	size_t i;

	if(!nr) return -1;
	for(i = 0; i < s->n; i++) nr[i] = *at(s, i);
	free(s->ring);
	s->ring = nr;
	s->cap = ncap;
	s->head = 0;
	return 0;
}

static void unlink_order(struct kg_stats *st, struct stream *s)
{
	if(s->older) s->older->newer = s->newer; else st->oldest = s->newer;
	if(s->newer) s->newer->older = s->older; else st->newest = s->older;
	s->older = s->newer = NULL;
}

static void link_newest(struct kg_stats *st, struct stream *s)
{
	s->older = st->newest;
	s->newer = NULL;
	if(st->newest) st->newest->newer = s; else st->oldest = s;
	st->newest = s;
}

static void stream_free(struct stream *s)
{
	free(s->ring);
	free(s);
}

/* The group of prefix[0..len), or NULL. */
static struct group *group_find(struct kg_stats *st, const char *prefix, size_t len)
{
	uint32_t h = hash_mem(prefix, len);
	struct group *g;

	for(g = st->gbuckets[h & (st->nbuckets - 1)]; g; g = g->next){
		if(g->hash == h && !strncmp(g->prefix, prefix, len) && g->prefix[len] == '\0') return g;
	}
	return NULL;
}

/* The group of prefix[0..len), created when missing (NULL when out of memory). */
static struct group *group_get(struct kg_stats *st, const char *prefix, size_t len)
{
	uint32_t h = hash_mem(prefix, len);
	struct group *g = group_find(st, prefix, len), **head = &st->gbuckets[h & (st->nbuckets - 1)];

	if(g) return g;
	g = calloc(1, sizeof(*g) + len + 1);
	if(!g) return NULL;
	memcpy(g->prefix, prefix, len);
	g->hash = h;
	g->next = *head;
	*head = g;
	return g;
}

static void group_unlink(struct kg_stats *st, struct stream *s)
{
	struct group *g = s->group, **pp;

	if(!g) return;
	if(s->golder) s->golder->gnewer = s->gnewer; else g->oldest = s->gnewer;
	if(s->gnewer) s->gnewer->golder = s->golder; else g->newest = s->golder;
	s->golder = s->gnewer = NULL;
	s->group = NULL;
	assert(g->n > 0);
	if(--g->n > 0) return;
	for(pp = &st->gbuckets[g->hash & (st->nbuckets - 1)]; *pp != g; pp = &(*pp)->next) assert(*pp);
	*pp = g->next;
	free(g);
}

static void group_link_newest(struct group *g, struct stream *s)
{
	s->group = g;
	s->golder = g->newest;
	s->gnewer = NULL;
	if(g->newest) g->newest->gnewer = s; else g->oldest = s;
	g->newest = s;
	g->n++;
}

/* Take s out of the table; its key waits in the to-clear FIFO (bounded by max_streams: past it
 * the oldest waiting key is forgotten, counted in clear_dropped). */
static void evict(struct kg_stats *st, struct stream *s)
{
	struct stream **pp;

	for(pp = &st->buckets[s->hash & (st->nbuckets - 1)]; *pp != s; pp = &(*pp)->hnext) assert(*pp);
	*pp = s->hnext;
	unlink_order(st, s);
	group_unlink(st, s);
	st->c.samples -= s->n;
	st->c.streams--;
	free(s->ring);
	s->ring = NULL;
	s->n = s->cap = 0;
	s->hnext = NULL;
	if(st->clear_tail) st->clear_tail->hnext = s; else st->clear_head = s;
	st->clear_tail = s;
	if(++st->nclear > st->max_streams){
		struct stream *old = st->clear_head;

		st->clear_head = old->hnext;
		st->nclear--;
		st->c.clear_dropped++;
		free(old);
	}
}

static void evict_oldest(struct kg_stats *st)
{
	assert(st->oldest);
	st->c.evicted++;
	evict(st, st->oldest);
}

static struct stream *lookup(struct kg_stats *st, const char *key, uint32_t h);

struct kg_stats *kg_stats__new(size_t max_streams, size_t max_samples)
{
	struct kg_stats *st;
	size_t nb = 16;

	if(max_streams < 1 || max_samples < 2) return NULL;
	st = calloc(1, sizeof(*st));
	if(!st) return NULL;
	while(nb < max_streams && nb < ((size_t)1 << 20)) nb *= 2;
	st->buckets = calloc(nb, sizeof(*st->buckets));
	st->gbuckets = calloc(nb, sizeof(*st->gbuckets));
	if(!st->buckets || !st->gbuckets){
		free(st->buckets);
		free(st->gbuckets);
		free(st);
		return NULL;
	}
	st->nbuckets = nb;
	st->max_streams = max_streams;
	st->max_samples = max_samples;
	return st;
}

void kg_stats__free(struct kg_stats *st)
{
	struct stream *s, *next;

	if(!st) return;
	for(s = st->oldest; s; s = next){
		next = s->newer;
		group_unlink(st, s);
		stream_free(s);
	}
	for(s = st->clear_head; s; s = next){
		next = s->hnext;
		free(s);
	}
	free(st->buckets);
	free(st->gbuckets);
	free(st);
}

void kg_stats__set_group_limit(struct kg_stats *st, size_t max_per_group)
{
	st->max_per_group = max_per_group;
}

size_t kg_stats__drain_evicted(struct kg_stats *st, void (*cb)(const char *key, void *arg), void *arg)
{
	struct stream *s, *next;
	size_t n = 0;

	s = st->clear_head;
	st->clear_head = st->clear_tail = NULL;
	st->nclear = 0;
	for(; s; s = next){
		next = s->hnext;
		/* live again (re-created since): the next flush publishes its fresh values */
		if(!lookup(st, s->key, s->hash)){
			if(cb) cb(s->key, arg);
			n++;
		}
		free(s);
	}
	return n;
}

static struct stream *lookup(struct kg_stats *st, const char *key, uint32_t h)
{
	struct stream *s;

	for(s = st->buckets[h & (st->nbuckets - 1)]; s; s = s->hnext){
		if(s->hash == h && !strcmp(s->key, key)) return s;
	}
	return NULL;
}

int kg_stats__add(struct kg_stats *st, const char *key, int64_t t_ms, double value, int64_t now_ms)
{
	return kg_stats__add_grouped(st, key, 0, t_ms, value, now_ms);
}

int kg_stats__add_grouped(struct kg_stats *st, const char *key, size_t group_len, int64_t t_ms,
		double value, int64_t now_ms)
{
	uint32_t h = hash_str(key);
	struct stream *s = lookup(st, key, h);
	struct group *g = NULL;
	size_t pos, i;
	int w;

	assert(isfinite(value));
	assert(group_len <= strlen(key));
	if(!s){
		if(t_ms < now_ms - kg_stats_window_ms[LONGEST]){
			st->c.too_old++;
			return 1;
		}
		size_t klen = strlen(key);

		s = calloc(1, sizeof(*s) + klen + 1);
		if(!s || grow(s) != 0){
			free(s);
			return -1;
		}
		memcpy(s->key, key, klen + 1);
		for(w = 0; w < KG_STATS_WINDOWS; w++) s->first_t[w] = INT64_MAX;
		g = group_len && st->max_per_group ? group_find(st, key, group_len) : NULL;
		if(g && g->n >= st->max_per_group){
			/* the group is at its cap: it makes room from its own streams, not everyone's
			 * (this may free g when the cap is 1) */
			st->c.group_evicted++;
			evict(st, g->oldest);
		}else if(st->c.streams >= st->max_streams){
			evict_oldest(st);
		}
		if(group_len && st->max_per_group){
			g = group_get(st, key, group_len);
			if(!g){
				stream_free(s);
				return -1;
			}
			group_link_newest(g, s);
		}
		s->hash = h;
		s->published_at = INT64_MIN / 2;
		s->hnext = st->buckets[h & (st->nbuckets - 1)];
		st->buckets[h & (st->nbuckets - 1)] = s;
		st->c.streams++;
	}else{
		unlink_order(st, s);
		if(s->group){
			g = s->group;
			/* move to the group's newest without touching g->n */
			if(g->newest != s){
				if(s->golder) s->golder->gnewer = s->gnewer; else g->oldest = s->gnewer;
				s->gnewer->golder = s->golder;
				s->golder = g->newest;
				s->gnewer = NULL;
				g->newest->gnewer = s;
				g->newest = s;
			}
		}
	}
	link_newest(st, s);
	expire(st, s, now_ms);
	if(t_ms < now_ms - kg_stats_window_ms[LONGEST]){
		st->c.too_old++;
		return 1;
	}
	if(s->n == s->cap && s->cap < st->max_samples && grow(s) != 0) return -1;
	if(s->n == st->max_samples || s->n == s->cap) drop_oldest(st, s);

	/* Insert in time order: O(1) for in-order samples. */
	pos = s->n;
	while(pos > 0 && at(s, pos - 1)->t > t_ms) pos--;
	for(i = s->n; i > pos; i--) *at(s, i) = *at(s, i - 1);
	at(s, pos)->t = t_ms;
	at(s, pos)->v = value;
	s->n++;
	st->c.samples++;
	st->c.added++;
	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(t_ms >= now_ms - kg_stats_window_ms[w]){
			assert(pos >= s->off[w]);
			sum_add(s, w, value);
			s->cnt[w]++;
			if(pos == s->off[w]) s->first_t[w] = t_ms; /* the window's new first sample */
		}else{
			assert(pos <= s->off[w]);
			s->off[w]++; /* inserted before the window's first sample */
		}
	}
	if(!s->has_latest || t_ms >= s->latest_at){
		s->has_latest = true;
		s->latest = value;
		s->latest_at = t_ms;
	}
	s->version++;
	return 0;
}

void kg_stats__ignored(struct kg_stats *st)
{
	st->c.ignored++;
}

static void view_of(const struct stream *s, struct kg_stats_view *v)
{
	int w;

	v->key = s->key;
	for(w = 0; w < KG_STATS_WINDOWS; w++){
		v->count[w] = s->cnt[w];
		v->avg[w] = s->cnt[w] ? (s->sum[w] + s->comp[w]) / (double)s->cnt[w] : 0;
	}
	v->has_latest = s->has_latest;
	v->latest = s->latest;
	v->latest_at = s->latest_at;
}

size_t kg_stats__flush(struct kg_stats *st, int64_t now_ms, int64_t min_interval_ms,
		void (*cb)(const struct kg_stats_view *v, void *arg), void *arg)
{
	struct kg_stats_view v;
	struct stream *s;
	size_t n = 0;

	for(s = st->newest; s; s = s->older){
		expire(st, s, now_ms);
		if(s->version == s->published_version || now_ms - s->published_at < min_interval_ms) continue;
		view_of(s, &v);
		s->published_version = s->version;
		s->published_at = now_ms;
		st->c.published++;
		n++;
		if(cb) cb(&v, arg);
	}
	return n;
}

void kg_stats__foreach(const struct kg_stats *st, void (*cb)(const struct kg_stats_view *v, void *arg), void *arg)
{
	struct kg_stats_view v;
	const struct stream *s;

	for(s = st->newest; s; s = s->older){
		view_of(s, &v);
		cb(&v, arg);
	}
}

void kg_stats__counters(const struct kg_stats *st, struct kg_stats_counters *out)
{
	*out = st->c;
}

size_t kg_stats__format_json(const struct kg_stats_view *v, char *buf, size_t cap)
{
	static const char *const names[KG_STATS_WINDOWS] = { "1min", "5min", "30min" };
	char num[KG_STATS_WINDOWS][32], latest[32];
	int w, n;

	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(v->count[w]) kg_numfmt__double(v->avg[w], num[w]); else strcpy(num[w], "null");
	}
	if(v->has_latest) kg_numfmt__double(v->latest, latest); else strcpy(latest, "null");
	n = snprintf(buf, cap, "{\"avg_%s\":%s,\"avg_%s\":%s,\"avg_%s\":%s,\"count_%s\":%llu,"
			"\"count_%s\":%llu,\"count_%s\":%llu,\"latest\":%s,\"latest_at\":",
			names[0], num[0], names[1], num[1], names[2], num[2],
			names[0], (unsigned long long)v->count[0], names[1], (unsigned long long)v->count[1],
			names[2], (unsigned long long)v->count[2], latest);
	if(n < 0) return 0;
	if(v->has_latest){
		n += snprintf((size_t)n < cap ? buf + n : NULL, (size_t)n < cap ? cap - (size_t)n : 0,
				"%lld}", (long long)v->latest_at);
	}else{
		n += snprintf((size_t)n < cap ? buf + n : NULL, (size_t)n < cap ? cap - (size_t)n : 0, "null}");
	}
	return (size_t)n;
}

int kg_stats__parse_value(const void *payload, size_t len, size_t max_len, const char *field, double *out)
{
	char tmp[64], *end;
	const char *p = payload;
	cJSON *root, *item;
	double d;
	size_t i = 0;

	if(!payload || len == 0) return -1;
	if(max_len && len > max_len) return -1; /* never parse a huge JSON on the broker thread */
	while(i < len && isspace((unsigned char)p[i])) i++;
	if(i < len && p[i] != '{'){
		size_t n = len - i;

		if(n >= sizeof(tmp)) return -1;
		memcpy(tmp, p + i, n);
		tmp[n] = '\0';
		d = strtod(tmp, &end);
		while(*end && isspace((unsigned char)*end)) end++;
		if(end == tmp || *end || !isfinite(d)) return -1;
		*out = d;
		return 0;
	}
	root = cJSON_ParseWithLength(p, len);
	if(!root) return -1;
	item = cJSON_GetObjectItemCaseSensitive(root, field);
	if(!cJSON_IsNumber(item) || !isfinite(item->valuedouble)){
		cJSON_Delete(root);
		return -1;
	}
	*out = item->valuedouble;
	cJSON_Delete(root);
	return 0;
}
