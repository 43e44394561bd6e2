/* kits.c -- per-kit live state (a kg_lru map by serial, its order the recently-seen order for
 * eviction) and the ring of recent rejections. Contract in kits.h. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/json.h"
#include "kitgate/kits.h"
#include "kitgate/lru.h"
#include "kitgate/utf8.h"

struct kg_kits {
	struct kg_lru lru;             /* newest: the kit most recently seen */
	size_t max;
	uint64_t evicted;
	size_t online;                 /* kits with connections > 0 */
	struct kg_kit *qhead, *qtail;  /* changed kits, oldest first */
	size_t nfresh;                 /* kits in that queue (nqueued - the wheel's) */
	struct kg_kit *whead[KG_KITS_WHEEL_SLOTS], *wtail[KG_KITS_WHEEL_SLOTS]; /* kits waiting, by due time */
	int64_t wheel_t;               /* start of the oldest slot not drained yet (a multiple of
	                                * KG_KITS_WHEEL_MS); INT64_MIN: no visit_due call yet */
	struct kg_kit *ohead, *otail;  /* offline kits, least recently seen first */
	size_t nqueued;
	void (*on_evict)(struct kg_kit *kit, void *arg);
	void *evict_arg;
	struct kg_rejection ring[KG_KITS_REJECTIONS];
	size_t ring_next, ring_count;
};

/* Fleet scale (issue 20): the record stays small whatever the client ids. */
static_assert(sizeof(struct kg_kit) <= KG_KITS_KIT_MAX_BYTES, "struct kg_kit grew past KG_KITS_KIT_MAX_BYTES");

/* Client ids: client_id is sessions[nsessions - 1] while nsessions > 0 (shared, freed with the
 * session), else its own allocation, or no_id. */
static const char no_id[] = "";

static char *dup_id(const char *id)
{
	size_t n = strnlen(id ? id : "", KG_KITS_CLIENT_ID_MAX);
	char *d = malloc(n + 1);

	if(!d) return NULL;
	memcpy(d, id ? id : "", n);
	d[n] = '\0';
	return d;
}

static void free_id(const char *id)
{
	if(id && id != no_id) free((void *)id);
}

static void kit_free(struct kg_kit *kit)
{
	int i;

	for(i = 0; i < kit->nsessions; i++) free_id(kit->sessions[i]);
	if(kit->nsessions == 0) free_id(kit->client_id);
	free(kit);
}

static const char *kit_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct kg_kit, node)->serial;
}

static struct kg_kit *kit_of(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct kg_kit, node);
}

struct kg_kits *kg_kits__new(size_t max_kits)
{
	struct kg_kits *k = calloc(1, sizeof(*k));

	if(!k) return NULL;
	if(kg_lru__init_growing(&k->lru, max_kits, kit_key) != 0){
		free(k);
		return NULL;
	}
	k->max = max_kits ? max_kits : 1;
	k->wheel_t = INT64_MIN;
	return k;
}

void kg_kits__free(struct kg_kits *k)
{
	struct kg_lru_node *n, *newer;

	if(!k) return;
	for(n = kg_lru__oldest(&k->lru); n; n = newer){
		newer = n->newer;
		kit_free(kit_of(n));
	}
	kg_lru__fini(&k->lru);
	free(k);
}

struct kg_kit *kg_kits__find(struct kg_kits *k, const char *serial, size_t slen)
{
	return kit_of(kg_lru__find(&k->lru, serial, slen));
}

static void list_remove(struct kg_kit **head, struct kg_kit **tail, struct kg_kit *kit)
{
	if(kit->qprev) kit->qprev->qnext = kit->qnext; else *head = kit->qnext;
	if(kit->qnext) kit->qnext->qprev = kit->qprev; else *tail = kit->qprev;
	kit->qnext = kit->qprev = NULL;
}

static void list_append(struct kg_kit **head, struct kg_kit **tail, struct kg_kit *kit)
{
	kit->qprev = *tail;
	kit->qnext = NULL;
	if(*tail) (*tail)->qnext = kit; else *head = kit;
	*tail = kit;
}

static void unqueue(struct kg_kits *k, struct kg_kit *kit)
{
	if(!kit->queued) return;
	if(kit->qslot < 0){
		list_remove(&k->qhead, &k->qtail, kit);
		k->nfresh--;
	}else{
		list_remove(&k->whead[kit->qslot], &k->wtail[kit->qslot], kit);
	}
	kit->queued = false;
	k->nqueued--;
}

/* Into the changed queue (from the wheel too). */
static void enqueue(struct kg_kits *k, struct kg_kit *kit)
{
	if(kit->queued && kit->qslot < 0) return;
	unqueue(k, kit);
	list_append(&k->qhead, &k->qtail, kit);
	kit->qslot = -1;
	kit->queued = true;
	k->nfresh++;
	k->nqueued++;
}

static size_t wheel_slot(int64_t t)
{
	return (size_t)(((t / KG_KITS_WHEEL_MS) % KG_KITS_WHEEL_SLOTS + KG_KITS_WHEEL_SLOTS) % KG_KITS_WHEEL_SLOTS);
}

/* Wait in the wheel until due: never in a slot visit_due may still drain in this call (due is
 * raised to now + 1), at most the span ahead of the wheel. */
static void wheel_insert(struct kg_kits *k, struct kg_kit *kit, int64_t due, int64_t now)
{
	size_t s;

	if(due <= now) due = now + 1;
	if(due < k->wheel_t + KG_KITS_WHEEL_MS) due = k->wheel_t + KG_KITS_WHEEL_MS;
	if(due > k->wheel_t + KG_KITS_WHEEL_SPAN_MS) due = k->wheel_t + KG_KITS_WHEEL_SPAN_MS;
	s = wheel_slot(due);
	unqueue(k, kit);
	list_append(&k->whead[s], &k->wtail[s], kit);
	kit->qslot = (int16_t)s;
	kit->queued = true;
	k->nqueued++;
}

static void offline_remove(struct kg_kits *k, struct kg_kit *kit)
{
	if(!kit->in_offline) return;
	if(kit->oprev) kit->oprev->onext = kit->onext; else k->ohead = kit->onext;
	if(kit->onext) kit->onext->oprev = kit->oprev; else k->otail = kit->oprev;
	kit->onext = kit->oprev = NULL;
	kit->in_offline = false;
}

/* (Re)append an offline kit as the most recently seen one. */
static void offline_append(struct kg_kits *k, struct kg_kit *kit)
{
	offline_remove(k, kit);
	kit->oprev = k->otail;
	kit->onext = NULL;
	if(k->otail) k->otail->onext = kit; else k->ohead = kit;
	k->otail = kit;
	kit->in_offline = true;
}

void kg_kits__changed(struct kg_kits *k, struct kg_kit *kit)
{
	/* waiting, and already due for both with the routine cadence: its due time stays */
	bool stays = kit->queued && kit->qslot >= 0 && kit->dirty && kit->view_dirty && !kit->urgent;

	kit->dirty = kit->view_dirty = true;
	if(!stays) enqueue(k, kit);
}

void kg_kits__on_evict(struct kg_kits *k, void (*cb)(struct kg_kit *kit, void *arg), void *arg)
{
	k->on_evict = cb;
	k->evict_arg = arg;
}

size_t kg_kits__visit_changed(struct kg_kits *k, size_t max, bool (*cb)(struct kg_kit *kit, void *arg), void *arg)
{
	size_t n = k->nfresh < max ? k->nfresh : max, i;

	for(i = 0; i < n && k->qhead; i++){
		struct kg_kit *kit = k->qhead;

		unqueue(k, kit);
		if(cb(kit, arg)) enqueue(k, kit);
	}
	return i;
}

size_t kg_kits__visit_due(struct kg_kits *k, size_t max, int64_t now_ms,
		int64_t (*cb)(struct kg_kit *kit, void *arg), void *arg)
{
	size_t n = 0, m = k->nfresh < max ? k->nfresh : max, turns;
	struct kg_kit *kit;
	int64_t due;

	/* first call, or not called for longer than the span: every slot is in the past, one turn drains them */
	if(k->wheel_t == INT64_MIN || now_ms - k->wheel_t > KG_KITS_WHEEL_SPAN_MS + KG_KITS_WHEEL_MS){
		int64_t t = k->wheel_t == INT64_MIN ? now_ms : now_ms - KG_KITS_WHEEL_SPAN_MS - KG_KITS_WHEEL_MS;

		k->wheel_t = t - ((t % KG_KITS_WHEEL_MS) + KG_KITS_WHEEL_MS) % KG_KITS_WHEEL_MS;
	}
	while(n < m && k->qhead){ /* changed kits first, each once */
		kit = k->qhead;
		unqueue(k, kit);
		n++;
		if((due = cb(kit, arg)) != 0) wheel_insert(k, kit, due, now_ms);
	}
	/* then the slots whose time has passed, oldest first; at most one turn of the wheel per call */
	for(turns = 0; n < max && turns < KG_KITS_WHEEL_SLOTS && k->wheel_t + KG_KITS_WHEEL_MS <= now_ms; turns++){
		size_t s = wheel_slot(k->wheel_t);

		while(n < max && (kit = k->whead[s]) != NULL){
			unqueue(k, kit);
			n++;
			if((due = cb(kit, arg)) != 0) wheel_insert(k, kit, due, now_ms);
		}
		if(k->whead[s]) break; /* max reached: this slot again next call */
		k->wheel_t += KG_KITS_WHEEL_MS;
	}
	return n;
}

size_t kg_kits__queued(const struct kg_kits *k)
{
	return k->nqueued;
}

/* Evict the least recently seen offline kit. Returns 0, or -1 when every kit is online. */
static int evict_one(struct kg_kits *k)
{
	struct kg_kit *kit = k->ohead;

	if(!kit) return -1;
	kg_lru__remove(&k->lru, &kit->node);
	unqueue(k, kit);
	offline_remove(k, kit);
	if(k->on_evict) k->on_evict(kit, k->evict_arg);
	kit_free(kit);
	k->evicted++;
	return 0;
}

struct kg_kit *kg_kits__get(struct kg_kits *k, const char *serial, size_t slen)
{
	struct kg_kit *kit;

	if(slen == 0 || slen > KG_SERIAL_MAX || memchr(serial, '\0', slen)) return NULL; /* keys are C strings */
	kit = kg_kits__find(k, serial, slen);
	if(kit) return kit;
	if(kg_lru__count(&k->lru) >= k->max && evict_one(k) != 0) return NULL;
	kit = calloc(1, sizeof(*kit));
	if(!kit) return NULL;
	memcpy(kit->serial, serial, slen);
	kit->client_id = no_id;
	kg_lru__insert(&k->lru, &kit->node);
	offline_append(k, kit);
	kg_kits__changed(k, kit);
	return kit;
}

bool kg_kits__status_due(const struct kg_kit *kit, int64_t mono_ms)
{
	return kit->dirty && mono_ms - kit->published_at_ms
		>= (kit->urgent ? KG_KITS_STATUS_URGENT_MS : KG_KITS_STATUS_ROUTINE_MS);
}

void kg_kits__touch(struct kg_kits *k, struct kg_kit *kit, int64_t now_ms)
{
	kit->last_seen_ms = now_ms;
	kg_kits__changed(k, kit);
	kg_lru__touch(&k->lru, &kit->node);
	if(kit->connections == 0) offline_append(k, kit);
}

void kg_kits__session_open(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms)
{
	char *id = dup_id(client_id);

	if(kit->connections++ == 0){
		k->online++;
		offline_remove(k, kit);
	}
	if(id){
		if(kit->nsessions == KG_KITS_SESSIONS){
			free_id(kit->sessions[0]); /* not client_id: that is the last one */
			memmove(&kit->sessions[0], &kit->sessions[1], sizeof(kit->sessions[0]) * (KG_KITS_SESSIONS - 1));
			kit->nsessions--;
		}
		if(kit->nsessions == 0) free_id(kit->client_id); /* its own copy */
		kit->sessions[kit->nsessions++] = id;
		kit->client_id = id;
	}
	kit->urgent = true;
	kg_kits__touch(k, kit, now_ms);
}

void kg_kits__session_close(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms)
{
	int i;

	if(kit->connections > 0 && --kit->connections == 0) k->online--;
	for(i = kit->nsessions - 1; client_id && i >= 0; i--){
		const char *s = kit->sessions[i];

		if(strncmp(s, client_id, KG_KITS_CLIENT_ID_MAX)) continue;
		memmove(&kit->sessions[i], &kit->sessions[i + 1], sizeof(kit->sessions[0]) * (size_t)(kit->nsessions - 1 - i));
		kit->nsessions--;
		if(s != kit->client_id) free_id(s);
		else if(kit->nsessions > 0){ /* the latest closed: back to the newest still open */
			free_id(s);
			kit->client_id = kit->sessions[kit->nsessions - 1];
		} /* else the last one: client_id keeps it as its own copy */
		break;
	}
	if(kit->connections == 0 && kit->nsessions > 0){ /* sessions not matched: forgotten */
		for(i = 0; i < kit->nsessions - 1; i++) free_id(kit->sessions[i]);
		kit->nsessions = 0; /* client_id (the last one) keeps its copy */
	}
	kit->urgent = true;
	kg_kits__touch(k, kit, now_ms);
}

void kg_kits__foreach(struct kg_kits *k, void (*cb)(struct kg_kit *kit, void *arg), void *arg)
{
	struct kg_lru_node *n, *older;

	for(n = kg_lru__newest(&k->lru); n; n = older){
		older = n->older;
		cb(kit_of(n), arg);
	}
}

size_t kg_kits__count(const struct kg_kits *k, size_t *online)
{
	if(online) *online = k->online;
	return kg_lru__count(&k->lru);
}

uint64_t kg_kits__evicted(const struct kg_kits *k)
{
	return k->evicted;
}

static void copy_trunc(char *dst, size_t cap, const char *src, size_t n)
{
	if(!src){
		src = "";
		n = 0;
	}
	if(n >= cap) n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void kg_kits__reject(struct kg_kits *k, int64_t at_ms, enum kg_reason reason, const char *serial,
		size_t slen, const char *topic, const char *detail)
{
	struct kg_rejection *r = &k->ring[k->ring_next];

	r->at_ms = at_ms;
	r->reason = reason;
	copy_trunc(r->serial, sizeof(r->serial), serial, slen);
	copy_trunc(r->topic, sizeof(r->topic), topic, topic ? strlen(topic) : 0);
	copy_trunc(r->detail, sizeof(r->detail), detail, detail ? strlen(detail) : 0);
	k->ring_next = (k->ring_next + 1) % KG_KITS_REJECTIONS;
	if(k->ring_count < KG_KITS_REJECTIONS) k->ring_count++;
}

void kg_kits__rejections(const struct kg_kits *k, void (*cb)(const struct kg_rejection *r, void *arg), void *arg)
{
	size_t i;

	for(i = 0; i < k->ring_count; i++){
		cb(&k->ring[(k->ring_next + KG_KITS_REJECTIONS - 1 - i) % KG_KITS_REJECTIONS], arg);
	}
}

size_t kg_kits__format_json(const struct kg_kit *kit, char *buf, size_t cap)
{
	char cid[KG_KITS_CLIENT_ID_MAX * 6 + 1], addr[64 * 6 + 1], ser[KG_SERIAL_MAX * 6 + 1];
	char at[32], seen[32];
	size_t off;
	int n, r, i;

	kg_json__escape_bytes(cid, sizeof(cid), kit->client_id);
	kg_json__escape_bytes(addr, sizeof(addr), kit->address);
	kg_json__escape_bytes(ser, sizeof(ser), kit->serial);
	if(kit->connected_at_ms) snprintf(at, sizeof(at), "%lld", (long long)kit->connected_at_ms); else strcpy(at, "null");
	if(kit->last_seen_ms) snprintf(seen, sizeof(seen), "%lld", (long long)kit->last_seen_ms); else strcpy(seen, "null");
	n = snprintf(buf, cap, "{\"serial\":\"%s\",\"online\":%s,\"client_id\":%s%s%s,\"sessions\":[",
			ser, kit->connections > 0 ? "true" : "false",
			cid[0] ? "\"" : "", cid[0] ? cid : "null", cid[0] ? "\"" : "");
	if(n < 0) return 0;
	off = (size_t)n;
	for(i = 0; i < kit->nsessions; i++){
		kg_json__escape_bytes(cid, sizeof(cid), kit->sessions[i]);
		n = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0, "%s\"%s\"", i ? "," : "", cid);
		off += (size_t)n;
	}
	n = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0, "],\"address\":%s%s%s,"
			"\"protocol_version\":%d,\"connected_at\":%s,\"last_seen\":%s,\"accepted\":%llu,\"rejected\":{",
			addr[0] ? "\"" : "", addr[0] ? addr : "null", addr[0] ? "\"" : "",
			kit->protocol_version, at, seen, (unsigned long long)kit->accepted);
	off += (size_t)n;
	for(r = 1; r < KG_REASON_COUNT; r++){
		n = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0, "%s\"%s\":%llu",
				r > 1 ? "," : "", kg_reason__name(r), (unsigned long long)kit->rejected[r]);
		off += (size_t)n;
	}
	n = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0, "}}");
	off += (size_t)n;
	return off;
}
