/* clientids.h -- who owns which MQTT client id: a bounded map client id -> username (LRU), so a
 * kit can neither disconnect another kit nor take over its session by presenting its client id.
 * Pure (no mosquitto calls); one thread at a time (the broker thread in the plugin). */
#ifndef KITGATE_CLIENTIDS_H
#define KITGATE_CLIENTIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_clientids;

/* A map of at most max_entries ids (>= 1). NULL when out of memory. */
struct kg_clientids *kg_clientids__new(size_t max_entries);
void kg_clientids__free(struct kg_clientids *m);

/* Whether username (NULL: anonymous, which owns nothing) may use id: true when id is unknown or
 * owned by username. O(strlen(id)) on average; no allocation. */
bool kg_clientids__may_use(const struct kg_clientids *m, const char *id, const char *username);

/* Records that username (non-NULL) now owns id through connection conn (an opaque token, compared,
 * never dereferenced), and makes it the most recently used. When the map is full the least
 * recently used entry is evicted (counted; its id is unprotected until its owner connects again).
 * 0, or -1 out of memory (nothing changed). */
int kg_clientids__record(struct kg_clientids *m, const char *id, const char *username, const void *conn);

/* Connection conn using id went away. clean: its session ended with it, so the id is forgotten;
 * otherwise the session persists and the id stays owned (the entry keeps its LRU place). Nothing
 * happens when id is unknown or recorded for another connection (e.g. the old connection of a
 * takeover by the same owner). */
void kg_clientids__disconnected(struct kg_clientids *m, const char *id, const void *conn, bool clean);

size_t kg_clientids__count(const struct kg_clientids *m);
uint64_t kg_clientids__evicted(const struct kg_clientids *m);

#endif
