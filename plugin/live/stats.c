/* stats.c -- rolling 1/5/30-minute exact means per stream: a time-sorted ring of samples per
 * stream (12 bytes a sample: the double and a 32-bit ms offset from a per-ring base; 16 bytes
 * while a stream's samples span more than 24 days) sized to what the window holds, with one
 * compensated running sum and a start index per window; the streams in a kg_lru
 * map (its order the least-recently-updated order for eviction), each group's streams in a kg_lru
 * list. Contract and memory bounds in stats.h. */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/lru.h"
#include "kitgate/numfmt.h"
#include "kitgate/stats.h"

const int64_t kg_stats_window_ms[KG_STATS_WINDOWS] = { 60000, 300000, 1800000 };
#define LONGEST (KG_STATS_WINDOWS - 1)
#define RING_MIN 8

/* Fleet scale (issue 20): a stream is ~2.3 KB at 0.1 Hz once its 30 minutes are full (181 samples
 * of 12 bytes in a ring of at most 25 % more, plus this struct and its key), 4.4 KB before.
 *
 * What a flush visits (issue 20: it used to walk every stream 4 times a second, 8 % of the broker
 * thread at 5,000 kits): a stream is in at most one of two queues, by qwhere:
 * - Q_DIRTY, the dirty list: changed (by an add, or by a sample leaving a window) since it was last
 *   handed out. Every flush walks it: expires each member to now and hands it out once min_interval
 *   has passed since its last publish (until then it stays, so a changed stream is visited at most
 *   min_interval / the flush period + 1 times).
 * - Q_WHEEL, the expiry wheel: unchanged since handed out, some window not empty. Filed under the
 *   tick (WHEEL_MS) of its due time, the first `now` at which a window's oldest sample has left it
 *   (min over w of first_t[w] + W[w] + 1); WHEEL_SLOTS slots cover 35 minutes, a stream due later
 *   waits in its slot for later turns (checked exactly each time its slot is looked at).
 * - Q_NONE: unchanged, every window empty: nothing can happen to it until the next add.
 * A flush looks at the slots of the ticks wheel_lo..now (every slot once when that is more than a
 * turn: a wall clock step forward), moves the streams due by now (exact check) to the dirty list and
 * sets wheel_lo to now's tick; a stream filed with a due tick below wheel_lo lowers it. Invariant:
 * every stream in the wheel is due at a tick >= wheel_lo, so a wall clock step back (now below
 * wheel_lo) finds nothing due, which is exact (the old full scan expired nothing there either), and a
 * stream filed during the step back is found when its own tick comes. So a flush visits the dirty
 * streams, plus the streams filed in the slots of the ticks since the last flush (those due, and
 * those due later in the same tick or in a later turn): O(changed + due), not O(streams).
 * The order of the handed-out views is that of the old full scan: most recently updated first (seq,
 * the order of kg_stats.streams). */
#define WHEEL_SHIFT 8                        /* ticks of 256 ms: about the flush period */
#define WHEEL_MS ((int64_t)1 << WHEEL_SHIFT)
#define WHEEL_SLOTS 8192                     /* 8192 x 256 ms: 35 minutes, > the longest window */
enum { Q_NONE = 0, Q_WHEEL, Q_DIRTY };

struct group;

struct stream {
	/* first 64 bytes: all that a flush reads of a stream it only checks (in a wheel slot, not due) */
	struct stream *qnext;          /* in a wheel slot's list or the dirty list (qwhere) */
	struct stream **qpprev;        /* &the previous one's qnext, or &the list's head */
	int64_t first_t[KG_STATS_WINDOWS]; /* time of each window's first sample (INT64_MAX: empty), so that
	                                    * the common case of add/flush (nothing to expire) stays here */
	int64_t published_at;          /* flush's mono_ms when last handed out */
	uint64_t seq;                  /* kg_stats.seq at its last add: the order of kg_stats.streams */
	struct kg_lru_node node;       /* in kg_stats.streams (eviction takes the oldest); after
	                                * eviction: in kg_stats.clearq */
	struct group *group;           /* NULL: in no group */
	struct kg_lru_node gnode;      /* in group->members: update order within the group */
	double *val;                   /* the ring, sorted by time, oldest at head: cap values, then */
	void *tim;                     /* cap times: int32_t ms offsets from base, or int64_t ms when wide
	                                * (val and tim are one allocation; NULL when cap == 0) */
	int64_t base;
	uint32_t cap, head, n;
	bool wide, has_latest;
	uint8_t qwhere;                /* Q_NONE, Q_WHEEL or Q_DIRTY */
	uint32_t off[KG_STATS_WINDOWS]; /* logical index of the first sample in each window (off[LONGEST] == 0) */
	uint32_t cnt[KG_STATS_WINDOWS]; /* samples in each window (<= n) */
	double sum[KG_STATS_WINDOWS], comp[KG_STATS_WINDOWS]; /* Neumaier-compensated sums */
	double latest;
	int64_t latest_at;
	char key[];                    /* NUL-terminated, allocated with the struct */
};
static_assert(offsetof(struct stream, first_t) + sizeof(int64_t) * KG_STATS_WINDOWS <= 64, "a wheel check's fields in the first 64 bytes");
/* 256 bytes: the queue links (16) and seq (8) replaced the two versions (8): +16 bytes per stream
 * (240 before), plus the wheel (WHEEL_SLOTS pointers, 64 KiB per table) and flush's scratch array
 * (a pointer per stream handed out in one flush, kept for the next) */
static_assert(sizeof(struct stream) <= 256, "struct stream grew (fleet scale: one per kit stream)");

/* Streams sharing a key prefix (a kit's "kit/<serial>/"), capped at max_per_group. */
struct group {
	struct kg_lru_node node;       /* in kg_stats.groups, keyed by prefix */
	struct kg_lru members;         /* its streams (a list), by gnode; freed when it empties */
	char prefix[];                 /* NUL-terminated */
};

struct kg_stats {
	struct kg_lru streams;         /* by key; newest: the most recently updated */
	struct kg_lru groups;          /* by prefix (the order is not used) */
	struct kg_lru clearq;          /* a list: evicted streams (ring freed) whose key awaits clearing */
	size_t max_streams, max_samples, max_per_group; /* max_samples <= UINT32_MAX */
	struct kg_stats_counters c;    /* c.streams is kept in streams' count */
	struct stream *dirty;          /* the dirty list (Q_DIRTY) */
	struct stream **wheel;         /* WHEEL_SLOTS lists (Q_WHEEL) */
	int64_t wheel_lo;              /* every stream in the wheel is due at a tick >= wheel_lo */
	uint64_t seq;                  /* adds so far (stream.seq) */
	struct stream **pub;           /* flush's scratch: the streams it hands out */
	size_t pubcap;
};

static const char *stream_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct stream, node)->key;
}

static const char *group_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct group, node)->prefix;
}

static struct stream *stream_of(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct stream, node);
}

/* The ring slot of logical index i (< cap). */
static size_t slot(const struct stream *s, size_t i)
{
	size_t j = s->head + i;

	return j >= s->cap ? j - s->cap : j;
}

static int64_t t_at(const struct stream *s, size_t i)
{
	size_t j = slot(s, i);

	return s->wide ? ((const int64_t *)s->tim)[j] : s->base + ((const int32_t *)s->tim)[j];
}

static double v_at(const struct stream *s, size_t i)
{
	return s->val[slot(s, i)];
}

/* Whether t can be stored in the ring as it is (see fit_time). */
static bool fits(const struct stream *s, int64_t t)
{
	int64_t d;

	return s->wide || (!__builtin_sub_overflow(t, s->base, &d) && d >= INT32_MIN && d <= INT32_MAX);
}

/* Store (t, v) at logical index i; fits(s, t). */
static void put(struct stream *s, size_t i, int64_t t, double v)
{
	size_t j = slot(s, i);

	s->val[j] = v;
	if(s->wide) ((int64_t *)s->tim)[j] = t; else ((int32_t *)s->tim)[j] = (int32_t)(t - s->base);
}

/* Whether times lo..hi (lo <= hi) fit one narrow ring. */
static bool span_fits(int64_t lo, int64_t hi)
{
	int64_t d;

	return !__builtin_sub_overflow(hi, lo, &d) && d <= INT32_MAX;
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

	for(w = 0; w < KG_STATS_WINDOWS; w++) s->first_t[w] = s->off[w] < s->n ? t_at(s, s->off[w]) : INT64_MAX;
}

static int resize(struct kg_stats *st, struct stream *s, size_t ncap, bool force_wide);

/* The first now at which expire(s, now) changes something (a window's oldest sample has left it:
 * now - W > first_t), or INT64_MAX when every window is empty. */
static int64_t due_of(const struct stream *s)
{
	int64_t due = INT64_MAX, d;
	int w;

	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(s->first_t[w] != INT64_MAX && !__builtin_add_overflow(s->first_t[w], kg_stats_window_ms[w] + 1, &d) && d < due) due = d;
	}
	return due;
}

/* The wheel tick of time t: floor(t / WHEEL_MS). */
static int64_t tick_of(int64_t t)
{
	int64_t q = t / WHEEL_MS;

	return t % WHEEL_MS < 0 ? q - 1 : q;
}

static struct stream **wheel_slot(struct kg_stats *st, int64_t tick)
{
	return &st->wheel[(uint64_t)tick & (WHEEL_SLOTS - 1)];
}

static void q_unlink(struct stream *s)
{
	if(s->qwhere == Q_NONE) return;
	*s->qpprev = s->qnext;
	if(s->qnext) s->qnext->qpprev = s->qpprev;
	s->qnext = NULL;
	s->qpprev = NULL;
	s->qwhere = Q_NONE;
}

static void q_push(struct stream **head, struct stream *s, uint8_t where)
{
	assert(s->qwhere == Q_NONE);
	s->qnext = *head;
	if(*head) (*head)->qpprev = &s->qnext;
	*head = s;
	s->qpprev = head;
	s->qwhere = where;
}

/* s changed since it was handed out: into the dirty list (every flush visits it until then). */
static void mark_dirty(struct kg_stats *st, struct stream *s)
{
	if(s->qwhere == Q_DIRTY) return;
	q_unlink(s);
	q_push(&st->dirty, s, Q_DIRTY);
}

/* s was just handed out: into the wheel under its due tick (nowhere when its windows are empty). */
static void file_due(struct kg_stats *st, struct stream *s)
{
	int64_t due = due_of(s), tick;

	q_unlink(s);
	if(due == INT64_MAX) return;
	tick = tick_of(due);
	if(tick < st->wheel_lo) st->wheel_lo = tick;
	q_push(wheel_slot(st, tick), s, Q_WHEEL);
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

		while(s->off[w] < s->n && t_at(s, s->off[w]) < cutoff){
			window_remove(s, w, v_at(s, s->off[w]));
			s->off[w]++;
			changed = true;
		}
	}
	while(s->n > 0 && t_at(s, 0) < now - kg_stats_window_ms[LONGEST]){
		window_remove(s, LONGEST, v_at(s, 0));
		for(w = 0; w < LONGEST; w++){
			assert(s->off[w] > 0); /* shorter windows expired it first */
			s->off[w]--;
		}
		s->head = (uint32_t)slot(s, 1);
		s->n--;
		st->c.samples--;
		changed = true;
	}
	/* a quarter full: shrink to twice what it holds (nothing held: no ring); may fail: kept */
	if(changed && s->cap > RING_MIN && s->n < s->cap / 4) resize(st, s, s->n ? 2 * (size_t)s->n : 0, false);
	refresh_first(s);
	return changed;
}

/* Drop the oldest sample to make room (the stream is at max_samples). */
static void drop_oldest(struct kg_stats *st, struct stream *s)
{
	double v = v_at(s, 0);
	int w;

	for(w = 0; w < KG_STATS_WINDOWS; w++){
		if(s->off[w] == 0){
			window_remove(s, w, v);
		}else{
			s->off[w]--;
		}
	}
	s->head = (uint32_t)slot(s, 1);
	s->n--;
	st->c.samples--;
	st->c.samples_dropped++;
	refresh_first(s);
}

static size_t ring_bytes(size_t cap, bool wide)
{
	return cap * (sizeof(double) + (wide ? sizeof(int64_t) : sizeof(int32_t)));
}

/* Reallocate the ring to ncap (>= n; 0 frees it) slots, holding the same samples: narrow (the base
 * then the oldest sample's time) unless force_wide or their span needs 64-bit times. 0, or -1 on
 * out of memory (nothing changed). */
static int resize(struct kg_stats *st, struct stream *s, size_t ncap, bool force_wide)
{
	bool wide = force_wide || (s->n > 0 && !span_fits(t_at(s, 0), t_at(s, s->n - 1)));
	double *nv = NULL;
	void *nt = NULL;
	int64_t nbase = s->n > 0 ? t_at(s, 0) : 0;
	size_t i;

	assert(ncap >= s->n && ncap <= UINT32_MAX);
	if(ncap){
		nv = malloc(ring_bytes(ncap, wide));
		if(!nv) return -1;
		nt = nv + ncap;
	}
	for(i = 0; i < s->n; i++){
		int64_t t = t_at(s, i);

		nv[i] = v_at(s, i);
		if(wide) ((int64_t *)nt)[i] = t; else ((int32_t *)nt)[i] = (int32_t)(t - nbase);
	}
	st->c.ring_bytes -= ring_bytes(s->cap, s->wide);
	st->c.ring_bytes += ring_bytes(ncap, wide);
	free(s->val);
	s->val = nv;
	s->tim = nt;
	s->cap = (uint32_t)ncap;
	s->head = 0;
	s->wide = wide;
	s->base = nbase;
	return 0;
}

/* Grow a full ring by a quarter (at least to RING_MIN slots, at most max_samples): 0 or -1. */
static int grow(struct kg_stats *st, struct stream *s)
{
	size_t ncap = s->cap < RING_MIN ? RING_MIN : s->cap + s->cap / 4;

	if(ncap > st->max_samples) ncap = st->max_samples;
	return resize(st, s, ncap, false);
}

/* Make t storable in the ring: an empty ring takes t as its base, a narrow one is rebased in
 * place when the span of its samples and t fits 32 bits, else it becomes wide. 0, or -1 on out of
 * memory (nothing changed). */
static int fit_time(struct kg_stats *st, struct stream *s, int64_t t)
{
	int64_t lo = t, hi = t, shift;
	size_t i;

	if(fits(s, t)) return 0;
	if(s->n == 0){
		s->base = t;
		return 0;
	}
	if(t_at(s, 0) < lo) lo = t_at(s, 0);
	if(t_at(s, s->n - 1) > hi) hi = t_at(s, s->n - 1);
	if(!span_fits(lo, hi)) return resize(st, s, s->cap, true);
	shift = s->base - lo; /* every held offset + shift is its time - lo, in [0, INT32_MAX] */
	for(i = 0; i < s->n; i++){
		int32_t *o = &((int32_t *)s->tim)[slot(s, i)];

		*o = (int32_t)(*o + shift);
	}
	s->base = lo;
	return 0;
}

static void stream_free(struct kg_stats *st, struct stream *s)
{
	st->c.ring_bytes -= ring_bytes(s->cap, s->wide);
	free(s->val);
	free(s);
}

/* The group of prefix[0..len), or NULL. */
static struct group *group_find(struct kg_stats *st, const char *prefix, size_t len)
{
	return KG_LRU_ENTRY(kg_lru__find(&st->groups, prefix, len), struct group, node);
}

/* The group of prefix[0..len), created when missing (NULL when out of memory). */
static struct group *group_get(struct kg_stats *st, const char *prefix, size_t len)
{
	struct group *g = group_find(st, prefix, len);

	if(g) return g;
	g = calloc(1, sizeof(*g) + len + 1);
	if(!g) return NULL;
	memcpy(g->prefix, prefix, len);
	kg_lru__init(&g->members, 0, NULL); /* a list: allocates nothing */
	kg_lru__insert(&st->groups, &g->node);
	return g;
}

static void group_unlink(struct kg_stats *st, struct stream *s)
{
	struct group *g = s->group;

	if(!g) return;
	kg_lru__remove(&g->members, &s->gnode);
	s->group = NULL;
	if(kg_lru__count(&g->members) > 0) return;
	kg_lru__remove(&st->groups, &g->node);
	free(g);
}

/* Take s out of the table; its key waits in the to-clear queue (bounded by max_streams: past it
 * the oldest waiting key is forgotten, counted in clear_dropped). */
static void evict(struct kg_stats *st, struct stream *s)
{
	q_unlink(s);
	kg_lru__remove(&st->streams, &s->node);
	group_unlink(st, s);
	st->c.samples -= s->n;
	st->c.ring_bytes -= ring_bytes(s->cap, s->wide);
	free(s->val);
	s->val = NULL;
	s->tim = NULL;
	s->n = s->cap = 0;
	kg_lru__insert(&st->clearq, &s->node);
	if(kg_lru__count(&st->clearq) > st->max_streams){
		struct kg_lru_node *old = kg_lru__oldest(&st->clearq);

		kg_lru__remove(&st->clearq, old);
		st->c.clear_dropped++;
		free(stream_of(old));
	}
}

static void evict_oldest(struct kg_stats *st)
{
	assert(kg_lru__oldest(&st->streams));
	st->c.evicted++;
	evict(st, stream_of(kg_lru__oldest(&st->streams)));
}

static struct stream *lookup(struct kg_stats *st, const char *key)
{
	return stream_of(kg_lru__find(&st->streams, key, strlen(key)));
}

struct kg_stats *kg_stats__new(size_t max_streams, size_t max_samples)
{
	struct kg_stats *st;

	if(max_streams < 1 || max_samples < 2) return NULL;
	st = calloc(1, sizeof(*st));
	if(!st) return NULL;
	kg_lru__init(&st->clearq, 0, NULL); /* a list: allocates nothing */
	if(kg_lru__init_growing(&st->streams, max_streams, stream_key) != 0 ||
			kg_lru__init_growing(&st->groups, max_streams, group_key) != 0){
		kg_lru__fini(&st->streams);
		free(st);
		return NULL;
	}
	st->wheel = calloc(WHEEL_SLOTS, sizeof(*st->wheel));
	if(!st->wheel){
		kg_lru__fini(&st->streams);
		kg_lru__fini(&st->groups);
		free(st);
		return NULL;
	}
	st->wheel_lo = INT64_MAX;
	st->max_streams = max_streams;
	st->max_samples = max_samples;
	return st;
}

void kg_stats__free(struct kg_stats *st)
{
	struct kg_lru_node *n, *newer;

	if(!st) return;
	for(n = kg_lru__oldest(&st->streams); n; n = newer){
		newer = n->newer;
		group_unlink(st, stream_of(n));
		stream_free(st, stream_of(n));
	}
	for(n = kg_lru__oldest(&st->clearq); n; n = newer){
		newer = n->newer;
		free(stream_of(n));
	}
	kg_lru__fini(&st->streams);
	kg_lru__fini(&st->groups);
	free(st->wheel);
	free(st->pub);
	free(st);
}

void kg_stats__set_group_limit(struct kg_stats *st, size_t max_per_group)
{
	st->max_per_group = max_per_group;
}

size_t kg_stats__drain_evicted(struct kg_stats *st, void (*cb)(const char *key, void *arg), void *arg)
{
	struct kg_lru_node *old;
	size_t n = 0;

	while((old = kg_lru__oldest(&st->clearq)) != NULL){
		struct stream *s = stream_of(old);

		kg_lru__remove(&st->clearq, old);
		/* live again (re-created since): the next flush publishes its fresh values */
		if(!lookup(st, s->key)){
			if(cb) cb(s->key, arg);
			n++;
		}
		free(s);
	}
	return n;
}

int kg_stats__add(struct kg_stats *st, const char *key, int64_t t_ms, double value, int64_t now_ms)
{
	return kg_stats__add_grouped(st, key, 0, t_ms, value, now_ms);
}

int kg_stats__add_grouped(struct kg_stats *st, const char *key, size_t group_len, int64_t t_ms,
		double value, int64_t now_ms)
{
	struct stream *s = lookup(st, key);
	struct group *g = NULL;
	size_t pos, i;
	bool changed;
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
		if(!s || grow(st, s) != 0){
			free(s);
			return -1;
		}
		memcpy(s->key, key, klen + 1);
		for(w = 0; w < KG_STATS_WINDOWS; w++) s->first_t[w] = INT64_MAX;
		g = group_len && st->max_per_group ? group_find(st, key, group_len) : NULL;
		if(g && kg_lru__count(&g->members) >= st->max_per_group){
			/* the group is at its cap: it makes room from its own streams, not everyone's
			 * (this may free g when the cap is 1) */
			st->c.group_evicted++;
			evict(st, KG_LRU_ENTRY(kg_lru__oldest(&g->members), struct stream, gnode));
		}else if(kg_lru__count(&st->streams) >= st->max_streams){
			evict_oldest(st);
		}
		if(group_len && st->max_per_group){
			g = group_get(st, key, group_len);
			if(!g){
				stream_free(st, s);
				return -1;
			}
			s->group = g;
			kg_lru__insert(&g->members, &s->gnode);
		}
		s->published_at = INT64_MIN / 2;
		kg_lru__insert(&st->streams, &s->node);
	}else{
		kg_lru__touch(&st->streams, &s->node);
		if(s->group) kg_lru__touch(&s->group->members, &s->gnode);
	}
	s->seq = ++st->seq; /* the newest in st->streams */
	/* a change (expiry here, or the sample) puts it in the dirty list; an unchanged stream keeps
	 * its place (its first_t, hence its due time, did not change) */
	changed = expire(st, s, now_ms);
	if(t_ms < now_ms - kg_stats_window_ms[LONGEST]){
		st->c.too_old++;
		if(changed) mark_dirty(st, s);
		return 1;
	}
	if((s->n == s->cap && s->cap < st->max_samples && grow(st, s) != 0) || fit_time(st, s, t_ms) != 0){
		if(changed) mark_dirty(st, s);
		return -1;
	}
	if(s->n == st->max_samples || s->n == s->cap) drop_oldest(st, s);

	/* Insert in time order: O(1) for in-order samples. */
	pos = s->n;
	while(pos > 0 && t_at(s, pos - 1) > t_ms) pos--;
	for(i = s->n; i > pos; i--) put(s, i, t_at(s, i - 1), v_at(s, i - 1));
	put(s, pos, t_ms, value);
	s->n++;
	st->c.samples++;
	st->c.added++;
	for(w = 0; w < KG_STATS_WINDOWS; w++){
		/* in the window by its time, unless it lands among samples that already left it: after a
		 * wall clock step back, the windows keep what they expired (a window stays the samples
		 * from off[w] on; before, this case failed the assert, or corrupted the window without it) */
		if(t_ms >= now_ms - kg_stats_window_ms[w] && pos >= s->off[w]){
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
	mark_dirty(st, s);
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
	return kg_stats__flush_at(st, now_ms, now_ms, min_interval_ms, cb, arg);
}

/* Most recently updated first: the order of st->streams (seq grows with every add). */
static int newest_first(const void *a, const void *b)
{
	const struct stream *x = *(struct stream *const *)a, *y = *(struct stream *const *)b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

size_t kg_stats__flush_at(struct kg_stats *st, int64_t now_ms, int64_t mono_ms, int64_t min_interval_ms,
		void (*cb)(const struct kg_stats_view *v, void *arg), void *arg)
{
	struct kg_stats_view v;
	struct stream *s, *next;
	int64_t now_tick = tick_of(now_ms), t;
	uint64_t visits = 0;
	size_t count = 0, npub = 0, i;

	/* 1. the wheel: the streams due by now join the dirty list; the others stay in their slot */
	if(now_tick >= st->wheel_lo){
		t = st->wheel_lo;
		if(t <= now_tick - WHEEL_SLOTS) t = now_tick - WHEEL_SLOTS + 1; /* a step forward: each slot once */
		for(; t <= now_tick; t++){
			for(s = *wheel_slot(st, t); s; s = next){
				next = s->qnext;
				if(due_of(s) <= now_ms) mark_dirty(st, s); /* visited there */
				else visits++; /* looked at, not due yet */
			}
		}
		st->wheel_lo = now_tick; /* what stays is due after now: at now's tick or later */
	}
	/* 2. the dirty list: expire to now; those whose min_interval has passed are handed out */
	for(s = st->dirty; s; s = next){
		next = s->qnext;
		visits++;
		expire(st, s, now_ms);
		if(mono_ms - s->published_at < min_interval_ms) continue; /* stays dirty */
		if(npub == st->pubcap){
			size_t ncap = st->pubcap ? 2 * st->pubcap : 64;
			struct stream **np = realloc(st->pub, ncap * sizeof(*np));

			if(!np) continue; /* out of memory: stays dirty, handed out by a later flush */
			st->pub = np;
			st->pubcap = ncap;
		}
		q_unlink(s);
		st->pub[npub++] = s;
	}
	/* 3. hand them out in the order of the full scan this replaces; each waits in the wheel again */
	if(npub > 1) qsort(st->pub, npub, sizeof(*st->pub), newest_first);
	for(i = 0; i < npub; i++){
		s = st->pub[i];
		view_of(s, &v);
		s->published_at = mono_ms;
		file_due(st, s);
		st->c.published++;
		count++;
		if(cb) cb(&v, arg);
	}
	st->c.flush_visits += visits;
	st->c.flushes++;
	return count;
}

void kg_stats__foreach(const struct kg_stats *st, void (*cb)(const struct kg_stats_view *v, void *arg), void *arg)
{
	struct kg_stats_view v;
	const struct kg_lru_node *n;

	for(n = kg_lru__newest(&st->streams); n; n = n->older){
		view_of(stream_of(n), &v);
		cb(&v, arg);
	}
}

void kg_stats__counters(const struct kg_stats *st, struct kg_stats_counters *out)
{
	*out = st->c;
	out->streams = kg_lru__count(&st->streams);
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
