/* logincache.h -- verified kit logins, so a reconnecting kit costs one HMAC instead of PBKDF2.
 *
 * An entry is HMAC-SHA256, under a random key made per cache (per process), over (serial, password,
 * stored hash string). The password is never stored, and an entry can only be hit with the same
 * password AND the same stored hash: once the kit's password_hash changes, its old entries can
 * never match again (they age out). Bounded: a table of 4-way sets, each entry with two candidate
 * sets; when both are full the least recently used entry of the two is evicted. The table grows
 * with the fleet (kg_logincache__reserve) up to a stated maximum. Not locked: one cache belongs to one thread (the broker's). */
#ifndef KITGATE_LOGINCACHE_H
#define KITGATE_LOGINCACHE_H

#include <stddef.h>

struct kg_logincache;

/* A cache of at least capacity entries (rounded up to a power of two, minimum 4). Returns NULL
 * when out of memory or when no random key can be made. */
struct kg_logincache *kg_logincache__new(size_t capacity);
void kg_logincache__free(struct kg_logincache *c);

/* 1 if (serial, password, hash) was added before and not evicted since; 0 otherwise (also when
 * OpenSSL fails). One HMAC-SHA256 and a constant-time compare per probed slot (at most 8). */
int kg_logincache__hit(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash);

/* Remember a login that PBKDF2 has just verified. */
void kg_logincache__add(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash);

/* Grows the table, keeping every entry, so that it holds at least 2 * kits entries (at most half
 * full; the fixed 16,384-entry table with one set per entry left ~2,400 of 15,000 kits evicted by
 * their sets' neighbours and re-hashed with PBKDF2 at every reconnect), but never more than
 * max_entries (rounded down to a power of two). Never shrinks. 0, or -1 when out of memory (the
 * cache is unchanged). Called by the broker thread when a kits snapshot arrives. */
int kg_logincache__reserve(struct kg_logincache *c, size_t kits, size_t max_entries);

/* Slots in the table (the bound on count). */
size_t kg_logincache__capacity(const struct kg_logincache *c);

/* Entries currently held (for tests and statistics). */
size_t kg_logincache__count(const struct kg_logincache *c);

#endif
