/* clientids.h -- who owns which MQTT client id: a bounded map client id -> username, so a kit can
 * neither disconnect another kit nor take over (or block) its session by presenting its client id.
 * One username's activity never removes another username's id: each username owns at most
 * per_user ids (recording one more forgets that username's own least recently used offline id),
 * and the whole table holds at most max_entries ids; when it is full, a new id is refused
 * (kg_clientids__has_room), never made room for by evicting somebody else's.
 * Pure (no mosquitto calls); one thread at a time (the broker thread in the plugin). */
#ifndef KITGATE_CLIENTIDS_H
#define KITGATE_CLIENTIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_clientids;

/* A map of at most max_entries ids (>= 1), at most per_user (>= 1) of them per username (a username
 * may exceed it only by ids whose connections are all online). NULL when out of memory. */
struct kg_clientids *kg_clientids__new(size_t max_entries, size_t per_user);
void kg_clientids__free(struct kg_clientids *m);

/* Whether username (NULL: anonymous, which owns nothing) may use id: true when id is unknown or
 * owned by username. O(strlen(id)) on average; no allocation. */
bool kg_clientids__may_use(const struct kg_clientids *m, const char *id, const char *username);

/* Whether kg_clientids__record(m, id, username, ..) would find room: id is already username's, or
 * the table is not full, or username is at its per_user bound with an offline id of its own to
 * forget. False means: refuse the login (recording nothing would leave the id unprotected). */
bool kg_clientids__has_room(const struct kg_clientids *m, const char *id, const char *username);

/* Records that username (non-NULL) now owns id through connection conn (an opaque token, compared,
 * never dereferenced), and makes it username's most recently used id. When username already owns
 * per_user ids, its own least recently used offline id is forgotten (counted as evicted; only that
 * username's own sessions lose protection). 0; -1 out of memory or -2 the table is full (nothing
 * changed either way). Never removes another username's id, except the caller's own unchecked use
 * of an id owned by someone else (may_use false), which transfers it. */
int kg_clientids__record(struct kg_clientids *m, const char *id, const char *username, const void *conn);

/* Connection conn using id went away. clean: its session ended with it, so the id is forgotten;
 * otherwise the session persists and the id stays owned. Nothing happens when id is unknown or
 * recorded for another connection (e.g. the old connection of a takeover by the same owner). */
void kg_clientids__disconnected(struct kg_clientids *m, const char *id, const void *conn, bool clean);

size_t kg_clientids__count(const struct kg_clientids *m);
/* ids a username's own newer ids pushed out (its own, past per_user) */
uint64_t kg_clientids__evicted(const struct kg_clientids *m);
/* how many ids username owns (0 when none or NULL) */
size_t kg_clientids__owned(const struct kg_clientids *m, const char *username);

#endif
