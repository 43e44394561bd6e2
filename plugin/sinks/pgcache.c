/* pgcache.c -- the PostgreSQL writer's id cache (open addressing, linear probing, never deletes single entries). */
/*
 * Keys are database ids (int32). The table doubles when half full, so a probe always ends at an
 * empty slot. Single entries are never removed (entries expire by their until_ms, which the
 * writer checks); the writer bounds memory by clearing the whole cache.
 * Threads: owned by one kg_pg (one thread); no locks.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/pgcache.h"

#define INITIAL_CAP 256

struct kg_pgcache {
	struct kg_pgcache_entry *slots;
	size_t cap;   /* power of two, or 0 */
	size_t used;
};

static size_t slot_of(int32_t id, size_t cap)
{
	return (size_t)(((uint32_t)id * 2654435761u) & (uint32_t)(cap - 1));
}

struct kg_pgcache *kg_pgcache__new(void)
{
	return calloc(1, sizeof(struct kg_pgcache));
}

void kg_pgcache__free(struct kg_pgcache *c)
{
	if(!c) return;
	free(c->slots);
	free(c);
}

void kg_pgcache__clear(struct kg_pgcache *c)
{
	if(c->slots) memset(c->slots, 0, c->cap * sizeof(*c->slots));
	c->used = 0;
}

size_t kg_pgcache__used(const struct kg_pgcache *c)
{
	return c->used;
}

struct kg_pgcache_entry *kg_pgcache__find(struct kg_pgcache *c, int32_t id)
{
	size_t i;

	if(!c->cap) return NULL;
	for(i = slot_of(id, c->cap);; i = (i + 1) & (c->cap - 1)){
		if(c->slots[i].state == KG_PGCACHE_EMPTY) return NULL;
		if(c->slots[i].id == id) return &c->slots[i];
	}
}

/* Move every entry into a table of ncap slots. Returns 0 or -1 (out of memory, nothing changed). */
static int grow(struct kg_pgcache *c, size_t ncap)
{
	struct kg_pgcache_entry *ns = calloc(ncap, sizeof(*ns));
	size_t i, j;

	if(!ns) return -1;
	for(j = 0; j < c->cap; j++){
		if(c->slots[j].state == KG_PGCACHE_EMPTY) continue;
		for(i = slot_of(c->slots[j].id, ncap); ns[i].state != KG_PGCACHE_EMPTY; i = (i + 1) & (ncap - 1));
		ns[i] = c->slots[j];
	}
	free(c->slots);
	c->slots = ns;
	c->cap = ncap;
	return 0;
}

struct kg_pgcache_entry *kg_pgcache__put(struct kg_pgcache *c, int32_t id)
{
	struct kg_pgcache_entry *e = kg_pgcache__find(c, id);
	size_t i;

	if(e) return e;
	if((c->used + 1) * 2 > c->cap && grow(c, c->cap ? c->cap * 2 : INITIAL_CAP)) return NULL;
	assert(c->used < c->cap / 2 + 1);
	for(i = slot_of(id, c->cap); c->slots[i].state != KG_PGCACHE_EMPTY; i = (i + 1) & (c->cap - 1));
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	c->slots[i].id = id;
	c->slots[i].state = KG_PGCACHE_PENDING; /* never EMPTY: that would end probe chains */
	c->used++;
	return &c->slots[i];
}
