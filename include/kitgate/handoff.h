/* handoff.h -- one stream's thread-safe meeting point between the broker thread and its worker: a
 * bounded in-memory queue of encoded records in front of the stream's spool.
 *
 * Every accepted record is first appended to the spool (when there is one: a memcpy into the
 * page cache, see spool.h), then queued in memory if the queue has room. When it has none, the
 * hand-off "spills": records go to the spool only, and the worker reads them back from disk, in
 * order, until it has caught up. Memory is therefore bounded by `limit` records whatever the sink
 * does, and a record the broker accepted is in the kernel before the broker thread returns (it
 * survives kill -9 of the broker).
 *
 * No acknowledgement without durability: with a spool, a record whose append fails is NOT queued
 * (push returns the error); the caller must not acknowledge it.
 *
 * Threads: kg_handoff__push is called only by the broker thread (one appender); take, rewind,
 * empty by the stream's worker only; depth, stopping by any thread; new/stop/free by the main
 * thread. All shared state is private to handoff.c, under its lock. */
#ifndef KITGATE_HANDOFF_H
#define KITGATE_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_spool;
struct kg_handoff;

/* A taken record. Owned by the worker once take() returned it; free() it. */
struct kg_item {
	struct kg_item *next;  /* worker-owned link (the hand-off's queue while queued) */
	uint64_t end;          /* spool position just past this record; 0 = not in a spool */
	uint32_t len;
	uint8_t state;         /* worker-only bookkeeping (worker.c) */
	uint8_t body[];        /* encoded record (record.h) */
};

/* Create. If spool holds records after its checkpoint (a previous run's), start spilling from the
 * checkpoint so they are replayed before anything new. NULL on bad limit or out of memory. Main
 * thread. The spool (may be NULL: memory only) must outlive the hand-off. */
struct kg_handoff *kg_handoff__new(size_t limit, struct kg_spool *spool);

/* Broker thread: append body to the spool and queue it. Returns 0 when the record is held
 * durably (spool) or, memory-only, in memory; -errno from the spool when the append failed (the
 * record is not held: do not acknowledge it); -ENOBUFS when memory-only and the queue is full.
 * Never blocks on anything but the lock, which the worker holds only for O(1) steps. */
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

/* Worker: true when nothing is queued and the spool has been read to its end. */
bool kg_handoff__empty(struct kg_handoff *h);

/* Records waiting in memory, whether the hand-off is spilling, records that went to disk only.
 * Any thread; spilling/spilled may be NULL. */
size_t kg_handoff__depth(struct kg_handoff *h, bool *spilling, uint64_t *spilled);

/* Main thread: wake the worker and make take() return at once when there is nothing left. */
void kg_handoff__stop(struct kg_handoff *h);

/* Whether kg_handoff__stop was called. Any thread. */
bool kg_handoff__stopping(struct kg_handoff *h);

/* Free queued items and the lock. Main thread, after the worker has been joined. NULL is fine. */
void kg_handoff__free(struct kg_handoff *h);

#endif
