/* lru.c -- the intrusive recency-ordered string-keyed hash map (a doubly linked order list threaded
 * through chained buckets of a keyed hash, SipHash-2-4 under a random per-map key). Contract in lru.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/lru.h"
#include "kitgate/siphash.h"

#define MIN_BUCKETS 16
#define MAX_BUCKETS ((size_t)1 << 20)

int kg_lru__init(struct kg_lru *l, size_t expected, kg_lru_key_fn key_of)
{
	size_t nb = MIN_BUCKETS;

	memset(l, 0, sizeof(*l));
	l->key_of = key_of;
	if(!key_of) return 0;
	while(nb < expected && nb < MAX_BUCKETS) nb *= 2;
	l->buckets = calloc(nb, sizeof(*l->buckets));
	if(!l->buckets) return -1;
	l->mask = l->max_mask = nb - 1;
	kg_siphash__random_key(l->sipkey);
	return 0;
}

int kg_lru__init_growing(struct kg_lru *l, size_t expected, kg_lru_key_fn key_of)
{
	size_t nb = MIN_BUCKETS;

	if(kg_lru__init(l, MIN_BUCKETS, key_of) != 0) return -1;
	if(!key_of) return 0;
	while(nb < expected && nb < MAX_BUCKETS) nb *= 2;
	l->max_mask = nb - 1;
	return 0;
}

/* Double the buckets and rehash every entry (through the order list). Out of memory: unchanged. */
static void grow_buckets(struct kg_lru *l)
{
	size_t nb = (l->mask + 1) * 2;
	struct kg_lru_node **b = calloc(nb, sizeof(*b)), *n;

	if(!b) return;
	for(n = l->newest; n; n = n->older){
		n->hnext = b[n->hash & (nb - 1)];
		b[n->hash & (nb - 1)] = n;
	}
	free(l->buckets);
	l->buckets = b;
	l->mask = nb - 1;
}

void kg_lru__fini(struct kg_lru *l)
{
	free(l->buckets);
	memset(l, 0, sizeof(*l));
}

uint32_t kg_lru__hash(const struct kg_lru *l, const void *key, size_t len)
{
	return (uint32_t)kg_siphash__hash(l->sipkey, key, len);
}

static int key_is(const struct kg_lru *l, const struct kg_lru_node *n, const char *key, size_t len)
{
	const char *k = l->key_of(n);

	return strlen(k) == len && !memcmp(k, key, len);
}

struct kg_lru_node *kg_lru__find(const struct kg_lru *l, const char *key, size_t len)
{
	uint32_t h = kg_lru__hash(l, key, len);
	struct kg_lru_node *n;

	assert(l->buckets);
	for(n = l->buckets[h & l->mask]; n; n = n->hnext){
		if(n->hash == h && key_is(l, n, key, len)) return n;
	}
	return NULL;
}

static void link_newest(struct kg_lru *l, struct kg_lru_node *n)
{
	n->older = l->newest;
	n->newer = NULL;
	if(l->newest) l->newest->newer = n; else l->oldest = n;
	l->newest = n;
}

static void unlink_order(struct kg_lru *l, struct kg_lru_node *n)
{
	if(n->older) n->older->newer = n->newer; else l->oldest = n->newer;
	if(n->newer) n->newer->older = n->older; else l->newest = n->older;
	n->older = n->newer = NULL;
}

void kg_lru__insert(struct kg_lru *l, struct kg_lru_node *n)
{
	if(l->buckets){
		const char *key = l->key_of(n);
		size_t len = strlen(key);

		assert(!kg_lru__find(l, key, len));
		if(l->count > l->mask && l->mask < l->max_mask) grow_buckets(l);
		n->hash = kg_lru__hash(l, key, len);
		n->hnext = l->buckets[n->hash & l->mask];
		l->buckets[n->hash & l->mask] = n;
	}
	link_newest(l, n);
	l->count++;
}

void kg_lru__touch(struct kg_lru *l, struct kg_lru_node *n)
{
	if(l->newest == n) return;
	unlink_order(l, n);
	link_newest(l, n);
}

void kg_lru__remove(struct kg_lru *l, struct kg_lru_node *n)
{
	struct kg_lru_node **pp;

	assert(l->count > 0);
	if(l->buckets){
		for(pp = &l->buckets[n->hash & l->mask]; *pp != n; pp = &(*pp)->hnext) assert(*pp);
		*pp = n->hnext;
		n->hnext = NULL;
	}
	unlink_order(l, n);
	l->count--;
}
