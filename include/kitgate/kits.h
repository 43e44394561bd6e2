/* kits.h -- per-kit bookkeeping for the live view: connection state, counters by reason, and a
 * ring of recent rejections. Pure (no mosquitto_*); one owner thread (the broker thread). */
#ifndef KITGATE_KITS_H
#define KITGATE_KITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/lru.h"
#include "kitgate/record.h"
#include "kitgate/tokenbucket.h"
#include "kitgate/validate.h"

#define KG_KITS_CLIENT_ID_MAX 128   /* longer client ids are truncated (display only) */
#define KG_KITS_REJECTIONS 200      /* recent rejections kept */
#define KG_KITS_SESSIONS 4          /* open sessions whose client ids a kit remembers */
#define KG_KITS_STATUS_URGENT_MS 1000   /* online/offline changes: at most once a second per kit */
#define KG_KITS_STATUS_ROUTINE_MS 10000 /* counters and last_seen only */
#define KG_KITS_KIT_MAX_BYTES 512       /* sizeof(struct kg_kit) stays within this (kits.c asserts) */

/* Fleet scale: one per kit, so kept small (KG_KITS_KIT_MAX_BYTES, checked at build time): the
 * client ids are allocated to their length (at most KG_KITS_CLIENT_ID_MAX bytes + NUL each) and
 * only while they are needed, instead of 5 inline 129-byte arrays (968 bytes per kit before). */
struct kg_kit {
	char serial[KG_SERIAL_MAX + 1];
	int connections;               /* sessions open under this serial (0 = offline) */
	const char *client_id;         /* of the latest open session, else the last one; never NULL
	                                * ("" when none); owned by the table, valid until the kit's
	                                * next session_open/close */
	const char *sessions[KG_KITS_SESSIONS]; /* open sessions' client ids (nsessions of them), owned
	                                * by the table like client_id */
	int nsessions;
	char address[64];
	int protocol_version;          /* 3 (3.1), 4 (3.1.1), 5; 0 = unknown */
	int64_t connected_at_ms;       /* latest session's start; 0 = never seen connected */
	int64_t last_seen_ms;          /* last connect, publish or disconnect */
	uint64_t accepted;
	uint64_t rejected[KG_REASON_COUNT];
	struct kg_tokenbucket rate;    /* kit_rate_limit (tokenbucket.h); the owner's, reset on eviction */
	bool dirty;                    /* changed since its status was last published */
	bool urgent;                   /* online state changed: publish within a second */
	bool view_dirty;               /* changed since its HTTP view entry was last written */
	int64_t viewed_at_ms;          /* when its HTTP view entry was last written */
	void *scratch;                 /* the owner's, e.g. while building a snapshot */
	int64_t published_at_ms;       /* kg_clock__mono_ms() of its last status publish (the owner's) */
	/* private */
	struct kg_lru_node node;        /* in the table's map, keyed by serial */
	struct kg_kit *qnext, *qprev;   /* the changed-kits queue, or a slot of the waiting wheel */
	bool queued;
	int16_t qslot;                  /* -1: the changed queue; else the wheel slot it waits in */
	struct kg_kit *onext, *oprev;   /* offline kits, least recently seen first (eviction) */
	bool in_offline;
};

struct kg_rejection {
	int64_t at_ms;
	enum kg_reason reason;
	char serial[KG_SERIAL_MAX + 1];
	char topic[160];               /* truncated */
	char detail[96];
};

struct kg_kits;

/* A table of at most max_kits kits (past it the kit least recently seen that is offline is
 * evicted, in O(1): offline kits are kept in their own order; when all are online nothing new is
 * added). NULL on out of memory. */
struct kg_kits *kg_kits__new(size_t max_kits);
void kg_kits__free(struct kg_kits *k);

/* The kit with this serial (slen bytes, at most KG_SERIAL_MAX), created when absent. NULL when the
 * table is full of online kits, the serial is too long or holds a NUL, or out of memory. */
struct kg_kit *kg_kits__get(struct kg_kits *k, const char *serial, size_t slen);
/* The kit or NULL, without creating it. */
struct kg_kit *kg_kits__find(struct kg_kits *k, const char *serial, size_t slen);

/* Mark a kit as just seen (moves it to the front of the eviction order). */
void kg_kits__touch(struct kg_kits *k, struct kg_kit *kit, int64_t now_ms);

/* Whether kit's retained status is due at mono_ms (kg_clock__mono_ms(); published_at_ms is on the
 * same clock): dirty, and its last publish at least KG_KITS_STATUS_URGENT_MS (online state
 * changed) or KG_KITS_STATUS_ROUTINE_MS ago. Pure. */
bool kg_kits__status_due(const struct kg_kit *kit, int64_t mono_ms);

/* A session with client_id opened / closed (connections, client_id and sessions updated; client
 * ids longer than KG_KITS_CLIENT_ID_MAX bytes are truncated). Out of memory: the counts change,
 * the client id is not remembered. */
void kg_kits__session_open(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms);
void kg_kits__session_close(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms);

/* Called with every evicted kit just before it is freed (NULL: none). */
void kg_kits__on_evict(struct kg_kits *k, void (*cb)(struct kg_kit *kit, void *arg), void *arg);

/* Queue a kit as changed (dirty and view_dirty set; touch, session_open/close and a new kit do it
 * themselves; a caller changing counters after touch needs nothing more). */
void kg_kits__changed(struct kg_kits *k, struct kg_kit *kit);

/* Visit changed kits oldest-queued first, each at most once per call and at most max of them:
 * each is taken off the queue and cb decides whether it goes back (true: queued again at the tail,
 * e.g. not due yet). So the work per call is O(max) whatever the number of kits. Returns the
 * number visited. */
size_t kg_kits__visit_changed(struct kg_kits *k, size_t max, bool (*cb)(struct kg_kit *kit, void *arg), void *arg);
/* The same for a callback that says when the kit is due again: cb returns 0 (done, off the queue)
 * or the time (on now_ms's clock, kg_clock__mono_ms()) at which it wants its next visit; the kit
 * then waits in a wheel of KG_KITS_WHEEL_MS slots (at most KG_KITS_WHEEL_SPAN_MS ahead; a later
 * time is visited at the span's end and may ask again) and is visited once that time has passed,
 * not before, so kits that are not due cost nothing per call (a kit re-queued at the tail, as
 * kg_kits__visit_changed does, is looked at again on every call: O(max) per call for nothing).
 * Changed kits (kg_kits__changed) are visited first. A waiting kit that changes again stays
 * waiting when it was dirty, view_dirty and not urgent already (its due time cannot have moved
 * earlier: cb's due time must depend only on those flags and on times cb itself sets); otherwise
 * it moves to the changed queue. Returns the number visited (at most max). */
#define KG_KITS_WHEEL_MS 64
#define KG_KITS_WHEEL_SLOTS 256
#define KG_KITS_WHEEL_SPAN_MS (KG_KITS_WHEEL_MS * (KG_KITS_WHEEL_SLOTS - 1))
size_t kg_kits__visit_due(struct kg_kits *k, size_t max, int64_t now_ms,
		int64_t (*cb)(struct kg_kit *kit, void *arg), void *arg);
/* Kits changed or waiting in the wheel. */
size_t kg_kits__queued(const struct kg_kits *k);

/* Every kit, most recently seen first. O(kits): not for a periodic broker-thread path. */
void kg_kits__foreach(struct kg_kits *k, void (*cb)(struct kg_kit *kit, void *arg), void *arg);
/* Kits tracked, and (when online is not NULL) how many have an open session. O(1). */
size_t kg_kits__count(const struct kg_kits *k, size_t *online);
uint64_t kg_kits__evicted(const struct kg_kits *k);

/* Record a rejection (strings truncated to fit). */
void kg_kits__reject(struct kg_kits *k, int64_t at_ms, enum kg_reason reason, const char *serial,
		size_t slen, const char *topic, const char *detail);
/* Recent rejections, newest first: calls cb for at most KG_KITS_REJECTIONS entries. */
void kg_kits__rejections(const struct kg_kits *k, void (*cb)(const struct kg_rejection *r, void *arg), void *arg);

/* Retained status JSON for $SYS/broker/kitgate/kits/<serial>: {"serial","online","client_id",
 * "sessions":[client ids],"address","protocol_version","connected_at","last_seen","accepted",
 * "rejected":{reason:n}}.
 * Times are epoch ms or null. Returns the length, or the length needed when it does not fit. */
size_t kg_kits__format_json(const struct kg_kit *kit, char *buf, size_t cap);

#endif
