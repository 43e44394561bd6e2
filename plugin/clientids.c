/* clientids.c -- the client id -> owner username map (contract in clientids.h): a chained hash
 * table (FNV-1a, power-of-two buckets, twice the capacity) threaded on a doubly linked LRU list. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/clientids.h"

struct entry {
	struct entry *hnext;          /* bucket chain */
	struct entry *prev, *next;    /* LRU list: head is the most recently used */
	const void *conn;             /* the connection that recorded it; NULL once it went away */
	char *user;                   /* points into id's allocation, after the id */
	char id[];
};

struct kg_clientids {
	struct entry **buckets;
	size_t mask, count, max;
	struct entry *head, *tail;
	uint64_t evicted;
};

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while(*s){
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

struct kg_clientids *kg_clientids__new(size_t max_entries)
{
	struct kg_clientids *m;
	size_t nb = 16;

	assert(max_entries >= 1);
	while(nb < max_entries * 2) nb <<= 1;
	m = calloc(1, sizeof(*m));
	if(!m) return NULL;
	m->buckets = calloc(nb, sizeof(*m->buckets));
	if(!m->buckets){
		free(m);
		return NULL;
	}
	m->mask = nb - 1;
	m->max = max_entries;
	return m;
}

void kg_clientids__free(struct kg_clientids *m)
{
	struct entry *e, *next;

	if(!m) return;
	for(e = m->head; e; e = next){
		next = e->next;
		free(e);
	}
	free(m->buckets);
	free(m);
}

static struct entry **slot(const struct kg_clientids *m, const char *id)
{
	struct entry **pp = &m->buckets[hash(id) & m->mask];

	while(*pp && strcmp((*pp)->id, id)) pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct kg_clientids *m, struct entry *e)
{
	if(e->prev) e->prev->next = e->next; else m->head = e->next;
	if(e->next) e->next->prev = e->prev; else m->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct kg_clientids *m, struct entry *e)
{
	e->prev = NULL;
	e->next = m->head;
	if(m->head) m->head->prev = e; else m->tail = e;
	m->head = e;
}

static void remove_entry(struct kg_clientids *m, struct entry *e)
{
	struct entry **pp = slot(m, e->id);

	assert(*pp == e);
	*pp = e->hnext;
	lru_unlink(m, e);
	free(e);
	m->count--;
}

bool kg_clientids__may_use(const struct kg_clientids *m, const char *id, const char *username)
{
	const struct entry *e;

	if(!m || !id) return true;
	e = *slot(m, id);
	if(!e) return true;
	return username && !strcmp(e->user, username);
}

int kg_clientids__record(struct kg_clientids *m, const char *id, const char *username, const void *conn)
{
	struct entry **pp, *e;
	size_t il, ul;

	assert(m && id && username);
	pp = slot(m, id);
	if(*pp && !strcmp((*pp)->user, username)){
		e = *pp;
		e->conn = conn;
		lru_unlink(m, e);
		lru_push(m, e);
		return 0;
	}
	il = strlen(id);
	ul = strlen(username);
	e = malloc(sizeof(*e) + il + 1 + ul + 1);
	if(!e) return -1;
	memcpy(e->id, id, il + 1);
	e->user = e->id + il + 1;
	memcpy(e->user, username, ul + 1);
	e->conn = conn;
	if(*pp){
		remove_entry(m, *pp); /* another owner (only reachable when the caller did not check) */
	}else if(m->count == m->max){
		remove_entry(m, m->tail);
		m->evicted++;
	}
	pp = slot(m, id);
	assert(!*pp);
	e->hnext = NULL;
	*pp = e;
	lru_push(m, e);
	m->count++;
	return 0;
}

void kg_clientids__disconnected(struct kg_clientids *m, const char *id, const void *conn, bool clean)
{
	struct entry *e;

	if(!m || !id) return;
	e = *slot(m, id);
	if(!e || e->conn != conn) return;
	if(clean) remove_entry(m, e);
	else e->conn = NULL;
}

size_t kg_clientids__count(const struct kg_clientids *m) { return m ? m->count : 0; }
uint64_t kg_clientids__evicted(const struct kg_clientids *m) { return m ? m->evicted : 0; }
