/* backoff.h -- per-serial login failure backoff: after a failed secret check a kit serial is refused
 * without checking (no PBKDF2) for a window that starts at `initial_ms` and doubles with every
 * further failed check up to `max_ms`; a successful check clears it. So a flood of wrong secrets for
 * one serial costs one PBKDF2 per window instead of one per CONNECT.
 *
 * Bounded: a fixed table of 4-way sets keyed by the serial; a full set evicts the entry whose window
 * ended first (an attacker cycling more serials than the table holds only shortens windows, it never
 * grows memory). Pure and not locked: one table belongs to one thread (the broker's); times are the
 * caller's monotonic milliseconds. */
#ifndef KITGATE_BACKOFF_H
#define KITGATE_BACKOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_backoff;

/* A table of at least capacity entries (rounded up to a power of two, minimum 4); windows from
 * initial_ms doubling to max_ms (both > 0, initial_ms <= max_ms). NULL when out of memory. */
struct kg_backoff *kg_backoff__new(size_t capacity, int64_t initial_ms, int64_t max_ms);
void kg_backoff__free(struct kg_backoff *b);

/* Milliseconds left in serial's window at now_ms (> 0: refuse without checking), 0 if none. */
int64_t kg_backoff__remaining(const struct kg_backoff *b, const char *serial, int64_t now_ms);

/* True if serial has a failed check on record (in a window or not) that no success cleared since
 * and that was not evicted. The cold-login budget (authbudget.h) serves such serials last. */
bool kg_backoff__has(const struct kg_backoff *b, const char *serial);

/* A secret check for serial failed at now_ms: open (or double) its window. Returns the window's
 * length in ms. A serial whose last window ended more than max_ms ago starts again at initial_ms. */
int64_t kg_backoff__fail(struct kg_backoff *b, const char *serial, int64_t now_ms);

/* A secret check for serial succeeded: forget its failures. */
void kg_backoff__clear(struct kg_backoff *b, const char *serial);

/* Entries held (tests, statistics). */
size_t kg_backoff__count(const struct kg_backoff *b);

#endif
