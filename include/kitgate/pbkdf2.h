/* pbkdf2.h -- the kit password hashes AstroPlant and its auth plugins write:
 * PBKDF2$sha256|sha512$<iterations>$<salt as text>$<base64 key> (SPEC "Authentication"). */
#ifndef KITGATE_PBKDF2_H
#define KITGATE_PBKDF2_H

#include <stddef.h>
#include <stdint.h>

#define KG_PBKDF2_MAX_KEY 128         /* decoded key bytes */
#define KG_PBKDF2_MAX_SALT 255        /* salt characters */
#define KG_PBKDF2_MAX_ITER 10000000   /* 10 M: a hash needing more never parses; the ceiling of ... */
/* ... auth_max_iterations, whose default is this: admits AstroPlant's sha256/15000, go-auth's
 * sha512/100000, OWASP's 2023 minimums (sha256 600,000, sha512 210,000) and Django's current
 * sha256 1,000,000, while one check on the 2.0 broker thread stays under a second (~0.3-0.7 s
 * here, where 10 M took 7.4 s). A stored hash needing more is refused unchecked. */
#define KG_AUTH_MAX_ITERATIONS_DEFAULT 1000000

enum kg_pbkdf2_alg { KG_PBKDF2_SHA256 = 0, KG_PBKDF2_SHA512 = 1 };

/* A parsed hash. Plain data: copyable, nothing to free. */
struct kg_pbkdf2 {
	enum kg_pbkdf2_alg alg;
	uint32_t iterations;
	size_t salt_len;
	size_t key_len;
	char salt[KG_PBKDF2_MAX_SALT + 1];   /* the literal salt text (used as its bytes), NUL-terminated */
	uint8_t key[KG_PBKDF2_MAX_KEY];
};

/* Parse s (NUL-terminated). Returns 0, or -1 with *why (if not NULL) pointing to a static
 * phrase naming the problem ("unknown algorithm", "bad base64 key", ...). Never logs. Any thread. */
int kg_pbkdf2__parse(const char *s, struct kg_pbkdf2 *out, const char **why);

/* Derive PBKDF2 over password (pwlen bytes) with h's algorithm, iterations and salt and compare
 * with h->key in constant time (CRYPTO_memcmp). Returns 1 on a match, 0 on a mismatch, -1 when
 * OpenSSL fails. Costs h->iterations HMAC pairs: call it once per login, not per message. Any
 * thread. */
int kg_pbkdf2__verify(const struct kg_pbkdf2 *h, const char *password, size_t pwlen);

/* Format a fresh hash string of password (for tools and tests): alg, iterations, salt text,
 * key_len bytes. Writes at most outlen bytes including the NUL; returns 0, or -1 when the
 * arguments are out of range or outlen is too small. Any thread. */
int kg_pbkdf2__format(enum kg_pbkdf2_alg alg, uint32_t iterations, const char *salt,
		const char *password, size_t key_len, char *out, size_t outlen);

#endif
