/* clientids.c -- the client id -> owner username map (contract in clientids.h): entries in a
 * kg_lru map keyed by the id, each also linked in its owner's recency list; owners in a second
 * kg_lru map keyed by the username (an owner lives while it owns an id). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/clientids.h"
#include "kitgate/lru.h"

struct owner {
	struct kg_lru_node node;      /* in kg_clientids.owners (its order is unused) */
	struct kg_lru ids;            /* list of its entries (unode), newest: most recently used */
	char name[];
};

struct entry {
	struct kg_lru_node node;      /* in kg_clientids.ids */
	struct kg_lru_node unode;     /* in owner->ids */
	struct owner *owner;
	const void *conn;             /* the connection that recorded it; NULL once it went away */
	char id[];
};

struct kg_clientids {
	struct kg_lru ids;
	struct kg_lru owners;
	size_t max, per_user;
	uint64_t evicted;
};

static const char *entry_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct entry, node)->id;
}

static const char *owner_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct owner, node)->name;
}

static struct entry *find(const struct kg_clientids *m, const char *id)
{
	return KG_LRU_ENTRY(kg_lru__find(&m->ids, id, strlen(id)), struct entry, node);
}

static struct owner *find_owner(const struct kg_clientids *m, const char *username)
{
	return KG_LRU_ENTRY(kg_lru__find(&m->owners, username, strlen(username)), struct owner, node);
}

struct kg_clientids *kg_clientids__new(size_t max_entries, size_t per_user)
{
	struct kg_clientids *m;

	assert(max_entries >= 1 && per_user >= 1);
	m = calloc(1, sizeof(*m));
	if(!m) return NULL;
	if(kg_lru__init_growing(&m->ids, max_entries * 2, entry_key) != 0){
		free(m);
		return NULL;
	}
	if(kg_lru__init_growing(&m->owners, max_entries, owner_key) != 0){
		kg_lru__fini(&m->ids);
		free(m);
		return NULL;
	}
	m->max = max_entries;
	m->per_user = per_user;
	return m;
}

static void remove_entry(struct kg_clientids *m, struct entry *e)
{
	struct owner *o = e->owner;

	kg_lru__remove(&m->ids, &e->node);
	kg_lru__remove(&o->ids, &e->unode);
	free(e);
	if(kg_lru__count(&o->ids) == 0){
		kg_lru__remove(&m->owners, &o->node);
		free(o);
	}
}

void kg_clientids__free(struct kg_clientids *m)
{
	if(!m) return;
	while(kg_lru__oldest(&m->ids)) remove_entry(m, KG_LRU_ENTRY(kg_lru__oldest(&m->ids), struct entry, node));
	kg_lru__fini(&m->ids);
	kg_lru__fini(&m->owners);
	free(m);
}

bool kg_clientids__may_use(const struct kg_clientids *m, const char *id, const char *username)
{
	const struct entry *e;

	if(!m || !id) return true;
	e = find(m, id);
	if(!e) return true;
	return username && !strcmp(e->owner->name, username);
}

/* The owner's least recently used entry without a connection, or NULL. */
static struct entry *oldest_offline(const struct owner *o)
{
	struct kg_lru_node *n;

	for(n = kg_lru__oldest(&o->ids); n; n = n->newer){
		struct entry *e = KG_LRU_ENTRY(n, struct entry, unode);
		if(!e->conn) return e;
	}
	return NULL;
}

/* The entry username must give up to record one more id: its oldest offline one once it is at its
 * bound (NULL: none needed or none offline). */
static struct entry *own_victim(const struct kg_clientids *m, const struct owner *o)
{
	return o && kg_lru__count(&o->ids) >= m->per_user ? oldest_offline(o) : NULL;
}

bool kg_clientids__has_room(const struct kg_clientids *m, const char *id, const char *username)
{
	const struct entry *e;

	if(!m || !id || !username) return true;
	e = find(m, id);
	if(e && !strcmp(e->owner->name, username)) return true;
	if(kg_lru__count(&m->ids) < m->max) return true;
	return own_victim(m, find_owner(m, username)) != NULL;
}

int kg_clientids__record(struct kg_clientids *m, const char *id, const char *username, const void *conn)
{
	struct entry *old, *e, *victim;
	struct owner *o, *newo = NULL;
	size_t il, ul;

	assert(m && id && username);
	old = find(m, id);
	if(old && !strcmp(old->owner->name, username)){
		old->conn = conn;
		kg_lru__touch(&m->ids, &old->node);
		kg_lru__touch(&old->owner->ids, &old->unode);
		return 0;
	}
	o = find_owner(m, username);
	victim = own_victim(m, o);
	if(!old && !victim && kg_lru__count(&m->ids) >= m->max) return -2;
	il = strlen(id);
	e = malloc(sizeof(*e) + il + 1);
	if(!e) return -1;
	if(!o){
		ul = strlen(username);
		newo = malloc(sizeof(*newo) + ul + 1);
		if(!newo){
			free(e);
			return -1;
		}
		memcpy(newo->name, username, ul + 1);
		(void)kg_lru__init(&newo->ids, 0, NULL); /* a list: no allocation */
		kg_lru__insert(&m->owners, &newo->node);
		o = newo;
	}
	memcpy(e->id, id, il + 1);
	e->owner = o;
	e->conn = conn;
	if(old) remove_entry(m, old); /* another owner's (only reachable when the caller did not check) */
	kg_lru__insert(&o->ids, &e->unode); /* first: o must not go away with its last old id */
	if(victim){
		remove_entry(m, victim);      /* the owner's own */
		m->evicted++;
	}
	kg_lru__insert(&m->ids, &e->node);
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

size_t kg_clientids__count(const struct kg_clientids *m) { return m ? kg_lru__count(&m->ids) : 0; }
uint64_t kg_clientids__evicted(const struct kg_clientids *m) { return m ? m->evicted : 0; }

size_t kg_clientids__owned(const struct kg_clientids *m, const char *username)
{
	const struct owner *o;

	if(!m || !username) return 0;
	o = find_owner(m, username);
	return o ? kg_lru__count(&o->ids) : 0;
}
