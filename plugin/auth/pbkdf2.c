/* pbkdf2.c -- parse and verify PBKDF2$<alg>$<iterations>$<salt>$<base64 key> hashes with OpenSSL
 * (see pbkdf2.h). Pure: no global state, no logging, any thread. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kitgate/base64.h"
#include "kitgate/pbkdf2.h"

static const EVP_MD *alg_md(enum kg_pbkdf2_alg alg)
{
	return alg == KG_PBKDF2_SHA512 ? EVP_sha512() : EVP_sha256();
}

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

static int derive(enum kg_pbkdf2_alg alg, uint32_t iterations, const char *salt, size_t salt_len,
		const char *password, size_t pwlen, uint8_t *key, size_t key_len)
{
	assert(iterations >= 1 && iterations <= KG_PBKDF2_MAX_ITER);
	assert(key_len >= 1 && key_len <= KG_PBKDF2_MAX_KEY);
	if(pwlen > INT32_MAX) return -1;
	if(PKCS5_PBKDF2_HMAC(password ? password : "", (int)pwlen, (const unsigned char *)salt,
				(int)salt_len, (int)iterations, alg_md(alg), (int)key_len, key) != 1){
		return -1;
	}
	return 0;
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
