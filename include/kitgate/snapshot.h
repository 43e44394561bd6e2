/* snapshot.h -- the kits snapshot for `auth postgres`: kits (serial, password hash), peripherals
 * (id -> kit, configuration) and quantity types, loaded off the broker thread by a loader thread
 * with its own libpq connection, published as an immutable, reference-counted value.
 *
 * Thread rules: a struct kg_snapshot never changes once sealed; any thread holding a reference may
 * read it without a lock. The loader thread builds and publishes; the broker thread takes the
 * newest one in MOSQ_EVT_TICK (kg_snapshot__take) and keeps its own reference until the next.
 * Nothing here calls mosquitto_*; log lines go through kg_log (the plugin's outbox). */
#ifndef KITGATE_SNAPSHOT_H
#define KITGATE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "kitgate/validate.h"

struct kg_snapshot;
struct kg_snapshot_loader;

struct kg_snapshot_kit {
	int32_t id;
	const char *serial;
	const char *password_hash;   /* as stored; parsed (kg_pbkdf2__parse) at login time */
};

/* ---- building (the loader, tests) ---------------------------------------------------------- */

/* An empty, unsealed snapshot with one reference. NULL when out of memory. */
struct kg_snapshot *kg_snapshot__new(void);
/* Add rows; strings are copied. 0, or -1 when out of memory. Only before kg_snapshot__seal. */
int kg_snapshot__add_kit(struct kg_snapshot *s, int32_t id, const char *serial, const char *hash);
int kg_snapshot__add_peripheral(struct kg_snapshot *s, int32_t id, int32_t kit_id, const char *configuration);
int kg_snapshot__add_quantity_type(struct kg_snapshot *s, int32_t id);
/* Sort and index; peripherals whose kit_id is not a kit are dropped. Afterwards s is immutable.
 * 0, or -1 when out of memory. */
int kg_snapshot__seal(struct kg_snapshot *s);

/* ---- reading (any thread holding a reference to a sealed snapshot) ------------------------- */

struct kg_snapshot *kg_snapshot__ref(struct kg_snapshot *s);
/* Drop a reference; the last one frees. NULL is ignored. */
void kg_snapshot__unref(struct kg_snapshot *s);

size_t kg_snapshot__nkits(const struct kg_snapshot *s);
size_t kg_snapshot__nperipherals(const struct kg_snapshot *s);
size_t kg_snapshot__nquantity_types(const struct kg_snapshot *s);

/* The kit with this serial (len bytes, need not be NUL-terminated), or NULL. O(log n). */
const struct kg_snapshot_kit *kg_snapshot__kit(const struct kg_snapshot *s, const char *serial, size_t len);
/* The configuration JSON text of a peripheral, or NULL when unknown. */
const char *kg_snapshot__peripheral_configuration(const struct kg_snapshot *s, int32_t peripheral);

/* Ownership of a validated measurement published on kit/<serial>/...: KG_OK, or
 * KG_UNKNOWN_PERIPHERAL, KG_FOREIGN_PERIPHERAL (the peripheral belongs to another kit, or the
 * topic's serial is no kit) or KG_UNKNOWN_QUANTITY_TYPE. Broker hot path: two binary searches and
 * a memcmp, no allocation. */
enum kg_reason kg_snapshot__check(const struct kg_snapshot *s, const char *serial, size_t slen,
		int32_t peripheral, int32_t quantity_type);

/* 1 if a and b hold the same rows. */
int kg_snapshot__same(const struct kg_snapshot *a, const struct kg_snapshot *b);

/* Calls fn(serial, arg) for every kit of old that new no longer has, or has with another
 * password hash (the kits to disconnect). Returns how many. */
size_t kg_snapshot__diff(const struct kg_snapshot *old, const struct kg_snapshot *new_,
		void (*fn)(const char *serial, void *arg), void *arg);

/* ---- the loader thread --------------------------------------------------------------------- */

/* Start the loader: connects to database_url (libpq URI), LISTENs on kitgate_kits, loads at once,
 * then every refresh_s seconds whatever the notifications do, and after a notification (debounced
 * 50 ms, never postponed more than 1 s by a stream of them: reloadsched.h); on a database error it keeps
 * the last snapshot and reconnects with a backoff of 1 s .. 5 s. Main thread, at init. NULL when
 * out of memory or the thread cannot start (never because the database is down). */
struct kg_snapshot_loader *kg_snapshot__start(const char *database_url, int refresh_s);

/* Tests (test_plugin): a loader started while a source is set loads its snapshots from fn(arg)
 * instead of PostgreSQL (database_url is not used): fn runs on the loader thread, at the times a
 * load would, and returns a new sealed snapshot with one reference for the loader, or NULL (a
 * failed load). NULL fn: PostgreSQL again. Main thread, before kg_snapshot__start. */
void kg_snapshot__test_source(struct kg_snapshot *(*fn)(void *arg), void *arg);

/* Broker thread (TICK): when a snapshot newer than *gen was published, returns a new reference to
 * it, updates *gen and hands over the serials to disconnect since the last take (*kicks: malloc'd
 * array of malloc'd strings, the caller frees all; *nkicks may be 0). Otherwise NULL (one atomic
 * load, no lock). */
struct kg_snapshot *kg_snapshot__take(struct kg_snapshot_loader *l, uint64_t *gen, char ***kicks, size_t *nkicks);

/* Ask the loader to load now (tests, tools). Any thread. */
void kg_snapshot__poke(struct kg_snapshot_loader *l);

/* The broker saw a measurement whose peripheral or quantity type this snapshot does not know (it
 * may be newer): ask for a fresh one. Cheap and idempotent until the loader has served it (one
 * atomic load when an ask is pending; a wake-up otherwise); the loader serves asks at most once
 * every 5 s after its last load, so a kit that keeps sending an unknown id causes no reload storm.
 * Any thread. */
void kg_snapshot__ask_refresh(struct kg_snapshot_loader *l);

/* Loads that succeeded since start, and asks (kg_snapshot__ask_refresh) that woke the loader.
 * Any thread. */
void kg_snapshot__counts(struct kg_snapshot_loader *l, uint64_t *loads, uint64_t *asks);

/* Stop and join the loader, free everything it holds. Main thread, at cleanup. NULL is ignored. */
void kg_snapshot__stop(struct kg_snapshot_loader *l);

#endif
