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

struct kg_kit {
	char serial[KG_SERIAL_MAX + 1];
	int connections;               /* sessions open under this serial (0 = offline) */
	char client_id[KG_KITS_CLIENT_ID_MAX + 1]; /* of the latest open session, else the last one */
	char sessions[KG_KITS_SESSIONS][KG_KITS_CLIENT_ID_MAX + 1]; /* open sessions' client ids */
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
	void *scratch;                 /* the owner's, e.g. while building a snapshot */
	int64_t published_at_ms;
	/* private */
	struct kg_lru_node node;        /* in the table's map, keyed by serial */
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
 * evicted; when all are online nothing new is added). NULL on out of memory. */
struct kg_kits *kg_kits__new(size_t max_kits);
void kg_kits__free(struct kg_kits *k);

/* The kit with this serial (slen bytes, at most KG_SERIAL_MAX), created when absent. NULL when the
 * table is full of online kits, the serial is too long or holds a NUL, or out of memory. */
struct kg_kit *kg_kits__get(struct kg_kits *k, const char *serial, size_t slen);
/* The kit or NULL, without creating it. */
struct kg_kit *kg_kits__find(struct kg_kits *k, const char *serial, size_t slen);

/* Mark a kit as just seen (moves it to the front of the eviction order). */
void kg_kits__touch(struct kg_kits *k, struct kg_kit *kit, int64_t now_ms);

/* A session with client_id opened / closed (connections, client_id and sessions updated). */
void kg_kits__session_open(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms);
void kg_kits__session_close(struct kg_kits *k, struct kg_kit *kit, const char *client_id, int64_t now_ms);

/* Every kit, most recently seen first. */
void kg_kits__foreach(struct kg_kits *k, void (*cb)(struct kg_kit *kit, void *arg), void *arg);
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
