/* clientids.c -- the client id -> owner username map (contract in clientids.h): entries in a
 * kg_lru map keyed by the id (bucket count a power of two >= twice the capacity). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/clientids.h"
#include "kitgate/lru.h"

struct entry {
	struct kg_lru_node node;      /* newest: the most recently used */
	const void *conn;             /* the connection that recorded it; NULL once it went away */
	char *user;                   /* points into id's allocation, after the id */
	char id[];
};

struct kg_clientids {
	struct kg_lru lru;
	size_t max;
	uint64_t evicted;
};

static const char *entry_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct entry, node)->id;
}

static struct entry *find(const struct kg_clientids *m, const char *id)
{
	return KG_LRU_ENTRY(kg_lru__find(&m->lru, id, strlen(id)), struct entry, node);
}

struct kg_clientids *kg_clientids__new(size_t max_entries)
{
	struct kg_clientids *m;

	assert(max_entries >= 1);
	m = calloc(1, sizeof(*m));
	if(!m) return NULL;
	if(kg_lru__init(&m->lru, max_entries * 2, entry_key) != 0){
		free(m);
		return NULL;
	}
	m->max = max_entries;
	return m;
}

void kg_clientids__free(struct kg_clientids *m)
{
	struct kg_lru_node *n, *older;

	if(!m) return;
	for(n = kg_lru__newest(&m->lru); n; n = older){
		older = n->older;
		free(KG_LRU_ENTRY(n, struct entry, node));
	}
	kg_lru__fini(&m->lru);
	free(m);
}

static void remove_entry(struct kg_clientids *m, struct entry *e)
{
	kg_lru__remove(&m->lru, &e->node);
	free(e);
}

bool kg_clientids__may_use(const struct kg_clientids *m, const char *id, const char *username)
{
	const struct entry *e;

	if(!m || !id) return true;
	e = find(m, id);
	if(!e) return true;
	return username && !strcmp(e->user, username);
}

int kg_clientids__record(struct kg_clientids *m, const char *id, const char *username, const void *conn)
{
	struct entry *old, *e;
	size_t il, ul;

	assert(m && id && username);
	old = find(m, id);
	if(old && !strcmp(old->user, username)){
		old->conn = conn;
		kg_lru__touch(&m->lru, &old->node);
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
	if(old){
		remove_entry(m, old); /* another owner (only reachable when the caller did not check) */
	}else if(kg_lru__count(&m->lru) == m->max){
		remove_entry(m, KG_LRU_ENTRY(kg_lru__oldest(&m->lru), struct entry, node));
		m->evicted++;
	}
	kg_lru__insert(&m->lru, &e->node);
	return 0;
}

void kg_clientids__disconnected(struct kg_clientids *m, const char *id, const void *conn, bool clean)
{
	struct entry *e;

	if(!m || !id) return;
	e = find(m, id);
	if(!e || e->conn != conn) return;
	if(clean) remove_entry(m, e);
	else e->conn = NULL;
}

size_t kg_clientids__count(const struct kg_clientids *m) { return m ? kg_lru__count(&m->lru) : 0; }
uint64_t kg_clientids__evicted(const struct kg_clientids *m) { return m ? m->evicted : 0; }
