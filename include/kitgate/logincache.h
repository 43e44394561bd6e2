/* logincache.h -- verified kit logins, so a reconnecting kit costs one HMAC instead of PBKDF2.
 *
 * An entry is HMAC-SHA256, under a random key made per cache (per process), over (serial, password,
 * stored hash string). The password is never stored, and an entry can only be hit with the same
 * password AND the same stored hash: once the kit's password_hash changes, its old entries can
 * never match again (they age out). Bounded: a fixed table of 4-way sets, the least recently used
 * entry of a set is evicted. Not locked: one cache belongs to one thread (the broker's). */
#ifndef KITGATE_LOGINCACHE_H
#define KITGATE_LOGINCACHE_H

#include <stddef.h>

struct kg_logincache;

/* A cache of at least capacity entries (rounded up to a power of two, minimum 4). Returns NULL
 * when out of memory or when no random key can be made. */
struct kg_logincache *kg_logincache__new(size_t capacity);
void kg_logincache__free(struct kg_logincache *c);

/* 1 if (serial, password, hash) was added before and not evicted since; 0 otherwise (also when
 * OpenSSL fails). One HMAC-SHA256 and a constant-time compare per probed slot. */
int kg_logincache__hit(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash);

/* Remember a login that PBKDF2 has just verified. */
void kg_logincache__add(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash);

/* Entries currently held (for tests and statistics). */
size_t kg_logincache__count(const struct kg_logincache *c);

#endif
