/* lru.h -- an intrusive recency-ordered hash map keyed by strings (the one LRU of kits.c, stats.c,
 * clientids.c): the caller embeds a struct kg_lru_node in its entry, owns the entry's memory and
 * its NUL-terminated key; the map only links nodes. Pure; no locking (one owner thread).
 *
 * A map made with kg_lru__init(.., key_of) has hash buckets (chained; SipHash-2-4 of the key bytes
 * under a random key of the map's own, because clients choose many of these keys: client ids,
 * topics. Nobody outside the process can tell which keys share a bucket, so no one can build a
 * long chain for the broker thread to walk) and kg_lru__find; one made with key_of == NULL is only an ordered list (no buckets, no
 * allocation at all). Every operation but init/fini is allocation-free (except an insert into a
 * map made with kg_lru__init_growing, which may double its buckets): insert, touch and remove
 * are O(1) plus the walk of one bucket chain; eviction is the caller's kg_lru__remove of
 * kg_lru__oldest (or of the first evictable node walking newer from it). */
#ifndef KITGATE_LRU_H
#define KITGATE_LRU_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in the caller's entry. The owner may read older/newer to walk the order (newest to
 * oldest through older, the other way through newer); every field is written by kg_lru__* only. */
struct kg_lru_node {
	struct kg_lru_node *older, *newer; /* recency order: newest is the most recently touched */
	struct kg_lru_node *hnext;          /* bucket chain (unused in a list) */
	uint32_t hash;                      /* of the key, set by insert (unused in a list) */
};

/* The NUL-terminated key of the entry holding node (it must not change while the node is in a map). */
typedef const char *(*kg_lru_key_fn)(const struct kg_lru_node *node);

struct kg_lru {
	struct kg_lru_node **buckets;       /* NULL: an ordered list only */
	size_t mask;
	size_t max_mask;                    /* the buckets may double up to max_mask + 1 (kg_lru__init_growing) */
	struct kg_lru_node *oldest, *newest;
	size_t count;
	kg_lru_key_fn key_of;
	uint8_t sipkey[16];                 /* random, set by init (maps only) */
};

/* The entry of type `type` whose member `member` is the node n (NULL stays NULL). */
#define KG_LRU_ENTRY(n, type, member) ((type *)kg_lru__entry((n), offsetof(type, member)))
static inline void *kg_lru__entry(const struct kg_lru_node *n, size_t offset)
{
	return n ? (void *)((char *)(uintptr_t)n - offset) : NULL;
}

/* An empty map with a power of two >= expected buckets (at least 16, at most 2^20) when key_of is
 * non-NULL, or an empty list (no allocation) when it is NULL. 0, or -1 out of memory. */
int kg_lru__init(struct kg_lru *l, size_t expected, kg_lru_key_fn key_of);
/* The same, but starting at 16 buckets that double (rehashing every entry, O(count) once per
 * doubling) whenever an insert finds more entries than buckets, up to the power of two >= expected
 * (at most 2^20): for tables sized for a fleet whose memory should follow what they hold (the
 * buckets of a big table are touched page by page as keys land; issue 20). An insert that cannot
 * get the bigger buckets (out of memory) keeps the old ones: longer chains, nothing lost. So here
 * kg_lru__insert may allocate. 0, or -1 out of memory. */
int kg_lru__init_growing(struct kg_lru *l, size_t expected, kg_lru_key_fn key_of);
/* Frees the buckets; the entries still linked are the caller's (walk them before, if owned). */
void kg_lru__fini(struct kg_lru *l);

/* The map's hash of len bytes (the low 32 bits of SipHash-2-4 under l's key), exposed for tests. */
uint32_t kg_lru__hash(const struct kg_lru *l, const void *key, size_t len);

/* The node whose key is exactly the len bytes at key (need not be NUL-terminated), or NULL.
 * Does not change the order. Map only (asserted). */
struct kg_lru_node *kg_lru__find(const struct kg_lru *l, const char *key, size_t len);

/* Link n (not in any map) as the newest; in a map, under key_of(n), which must not be present
 * already (asserted). */
void kg_lru__insert(struct kg_lru *l, struct kg_lru_node *n);
/* Make n (linked in l) the newest. */
void kg_lru__touch(struct kg_lru *l, struct kg_lru_node *n);
/* Unlink n (linked in l); the caller then owns it unlinked (it may insert it in another map). */
void kg_lru__remove(struct kg_lru *l, struct kg_lru_node *n);

static inline struct kg_lru_node *kg_lru__oldest(const struct kg_lru *l) { return l->oldest; }
static inline struct kg_lru_node *kg_lru__newest(const struct kg_lru *l) { return l->newest; }
static inline size_t kg_lru__count(const struct kg_lru *l) { return l->count; }

#endif
