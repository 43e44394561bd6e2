/* kitdir.h -- the live view's kit directory: what the HTTP threads list, page and search, kept up
 * to date incrementally by the broker thread (one kit's or one stream's JSON at a time, O(1) under
 * a short lock), so that no snapshot of every kit is ever built on the broker thread.
 *
 * Holds, per kit, its status JSON (kg_kits__format_json) and its streams' statistics JSON; the
 * generic stats_topics streams; and a bounded map client id -> serial for the client-id lookup.
 * Memory: at most one entry per kit the live view tracks (the broker thread removes evicted kits),
 * ~0.5 KiB of JSON each plus ~0.3 KiB per stream; the client-id map holds at most 4 ids per kit
 * slot (oldest forgotten).
 *
 * Thread-safe: the writers (put/remove) are meant for the broker thread, the readers for the HTTP
 * threads; every function takes the directory's lock for O(1) work, except the readers, which hold
 * it for O(entries they return). Paging sorts serials on the reading thread (an index rebuilt at
 * most every KG_KITDIR_INDEX_MS after the set of kits changed; the copy of the serials under the
 * lock is O(kits), once per rebuild). */
#ifndef KITGATE_KITDIR_H
#define KITGATE_KITDIR_H

#include <stddef.h>
#include <stdint.h>

#define KG_KITDIR_INDEX_MS 250
#define KG_KITDIR_PAGE_MAX 1000      /* most kits one page returns */

struct kg_kitdir;

/* A directory for about max_kits kits. NULL on out of memory. */
struct kg_kitdir *kg_kitdir__new(size_t max_kits);
void kg_kitdir__free(struct kg_kitdir *d);

/* Writers (broker thread). Strings are copied; out of memory leaves the old entry. */
/* Set a kit's status JSON (a JSON object) and the client ids it uses (ncids of them). */
void kg_kitdir__put_kit(struct kg_kitdir *d, const char *serial, const char *json, size_t len,
		const char *const *cids, size_t ncids);
/* Forget a kit and its streams. */
void kg_kitdir__remove_kit(struct kg_kitdir *d, const char *serial);
/* Set a stream's statistics JSON (kg_stats__format_json). A kit stream (kit/<serial>/stats/<p>/<q>)
 * goes with its kit, any other topic to the generic streams. */
void kg_kitdir__put_stream(struct kg_kitdir *d, const char *topic, const char *json, size_t len);
void kg_kitdir__remove_stream(struct kg_kitdir *d, const char *topic);

/* Readers (HTTP threads). Each returns malloc'd NUL-terminated JSON text (the caller frees) or
 * NULL (not found, or out of memory). */
/* A page of kits sorted by serial, as a JSON array of kit objects (each with "streams"): those whose
 * serial starts with prefix (NULL or "" = all), after the serial `after` when given (a cursor),
 * else skipping `offset`; at most limit (capped at KG_KITDIR_PAGE_MAX). *total = kits matching the
 * prefix; next (KG_SERIAL_MAX + 1 bytes) = the last serial returned when more follow, else "". */
char *kg_kitdir__kits(struct kg_kitdir *d, const char *prefix, const char *after, size_t offset,
		size_t limit, size_t *total, char *next);
/* One kit with its streams. */
char *kg_kitdir__kit(struct kg_kitdir *d, const char *serial);
/* The kit that most recently used this client id. */
char *kg_kitdir__client(struct kg_kitdir *d, const char *client_id);
/* Generic streams, most recently updated first, as a JSON array; *total = how many there are. */
char *kg_kitdir__streams(struct kg_kitdir *d, size_t offset, size_t limit, size_t *total);
/* Kits listed (with a status), any thread. */
size_t kg_kitdir__count(struct kg_kitdir *d);

#endif
