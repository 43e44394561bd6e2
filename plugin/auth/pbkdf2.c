/* pbkdf2.c -- parse and verify PBKDF2$<alg>$<iterations>$<salt>$<base64 key> hashes with OpenSSL
 * (see pbkdf2.h). Pure: no global state, no logging, any thread.
 *
 * The derivation runs HMAC from the two precomputed pad states of OpenSSL's SHA-256/SHA-512
 * contexts, copied by value per iteration: no allocation. OpenSSL 3's PKCS5_PBKDF2_HMAC copies
 * EVP contexts (4 allocations per iteration, 60,000 per AstroPlant login of 15,000 iterations)
 * and took 4.4 times as long (24 ms against 5.6 ms per login on the project's loaded 2-core
 * machine; issue 20: a cold login storm of 15,000 kits is that many PBKDF2s on the broker thread).
 * test_pbkdf2 compares it with PKCS5_PBKDF2_HMAC. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co.: deprecated in OpenSSL 3, still provided */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "kitgate/base64.h"
#include "kitgate/pbkdf2.h"

int kg_pbkdf2__parse(const char *s, struct kg_pbkdf2 *out, const char **why)
{
	const char *f[5];
	size_t flen[5];
	const char *p = s, *d;
	unsigned long long it;
	char *end;
	int i, n;
	const char *dummy;

	if(!why) why = &dummy;
	if(!s){
		*why = "no hash";
		return -1;
	}
	for(i = 0; i < 5; i++){
		d = strchr(p, '$');
		if(i < 4 && !d){
			*why = "not 5 '$'-separated fields";
			return -1;
		}
		if(i == 4 && d){
			*why = "more than 5 '$'-separated fields";
			return -1;
		}
		f[i] = p;
		flen[i] = d ? (size_t)(d - p) : strlen(p);
		p = d ? d + 1 : p + flen[i];
	}
	if(flen[0] != 6 || memcmp(f[0], "PBKDF2", 6)){
		*why = "does not start with PBKDF2$";
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if(flen[1] == 6 && !memcmp(f[1], "sha256", 6)){
		out->alg = KG_PBKDF2_SHA256;
	}else if(flen[1] == 6 && !memcmp(f[1], "sha512", 6)){
		out->alg = KG_PBKDF2_SHA512;
	}else{
		*why = "unknown algorithm (sha256 or sha512)";
		return -1;
	}
	if(flen[2] == 0 || flen[2] > 8 || f[2][0] < '1' || f[2][0] > '9'){
		*why = "bad iteration count";
		return -1;
	}
	it = strtoull(f[2], &end, 10);
	if(end != f[2] + flen[2] || it < 1 || it > KG_PBKDF2_MAX_ITER){
		*why = "bad iteration count";
		return -1;
	}
	out->iterations = (uint32_t)it;
	if(flen[3] == 0 || flen[3] > KG_PBKDF2_MAX_SALT){
		*why = "empty or too long salt";
		return -1;
	}
	memcpy(out->salt, f[3], flen[3]);
	out->salt[flen[3]] = '\0';
	out->salt_len = flen[3];
	n = (int)kg_base64__decode(f[4], flen[4], out->key, sizeof(out->key), KG_BASE64_PADDED);
	if(n <= 0){
		*why = "bad base64 key";
		return -1;
	}
	out->key_len = (size_t)n;
	return 0;
}

/* One hash function's contexts, by value (SHA512_CTX serves SHA-512; SHA256_CTX SHA-256). */
struct hctx {
	union { SHA256_CTX s256; SHA512_CTX s512; } u;
};

struct hfun {
	size_t block, len;
	int (*init)(struct hctx *c);
	int (*update)(struct hctx *c, const void *d, size_t n);
	int (*final)(unsigned char *md, struct hctx *c);
};

static int s256_init(struct hctx *c) { return SHA256_Init(&c->u.s256); }
static int s256_update(struct hctx *c, const void *d, size_t n) { return SHA256_Update(&c->u.s256, d, n); }
static int s256_final(unsigned char *md, struct hctx *c) { return SHA256_Final(md, &c->u.s256); }
static int s512_init(struct hctx *c) { return SHA512_Init(&c->u.s512); }
static int s512_update(struct hctx *c, const void *d, size_t n) { return SHA512_Update(&c->u.s512, d, n); }
static int s512_final(unsigned char *md, struct hctx *c) { return SHA512_Final(md, &c->u.s512); }

static const struct hfun sha256_fun = { SHA256_CBLOCK, SHA256_DIGEST_LENGTH, s256_init, s256_update, s256_final };
static const struct hfun sha512_fun = { SHA512_CBLOCK, SHA512_DIGEST_LENGTH, s512_init, s512_update, s512_final };

/* PBKDF2-HMAC (RFC 8018) with f: the inner and outer pad states computed once, copied per HMAC. */
static int derive(enum kg_pbkdf2_alg alg, uint32_t iterations, const char *salt, size_t salt_len,
		const char *password, size_t pwlen, uint8_t *key, size_t key_len)
{
	const struct hfun *f = alg == KG_PBKDF2_SHA512 ? &sha512_fun : &sha256_fun;
	unsigned char k[SHA512_CBLOCK] = {0}, pad[SHA512_CBLOCK], u[SHA512_DIGEST_LENGTH], t[SHA512_DIGEST_LENGTH];
	struct hctx ictx, octx, c;
	uint32_t block, j;
	size_t i, n;
	int ok = 1;

	assert(iterations >= 1 && iterations <= KG_PBKDF2_MAX_ITER);
	assert(key_len >= 1 && key_len <= KG_PBKDF2_MAX_KEY);
	if(pwlen > INT32_MAX) return -1;
	if(!password) password = "";
	if(pwlen > f->block){ /* HMAC: a key longer than a block is hashed first */
		ok &= f->init(&c) & f->update(&c, password, pwlen) & f->final(k, &c);
	}else{
		memcpy(k, password, pwlen);
	}
	for(i = 0; i < f->block; i++) pad[i] = k[i] ^ 0x36;
	ok &= f->init(&ictx) & f->update(&ictx, pad, f->block);
	for(i = 0; i < f->block; i++) pad[i] = k[i] ^ 0x5c;
	ok &= f->init(&octx) & f->update(&octx, pad, f->block);
	for(block = 1; ok && key_len > 0; block++){
		unsigned char be[4] = { (unsigned char)(block >> 24), (unsigned char)(block >> 16),
				(unsigned char)(block >> 8), (unsigned char)block };

		c = ictx; /* U1 = HMAC(P, S || INT(block)) */
		ok &= f->update(&c, salt, salt_len) & f->update(&c, be, 4) & f->final(u, &c);
		c = octx;
		ok &= f->update(&c, u, f->len) & f->final(u, &c);
		memcpy(t, u, f->len);
		for(j = 1; j < iterations; j++){ /* Uj = HMAC(P, Uj-1); T ^= Uj */
			c = ictx;
			ok &= f->update(&c, u, f->len) & f->final(u, &c);
			c = octx;
			ok &= f->update(&c, u, f->len) & f->final(u, &c);
			for(i = 0; i < f->len; i++) t[i] ^= u[i];
		}
		n = key_len < f->len ? key_len : f->len;
		memcpy(key, t, n);
		key += n;
		key_len -= n;
	}
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(u, sizeof(u));
	OPENSSL_cleanse(t, sizeof(t));
	OPENSSL_cleanse(&ictx, sizeof(ictx));
	OPENSSL_cleanse(&octx, sizeof(octx));
	OPENSSL_cleanse(&c, sizeof(c));
	return ok ? 0 : -1;
}

int kg_pbkdf2__verify(const struct kg_pbkdf2 *h, const char *password, size_t pwlen)
{
	uint8_t key[KG_PBKDF2_MAX_KEY];
	int eq;

	if(derive(h->alg, h->iterations, h->salt, h->salt_len, password, pwlen, key, h->key_len) != 0){
		return -1;
	}
	eq = CRYPTO_memcmp(key, h->key, h->key_len) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	return eq;
}

int kg_pbkdf2__format(enum kg_pbkdf2_alg alg, uint32_t iterations, const char *salt,
		const char *password, size_t key_len, char *out, size_t outlen)
{
	uint8_t key[KG_PBKDF2_MAX_KEY];
	char b64[(KG_PBKDF2_MAX_KEY + 2) / 3 * 4 + 1];
	size_t slen = salt ? strlen(salt) : 0;
	int n;

	if(iterations < 1 || iterations > KG_PBKDF2_MAX_ITER || key_len < 1 || key_len > KG_PBKDF2_MAX_KEY
			|| slen < 1 || slen > KG_PBKDF2_MAX_SALT || strchr(salt, '$')){
		return -1;
	}
	if(derive(alg, iterations, salt, slen, password, password ? strlen(password) : 0, key, key_len)) return -1;
	EVP_EncodeBlock((unsigned char *)b64, key, (int)key_len);
	OPENSSL_cleanse(key, sizeof(key));
	n = snprintf(out, outlen, "PBKDF2$%s$%u$%s$%s", alg == KG_PBKDF2_SHA512 ? "sha512" : "sha256",
			iterations, salt, b64);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
