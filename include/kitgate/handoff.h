/* handoff.h -- the one thread-safe meeting point between the broker thread and the worker: a
 * bounded in-memory queue of encoded records in front of the spool.
 *
 * Every accepted record is first appended to the spool (when there is one), then queued in
 * memory if the queue has room. When it has none, the hand-off "spills": records go to the spool
 * only, and the worker reads them back from disk, in order, until it has caught up. Memory is
 * therefore bounded by `limit` records whatever the sink does, and a record the broker accepted is
 * in the kernel before the broker thread returns (it survives kill -9 of the broker).
 *
 * Threads: kg_handoff__push is called only by the broker thread; take/rewind/settle-side calls
 * only by the worker; depth/stats by anyone. All shared state is under h->lock. */
#ifndef KITGATE_HANDOFF_H
#define KITGATE_HANDOFF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_spool;

struct kg_item {
	struct kg_item *next;
	uint64_t end;        /* spool position just past this record; 0 = not in the spool */
	uint32_t len;
	uint8_t settled;     /* worker-only bookkeeping */
	uint8_t body[];      /* encoded record (record.h) */
};

struct kg_handoff {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kg_item *head, *tail;   /* queued in memory, oldest first */
	size_t count, limit;
	struct kg_spool *spool;        /* NULL: memory only */
	bool spilling;                 /* records after the queue's tail are on disk only */
	bool stopping;
	bool worker_waiting;
	size_t wake_at;                /* the waiting worker wants a signal once count reaches this */
	uint64_t read_pos;             /* worker-only: next spool position to read when spilling */
	uint64_t spilled;              /* records that went to disk only (stat) */
};

/* Initialise. If spool holds records after its checkpoint (a previous run's), start spilling from
 * the checkpoint so they are replayed before anything new. Returns 0 or -1. Main thread. */
int kg_handoff__init(struct kg_handoff *h, size_t limit, struct kg_spool *spool);

/* Broker thread: append body to the spool and queue it. Returns 0 when the record is held (spool
 * and/or memory), -1 when it cannot be held anywhere (memory full and no working spool): the
 * caller must refuse the message. Never blocks on anything but the uncontended lock and one
 * write(2). */
int kg_handoff__push(struct kg_handoff *h, const uint8_t *body, uint32_t len);

/* Worker: move up to max records into out[] (oldest first), from memory or, when spilling, from
 * the spool. Waits up to timeout_ms until at least min (>= 1) records are queued (or any can be
 * read from the spool), then takes what there is. The broker thread signals the waiting worker
 * only when that threshold is reached, so lingering for a fuller batch costs the broker nothing.
 * Returns the count; 0 on timeout or when stopping with nothing left. Items are the caller's to
 * free(). */
size_t kg_handoff__take(struct kg_handoff *h, struct kg_item **out, size_t max, size_t min, int timeout_ms);

/* Worker: forget what is queued and read the spool again from pos (after a sink failure). No-op
 * without a spool. */
void kg_handoff__rewind(struct kg_handoff *h, uint64_t pos);

/* True when nothing is queued and the worker has read the spool to its end. */
bool kg_handoff__empty(struct kg_handoff *h);

/* Records waiting in memory, and whether the hand-off is spilling. Any thread. */
size_t kg_handoff__depth(struct kg_handoff *h, bool *spilling);

/* Wake the worker and make take() return at once when there is nothing left. Main thread. */
void kg_handoff__stop(struct kg_handoff *h);

/* Free queued items and the lock. Main thread, after the worker has been joined. */
void kg_handoff__destroy(struct kg_handoff *h);

#endif
