/* backoff.h -- login failure backoff: after a failed secret check a key (in the plugin: a kit serial
 * from one source address, kg_backoff__source_key) is refused without checking (no PBKDF2) for a
 * window that starts at `initial_ms` and doubles with every further failed check up to `max_ms`; a
 * successful check clears it. So a flood of wrong secrets from one source costs one PBKDF2 per window
 * instead of one per CONNECT, and only that source waits: the kit itself, from another address, is
 * not locked out by it. A second table keyed by the bare serial decides the cold-login budget's
 * class (authbudget.h): a serial on record there is served last.
 *
 * Bounded: a fixed table of 4-way sets; the set of a key is SipHash-2-4 (siphash.h) of the key
 * under a random per-table key, so nobody outside the process can compute which keys share a set.
 * An entry is *live* while its window runs and for max_ms after it ended; a live entry is never
 * evicted. A failing key that finds its set full takes the empty way or else the stale entry whose
 * window ended first (counted as an eviction); if all four are live, it is not recorded (counted as
 * an overflow) and its whole set is marked *overflowed* for initial_ms + max_ms (as long as the
 * newcomer's own entry would have stayed live): during that time every key of the set that is not
 * on record counts as suspect (kg_backoff__has), but is not put into a window, so an overflowed set
 * costs the budget's upper half, never a lockout of kits that did not fail. Memory never grows.
 * Pure and not locked: one table belongs to one thread (the broker's); times are the caller's
 * monotonic milliseconds. Below, "serial" is any key of at most KG_BACKOFF_KEY_MAX bytes. */
#ifndef KITGATE_BACKOFF_H
#define KITGATE_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kitgate/record.h"     /* KG_SERIAL_MAX */
#include "kitgate/siphash.h"

/* A serial, '\n', an address as text (INET6_ADDRSTRLEN - 1 = 45 at most). */
#define KG_BACKOFF_KEY_MAX (KG_SERIAL_MAX + 1 + 45)

struct kg_backoff;

/* The window key of serial (1..KG_SERIAL_MAX bytes) logging in from address (NULL: unknown):
 * "<serial>\n<address>", where an IPv6 address counts by its /64 prefix (a host's usual share; an
 * IPv4-mapped one by its IPv4 address) and anything else verbatim, cut to 45 bytes. Its length,
 * or -1 for a bad serial (out untouched). */
int kg_backoff__source_key(char out[KG_BACKOFF_KEY_MAX + 1], const char *serial, const char *address);

/* A table of at least capacity entries (rounded up to a power of two, minimum 4); windows from
 * initial_ms doubling to max_ms (both > 0, initial_ms <= max_ms); a random SipHash key
 * (kg_siphash__random_key). NULL when out of memory or on bad arguments. */
struct kg_backoff *kg_backoff__new(size_t capacity, int64_t initial_ms, int64_t max_ms);

/* The same with the given key, for tests that need serials sharing a set: the set of a serial is
 * kg_siphash__hash(key, serial, strlen(serial)) modulo the number of sets (capacity rounded up as
 * above, divided by 4). Never use a fixed key outside tests. */
struct kg_backoff *kg_backoff__new_keyed(size_t capacity, int64_t initial_ms, int64_t max_ms,
		const uint8_t key[KG_SIPHASH_KEY_LEN]);
void kg_backoff__free(struct kg_backoff *b);

/* Milliseconds left in serial's window at now_ms (> 0: refuse without checking), 0 if none. */
int64_t kg_backoff__remaining(const struct kg_backoff *b, const char *serial, int64_t now_ms);

/* True if serial is suspect at now_ms: it has a failed check on record (in a window or not) that no
 * success cleared since and that was not evicted, or it is not on record but its set overflowed
 * less than initial_ms + max_ms ago. The cold-login budget (authbudget.h) serves such serials last. */
bool kg_backoff__has(const struct kg_backoff *b, const char *serial, int64_t now_ms);

/* A secret check for serial failed at now_ms: open (or double) its window. Returns the window's
 * length in ms; 0 if the serial could not be recorded (its set is full of live entries: an overflow,
 * see above) or the arguments are bad. A serial whose last window ended more than max_ms ago starts
 * again at initial_ms. */
int64_t kg_backoff__fail(struct kg_backoff *b, const char *serial, int64_t now_ms);

/* A secret check for serial succeeded: forget its failures (not its set's overflow mark). */
void kg_backoff__clear(struct kg_backoff *b, const char *serial);

/* Entries held; stale entries evicted for a newcomer; failures not recorded because the set was
 * full of live entries (tests, statistics). */
size_t kg_backoff__count(const struct kg_backoff *b);
uint64_t kg_backoff__evicted(const struct kg_backoff *b);
uint64_t kg_backoff__overflowed(const struct kg_backoff *b);

#endif
