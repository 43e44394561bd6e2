/* pgcache.h -- the PostgreSQL writer's id cache: peripheral -> (kit, configuration, kit serial), and known quantity types.
 *
 * An open-addressing hash table keyed by a database id, with positive, negative and pending
 * entries and their expiry times. It holds no connection and runs no query: pgwriter.c fills it.
 *
 * Threads: a cache belongs to its kg_pg, so to the one thread that calls kg_pg__write. No locks. */
#ifndef KITGATE_PGCACHE_H
#define KITGATE_PGCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/record.h"

enum kg_pgcache_state {
	KG_PGCACHE_EMPTY = 0,  /* free slot (never returned by find) */
	KG_PGCACHE_KNOWN,      /* exists; valid until until_ms */
	KG_PGCACHE_NEGATIVE,   /* does not exist; believed until until_ms */
	KG_PGCACHE_PENDING     /* asked for in the query under way */
};

struct kg_pgcache_entry {
	int32_t id;
	int32_t kit_id;        /* peripherals only */
	int32_t cfg_id;        /* peripherals only */
	uint8_t state;         /* enum kg_pgcache_state */
	int64_t until_ms;      /* KNOWN/NEGATIVE: valid until then (monotonic ms) */
	char serial[KG_SERIAL_MAX + 1]; /* peripherals only: the owning kit's serial */
};

struct kg_pgcache;

/* An empty cache. Returns NULL on out-of-memory. */
struct kg_pgcache *kg_pgcache__new(void);

void kg_pgcache__free(struct kg_pgcache *c);

/* Forget every entry (keeps the memory). */
void kg_pgcache__clear(struct kg_pgcache *c);

/* Number of entries in use. */
size_t kg_pgcache__used(const struct kg_pgcache *c);

/* The entry for id, or NULL. The pointer is valid until the next kg_pgcache__put or clear. */
struct kg_pgcache_entry *kg_pgcache__find(struct kg_pgcache *c, int32_t id);

/* The entry for id, created zeroed in state PENDING (the caller fills it) when absent. May move every
 * entry (invalidates pointers from find/put). Returns NULL on out-of-memory. */
struct kg_pgcache_entry *kg_pgcache__put(struct kg_pgcache *c, int32_t id);

#endif
