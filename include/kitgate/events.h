/* events.h -- what the broker's event sequence means, decided in one pure module: the measurement
 * memo and wills, client-id ownership, and when a kit goes online or offline. The glue
 * (plugin/broker/acl.c, message.c, live.c, auth.c) translates each mosquitto event into one call
 * here, as plain data, and acts on the decisions (return values and the sink's callbacks).
 *
 * Facts it relies on (measured on 2.0.11, 2.0.21 and 2.1.2, docs/brokers.md):
 * - every broker: ACL WRITE (topic, payload) comes before MESSAGE in the same call chain, with the
 *   same client, topic and payload pointers; a will gets only the ACL WRITE (after the client's
 *   DISCONNECT/CLIENT_OFFLINE), never a MESSAGE. So a validated write still pending when any
 *   other event arrives was a will: the sink's will() pushes it.
 * - 2.0 (no CONNECT event): logins are synchronous and a refused client is disconnected
 *   (DISCONNECT) before any other event; so the next event that is not the client's own DISCONNECT
 *   proves a login succeeded (the client-id owner is recorded then), and a kit login still pending
 *   at TICK is online.
 * - 2.1: CONNECT follows a successful login (after the CONNACK; for a delayed login inside
 *   mosquitto_complete_basic_auth); a refused delayed login is disconnected inside
 *   mosquitto_complete_basic_auth (a DISCONNECT about a client that never logged in); a persistent
 *   session goes offline with CLIENT_OFFLINE instead of DISCONNECT (fed to kg_events__disconnect).
 *
 * A client is an opaque token (the struct mosquitto pointer's value: compared, never
 * dereferenced) plus the strings the glue copied out of the broker for the call; nothing here keeps
 * a pointer into the broker past the call except tokens and the memo's topic/payload identity.
 * Pure (no mosquitto calls, no I/O); one thread: the broker thread. The event calls allocate only
 * to remember a pending client-id owner (two short strings) and in the client-id table (clientids.h);
 * the pending sessions are a fixed table. */
#ifndef KITGATE_EVENTS_H
#define KITGATE_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/kits.h"    /* KG_KITS_CLIENT_ID_MAX */
#include "kitgate/record.h"  /* KG_SERIAL_MAX */

#define KG_EVENTS_PENDING_MAX 256   /* kit logins between two TICKs; past it they wait for a publish */

/* One client as an event shows it. Strings are read during the call only (NULL: none). */
struct kg_events_client {
	const void *token;          /* the struct mosquitto pointer: identity only */
	const char *id;             /* MQTT client id */
	const char *username;       /* NULL: anonymous */
	const char *address;
	int protocol;               /* 3, 4 or 5 */
	bool kit;                   /* username may be a kit (the live view's notion: a valid serial of
	                             * the kits snapshot, not a service user) */
	bool service;               /* username is a service user */
	bool clean;                 /* DISCONNECT: the session ends with the connection (v3.1.1 clean
	                             * session), so the client id is forgotten */
};

/* A kit session going online (the sink's online()); a copy, truncated to the buffers. */
struct kg_events_session {
	const void *token;
	char serial[KG_SERIAL_MAX + 1];
	char client_id[KG_KITS_CLIENT_ID_MAX + 1];
	char address[64];
	int protocol;
	int64_t at_ms;              /* when the login was seen (wall clock, as passed in) */
};

/* The decisions that are not a return value, called back from inside the event calls:
 * will(): the validated write pending in the glue's memo had no MESSAGE: push it as a will now
 *   (before the call returns; the glue's memo is free afterwards).
 * online(): a kit session is online (2.0: at TICK or at its first publish; 2.1: at CONNECT).
 * offline(): a logged-in kit client went away (DISCONNECT or CLIENT_OFFLINE); c is the event's.
 * Any may be NULL. */
struct kg_events_sink {
	void (*will)(void *ud);
	void (*online)(void *ud, const struct kg_events_session *s);
	void (*offline)(void *ud, const struct kg_events_client *c);
	void *ud;
};

struct kg_events;

/* v21: the running broker has 2.1's events (CONNECT, CLIENT_OFFLINE; brokerinfo's api21).
 * ids_max, ids_per_user: the client-id table's bounds (clientids.h). sink is copied.
 * NULL when out of memory. Main thread. */
struct kg_events *kg_events__new(bool v21, size_t ids_max, size_t ids_per_user,
		const struct kg_events_sink *sink);
/* Frees without deciding anything (call kg_events__other first to push a pending will). */
void kg_events__free(struct kg_events *ev);

/* ---- the client id (BASIC_AUTH) ---------------------------------------------------------- */

enum kg_events_id {
	KG_EVENTS_ID_ALLOWED,       /* free, or the username's own (the same kit reconnecting) */
	KG_EVENTS_ID_TAKEOVER,      /* owned by another username, taken by a service user: allowed */
	KG_EVENTS_ID_REFUSED,       /* owned by another username (or anonymous on an owned id): refuse */
	KG_EVENTS_ID_FULL,          /* the table is full of other users' ids: refuse */
};

/* BASIC_AUTH of c (after the glue's own refusals, e.g. a username with '+'): settles what the
 * previous events left pending (a will, a client-id owner, as any event), decides c's client id and
 * notes c as a pending login (its owner when allowed and not anonymous; its session when c->kit;
 * a refused kit login is noted too, so its DISCONNECT does not close the kit's live session).
 * now_ms: the login's time (shown as "connected at"). Tell the outcome with kg_events__auth. */
enum kg_events_id kg_events__basic_auth(struct kg_events *ev, const struct kg_events_client *c,
		int64_t now_ms);

enum kg_events_auth {
	KG_EVENTS_AUTH_OK,          /* accepted by us (synchronously) */
	KG_EVENTS_AUTH_DEFERRED,    /* not decided by us (password_file or another plugin decides next) */
	KG_EVENTS_AUTH_REFUSED,     /* refused now (it will be disconnected) */
	KG_EVENTS_AUTH_DELAYED,     /* 2.1: decided later (kg_events__complete_begin/_end, CONNECT) */
};

/* The outcome of the BASIC_AUTH kg_events__basic_auth just saw, for client token. OK settles the
 * owner (2.0: recorded now; 2.1: at its CONNECT); REFUSED and DELAYED forget the pending owner;
 * REFUSED marks the pending session refused (never online, its DISCONNECT ignored), DELAYED
 * forgets it (CONNECT brings it online). */
void kg_events__auth(struct kg_events *ev, const void *token, enum kg_events_auth r);

/* 2.1: mosquitto_complete_basic_auth(client_id, ok ? success : refusal) is about to run / has run.
 * Between the two, a CONNECT with client_id (ok) records its owner and brings the kit online; a
 * DISCONNECT with client_id (not ok) is the refused login's, not an offline. client_id must stay
 * valid until kg_events__complete_end. */
void kg_events__complete_begin(struct kg_events *ev, const char *client_id, bool ok);
void kg_events__complete_end(struct kg_events *ev);

/* ---- connection state -------------------------------------------------------------------- */

/* 2.1 CONNECT: c's login succeeded. A kit (c->kit) goes online (the sink's online(), with c's
 * strings and now_ms); c's client id gets its owner when c passed kg_events__basic_auth's check
 * (or is the delayed login being completed). Ignored on 2.0 (never raised there). */
void kg_events__connect(struct kg_events *ev, const struct kg_events_client *c, int64_t now_ms);

/* DISCONNECT or CLIENT_OFFLINE of c (c->clean and c->id set). A will pending from before is pushed;
 * a login still pending is settled (2.0: c's own was refused or its client left at once: forgotten,
 * never online; anyone else's succeeded); then offline() unless c never logged in (a pending or
 * refused login, the delayed login being refused) or c is not a kit. The client id is released when c->clean and c
 * is its recorded connection. */
void kg_events__disconnect(struct kg_events *ev, const struct kg_events_client *c);

/* TICK: a pending will is pushed, a pending owner recorded (2.0); 2.0: every pending kit session
 * goes online (refused ones are dropped); 2.1: pending sessions are dropped (CONNECT decides). */
void kg_events__tick(struct kg_events *ev);

/* A kit measurement from client token (2.0): its pending session, if any, goes online now (with the
 * login's data), before the TICK. Returns whether it did. */
bool kg_events__publish(struct kg_events *ev, const void *token);

/* ---- measurements and wills ---------------------------------------------------------------- */

/* Any other event (ACL READ/WRITE check before its validation, RELOAD, plugin cleanup): a pending
 * will is pushed (will()) and, on 2.0, a pending owner recorded. Call it before the glue's memo is
 * overwritten. */
void kg_events__other(struct kg_events *ev);

/* The ACL WRITE check just validated a measurement into the glue's memo (publish or will): remember
 * its identity. Call after kg_events__other. */
void kg_events__write(struct kg_events *ev, const void *token, const char *topic, const void *payload,
		size_t len);

enum kg_events_msg {
	KG_EVENTS_MSG_MEMO,         /* the MESSAGE of the pending write: push the memo, no new check */
	KG_EVENTS_MSG_CHECK,        /* no memo of its own (bridge, another plugin's ACL, a repeated
	                             * MESSAGE): validate it here; a pending will was pushed first */
};

/* MESSAGE: whether it is the pending write's (same token, topic and payload pointers and length). */
enum kg_events_msg kg_events__message(struct kg_events *ev, const void *token, const char *topic,
		const void *payload, size_t len);

/* Whether a validated write is pending (a will until a MESSAGE claims it). */
bool kg_events__write_pending(const struct kg_events *ev);

/* ---- numbers --------------------------------------------------------------------------------- */

/* The client-id table (for counters: kg_clientids__count, __evicted); owned by ev. */
const struct kg_clientids *kg_events__clientids(const struct kg_events *ev);
/* Kit logins waiting in the pending table (for tests). */
size_t kg_events__pending(const struct kg_events *ev);

#endif
