/* kitdir.c -- the live view's kit directory: kits' and streams' JSON by serial/topic (kg_lru maps
 * under one mutex), written one entry at a time by the broker thread, paged and searched by the
 * HTTP threads through a sorted index of serials they rebuild themselves. Contract in kitdir.h. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/json.h"
#include "kitgate/kitdir.h"
#include "kitgate/textbuf.h"
#include "kitgate/lru.h"
#include "kitgate/record.h"

#define CID_MAX 128

struct dstream {
	struct dstream *next;          /* a kit's list */
	struct kg_lru_node node;       /* generic streams only: the map by topic */
	char *topic;
	char *json;                    /* {"topic":…,[peripheral, quantity_type,] avg…} */
	size_t len;
};

struct dkit {
	struct kg_lru_node node;
	char serial[KG_SERIAL_MAX + 1];
	char *json;                    /* NULL: only streams so far (not listed) */
	size_t len;
	struct dstream *streams;
	size_t nstreams;
};

struct dcid {
	struct kg_lru_node node;
	char cid[CID_MAX + 1];
	char serial[KG_SERIAL_MAX + 1];
};

struct kg_kitdir {
	pthread_mutex_t lock;
	struct kg_lru kits, generic, cids;
	size_t listed;                 /* kits with a status */
	size_t max_cids;
	uint64_t gen;                  /* changes when the set of listed kits changes */
	/* the sorted index, the readers' own */
	pthread_mutex_t index_lock;
	char (*sorted)[KG_SERIAL_MAX + 1];
	size_t nsorted;
	uint64_t sorted_gen;
	int64_t sorted_at;
	bool has_index;
};

static const char *dkit_key(const struct kg_lru_node *n) { return KG_LRU_ENTRY(n, struct dkit, node)->serial; }
static const char *dstream_key(const struct kg_lru_node *n) { return KG_LRU_ENTRY(n, struct dstream, node)->topic; }
static const char *dcid_key(const struct kg_lru_node *n) { return KG_LRU_ENTRY(n, struct dcid, node)->cid; }

struct kg_kitdir *kg_kitdir__new(size_t max_kits)
{
	struct kg_kitdir *d = calloc(1, sizeof(*d));

	if(!d) return NULL;
	if(kg_lru__init_growing(&d->kits, max_kits, dkit_key) != 0) goto fail0;
	if(kg_lru__init(&d->generic, 1024, dstream_key) != 0) goto fail1;
	if(kg_lru__init_growing(&d->cids, max_kits, dcid_key) != 0) goto fail2;
	d->max_cids = 4 * (max_kits ? max_kits : 1);
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->index_lock, NULL);
	return d;
fail2:
	kg_lru__fini(&d->generic);
fail1:
	kg_lru__fini(&d->kits);
fail0:
	free(d);
	return NULL;
}

static void stream_free(struct dstream *s)
{
	free(s->topic);
	free(s->json);
	free(s);
}

static void dkit_free(struct dkit *k)
{
	struct dstream *s, *next;

	for(s = k->streams; s; s = next){
		next = s->next;
		stream_free(s);
	}
	free(k->json);
	free(k);
}

void kg_kitdir__free(struct kg_kitdir *d)
{
	struct kg_lru_node *n, *newer;

	if(!d) return;
	for(n = kg_lru__oldest(&d->kits); n; n = newer){
		newer = n->newer;
		dkit_free(KG_LRU_ENTRY(n, struct dkit, node));
	}
	for(n = kg_lru__oldest(&d->generic); n; n = newer){
		newer = n->newer;
		stream_free(KG_LRU_ENTRY(n, struct dstream, node));
	}
	for(n = kg_lru__oldest(&d->cids); n; n = newer){
		newer = n->newer;
		free(KG_LRU_ENTRY(n, struct dcid, node));
	}
	kg_lru__fini(&d->kits);
	kg_lru__fini(&d->generic);
	kg_lru__fini(&d->cids);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->index_lock);
	free(d->sorted);
	free(d);
}

/* ---- writers ---------------------------------------------------------------------------------- */

static struct dkit *kit_get(struct kg_kitdir *d, const char *serial, size_t slen)
{
	struct dkit *k = KG_LRU_ENTRY(kg_lru__find(&d->kits, serial, slen), struct dkit, node);

	if(k || slen == 0 || slen > KG_SERIAL_MAX) return k;
	k = calloc(1, sizeof(*k));
	if(!k) return NULL;
	memcpy(k->serial, serial, slen);
	kg_lru__insert(&d->kits, &k->node);
	return k;
}

static void cid_put(struct kg_kitdir *d, const char *cid, const char *serial)
{
	size_t n = strlen(cid);
	struct dcid *c;

	if(n == 0 || n > CID_MAX) return;
	c = KG_LRU_ENTRY(kg_lru__find(&d->cids, cid, n), struct dcid, node);
	if(!c){
		if(kg_lru__count(&d->cids) >= d->max_cids){
			c = KG_LRU_ENTRY(kg_lru__oldest(&d->cids), struct dcid, node);
			kg_lru__remove(&d->cids, &c->node);
		}else if(!(c = calloc(1, sizeof(*c)))){
			return;
		}
		memcpy(c->cid, cid, n + 1);
		kg_lru__insert(&d->cids, &c->node);
	}else{
		kg_lru__touch(&d->cids, &c->node);
	}
	snprintf(c->serial, sizeof(c->serial), "%s", serial);
}

void kg_kitdir__put_kit(struct kg_kitdir *d, const char *serial, const char *json, size_t len,
		const char *const *cids, size_t ncids)
{
	char *copy = malloc(len + 1);
	struct dkit *k;
	size_t i;

	if(!copy) return;
	memcpy(copy, json, len);
	copy[len] = '\0';
	pthread_mutex_lock(&d->lock);
	k = kit_get(d, serial, strlen(serial));
	if(k){
		if(!k->json){
			d->listed++;
			d->gen++;
		}
		free(k->json);
		k->json = copy;
		k->len = len;
		copy = NULL;
		for(i = 0; i < ncids; i++) if(cids[i]) cid_put(d, cids[i], serial);
	}
	pthread_mutex_unlock(&d->lock);
	free(copy);
}

void kg_kitdir__remove_kit(struct kg_kitdir *d, const char *serial)
{
	struct dkit *k;

	pthread_mutex_lock(&d->lock);
	k = KG_LRU_ENTRY(kg_lru__find(&d->kits, serial, strlen(serial)), struct dkit, node);
	if(k){
		kg_lru__remove(&d->kits, &k->node);
		if(k->json){
			d->listed--;
			d->gen++;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if(k) dkit_free(k);
}

/* "kit/<serial>/stats/<p>/<q>": the serial's span, and p and q. */
static bool kit_stream(const char *topic, const char **serial, size_t *slen, long *p, long *q)
{
	const char *s, *e;
	char *end;

	if(strncmp(topic, "kit/", 4)) return false;
	s = topic + 4;
	e = strchr(s, '/');
	if(!e || strncmp(e, "/stats/", 7)) return false;
	*p = strtol(e + 7, &end, 10);
	if(*end != '/') return false;
	*q = strtol(end + 1, &end, 10);
	if(*end) return false;
	*serial = s;
	*slen = (size_t)(e - s);
	return true;
}

/* {"topic":"<topic>",["peripheral":p,"quantity_type":q,]<the rest of json after its '{'>. */
static char *stream_json(const char *topic, bool kit, long p, long q, const char *json, size_t len, size_t *out_len)
{
	size_t tlen = strlen(topic), elen = kg_json__escape(NULL, 0, topic, tlen), cap = elen + len + 96, n;
	char *buf = malloc(cap);

	if(!buf || len < 2 || json[0] != '{'){
		free(buf);
		return NULL;
	}
	memcpy(buf, "{\"topic\":\"", 10);
	n = 10 + kg_json__escape(buf + 10, elen, topic, tlen);
	if(kit) n += (size_t)snprintf(buf + n, cap - n, "\",\"peripheral\":%ld,\"quantity_type\":%ld,", p, q);
	else n += (size_t)snprintf(buf + n, cap - n, "\",");
	memcpy(buf + n, json + 1, len - 1);
	n += len - 1;
	buf[n] = '\0';
	*out_len = n;
	return buf;
}

void kg_kitdir__put_stream(struct kg_kitdir *d, const char *topic, const char *json, size_t len)
{
	const char *serial;
	size_t slen, jlen;
	long p, q;
	bool kit = kit_stream(topic, &serial, &slen, &p, &q);
	char *sj = stream_json(topic, kit, p, q, json, len, &jlen), *tcopy = NULL;
	struct dstream *s = NULL;
	struct dkit *k;

	if(!sj) return;
	pthread_mutex_lock(&d->lock);
	if(kit){
		k = kit_get(d, serial, slen);
		if(!k) goto out;
		for(s = k->streams; s && strcmp(s->topic, topic); s = s->next);
		if(!s){
			if(!(tcopy = strdup(topic)) || !(s = calloc(1, sizeof(*s)))) goto out;
			s->topic = tcopy;
			tcopy = NULL;
			s->next = k->streams;
			k->streams = s;
			k->nstreams++;
		}
	}else{
		s = KG_LRU_ENTRY(kg_lru__find(&d->generic, topic, strlen(topic)), struct dstream, node);
		if(!s){
			if(!(tcopy = strdup(topic)) || !(s = calloc(1, sizeof(*s)))) goto out;
			s->topic = tcopy;
			tcopy = NULL;
			kg_lru__insert(&d->generic, &s->node);
		}else{
			kg_lru__touch(&d->generic, &s->node);
		}
	}
	free(s->json);
	s->json = sj;
	s->len = jlen;
	sj = NULL;
out:
	pthread_mutex_unlock(&d->lock);
	free(sj);
	free(tcopy);
}

void kg_kitdir__remove_stream(struct kg_kitdir *d, const char *topic)
{
	struct dstream *s = NULL, **pp;
	const char *serial;
	size_t slen;
	long p, q;
	struct dkit *k;

	pthread_mutex_lock(&d->lock);
	if(kit_stream(topic, &serial, &slen, &p, &q)){
		k = KG_LRU_ENTRY(kg_lru__find(&d->kits, serial, slen), struct dkit, node);
		for(pp = k ? &k->streams : NULL; pp && *pp; pp = &(*pp)->next){
			if(strcmp((*pp)->topic, topic)) continue;
			s = *pp;
			*pp = s->next;
			k->nstreams--;
			break;
		}
	}else{
		s = KG_LRU_ENTRY(kg_lru__find(&d->generic, topic, strlen(topic)), struct dstream, node);
		if(s) kg_lru__remove(&d->generic, &s->node);
	}
	pthread_mutex_unlock(&d->lock);
	if(s) stream_free(s);
}

/* ---- readers ---------------------------------------------------------------------------------- */

/* A kit's JSON with its streams spliced in before the final '}'. Under the lock. */
static void put_kit(struct kg_text *t, const struct dkit *k)
{
	const struct dstream *s;

	if(k->len == 0){     /* never stored empty (put_kit needs its final '}') */
		t->failed = true;
		return;
	}
	kg_text__put(t, k->json, k->len - 1);
	kg_text__put(t, ",\"streams\":[", 12);
	for(s = k->streams; s; s = s->next){
		if(s != k->streams) kg_text__put(t, ",", 1);
		kg_text__put(t, s->json, s->len);
	}
	kg_text__put(t, "]}", 2);
}

static int cmp_serial(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Rebuild the sorted index when the set of kits changed (at most every KG_KITDIR_INDEX_MS).
 * Under index_lock. */
static void index_refresh(struct kg_kitdir *d)
{
	char (*arr)[KG_SERIAL_MAX + 1] = NULL;
	const struct kg_lru_node *n;
	size_t cnt = 0;
	uint64_t gen;
	int64_t now = kg_clock__mono_ms();

	pthread_mutex_lock(&d->lock);
	gen = d->gen;
	if(d->has_index && (gen == d->sorted_gen || now - d->sorted_at < KG_KITDIR_INDEX_MS)){
		pthread_mutex_unlock(&d->lock);
		return;
	}
	arr = malloc((d->listed ? d->listed : 1) * sizeof(*arr));
	if(arr){
		for(n = kg_lru__newest(&d->kits); n; n = n->older){
			const struct dkit *k = KG_LRU_ENTRY(n, struct dkit, node);

			if(k->json) memcpy(arr[cnt++], k->serial, sizeof(arr[0]));
		}
	}
	pthread_mutex_unlock(&d->lock);
	if(!arr) return; /* keep the old index */
	qsort(arr, cnt, sizeof(*arr), cmp_serial);
	free(d->sorted);
	d->sorted = arr;
	d->nsorted = cnt;
	d->sorted_gen = gen;
	d->sorted_at = now;
	d->has_index = true;
}

/* First index whose serial is >= key (strict: > key). */
static size_t lower_bound(const struct kg_kitdir *d, const char *key, bool strict)
{
	size_t lo = 0, hi = d->nsorted;

	while(lo < hi){
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(d->sorted[mid], key);

		if(c < 0 || (strict && c == 0)) lo = mid + 1; else hi = mid;
	}
	return lo;
}

char *kg_kitdir__kits(struct kg_kitdir *d, const char *prefix, const char *after, size_t offset,
		size_t limit, size_t *total, char *next)
{
	size_t plen = prefix ? strlen(prefix) : 0, first, end, i, start, n = 0, last = 0;
	struct kg_text t = {0};
	bool more;

	if(limit > KG_KITDIR_PAGE_MAX) limit = KG_KITDIR_PAGE_MAX;
	pthread_mutex_lock(&d->index_lock);
	index_refresh(d);
	first = plen ? lower_bound(d, prefix, false) : 0;
	for(end = first; end < d->nsorted && !strncmp(d->sorted[end], prefix ? prefix : "", plen); end++);
	*total = end - first;
	if(after && after[0]){
		start = lower_bound(d, after, true);
		if(start < first) start = first;
	}else{
		start = offset < end - first ? first + offset : end;
	}
	kg_text__put(&t, "[", 1);
	pthread_mutex_lock(&d->lock);
	for(i = start; i < end && n < limit; i++){
		const struct dkit *k = KG_LRU_ENTRY(kg_lru__find(&d->kits, d->sorted[i], strlen(d->sorted[i])), struct dkit, node);

		if(!k || !k->json) continue; /* gone since the index was built */
		if(n++) kg_text__put(&t, ",", 1);
		put_kit(&t, k);
		last = i;
	}
	pthread_mutex_unlock(&d->lock);
	more = n && n == limit && last + 1 < end;
	if(more) memmove(next, d->sorted[last], KG_SERIAL_MAX + 1); /* next may be `after` */
	else next[0] = '\0';
	pthread_mutex_unlock(&d->index_lock);
	kg_text__put(&t, "]", 1);
	return kg_text__done(&t);
}

static char *kit_text(struct kg_kitdir *d, const char *serial)
{
	struct kg_text t = {0};
	const struct dkit *k;

	k = KG_LRU_ENTRY(kg_lru__find(&d->kits, serial, strlen(serial)), struct dkit, node);
	if(!k || !k->json) return NULL;
	put_kit(&t, k);
	return kg_text__done(&t);
}

char *kg_kitdir__kit(struct kg_kitdir *d, const char *serial)
{
	char *s;

	pthread_mutex_lock(&d->lock);
	s = kit_text(d, serial);
	pthread_mutex_unlock(&d->lock);
	return s;
}

char *kg_kitdir__client(struct kg_kitdir *d, const char *client_id)
{
	const struct dcid *c;
	char *s = NULL;

	pthread_mutex_lock(&d->lock);
	c = KG_LRU_ENTRY(kg_lru__find(&d->cids, client_id, strlen(client_id)), struct dcid, node);
	if(c) s = kit_text(d, c->serial);
	pthread_mutex_unlock(&d->lock);
	return s;
}

char *kg_kitdir__streams(struct kg_kitdir *d, size_t offset, size_t limit, size_t *total)
{
	const struct kg_lru_node *n;
	struct kg_text t = {0};
	size_t i = 0, out = 0;

	if(limit > KG_KITDIR_PAGE_MAX) limit = KG_KITDIR_PAGE_MAX;
	kg_text__put(&t, "[", 1);
	pthread_mutex_lock(&d->lock);
	*total = kg_lru__count(&d->generic);
	for(n = kg_lru__newest(&d->generic); n && out < limit; n = n->older, i++){
		const struct dstream *s = KG_LRU_ENTRY(n, struct dstream, node);

		if(i < offset || !s->json) continue;
		if(out++) kg_text__put(&t, ",", 1);
		kg_text__put(&t, s->json, s->len);
	}
	pthread_mutex_unlock(&d->lock);
	kg_text__put(&t, "]", 1);
	return kg_text__done(&t);
}

size_t kg_kitdir__count(struct kg_kitdir *d)
{
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = d->listed;
	pthread_mutex_unlock(&d->lock);
	return n;
}
