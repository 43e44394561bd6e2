/* test_pbkdf2.c -- PBKDF2$alg$iter$salt$key parsing and verification (plugin/auth/pbkdf2.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "kitgate/pbkdf2.h"

#define KA_PASSWORD "It all adds up to normality."
/* The SPEC's known answer (AstroPlant astroplant-auth/src/hash.rs; also Python hashlib.pbkdf2_hmac
 * and `openssl kdf ... PBKDF2`). */
#define KA_HASH "PBKDF2$sha256$2000$Z416JHE8vSmaiamV5TRz$z3y6FvWAZtyQe6TV+O/oyhC3oqnF8KJdlB5Lphi+Lwg="
/* sha512 (mosquitto-go-auth's default algorithm), 1000 iterations, 64-byte key; Python hashlib. */
#define SHA512_HASH "PBKDF2$sha512$1000$goAuthSalt1234$OtU+Jcn9scKggbuWGjTONPxHkminpaCAwYJDq+vzWrx2mu96D2pnYxoTfoxuaLGHB8pWQ/SrtiMUP8uWQRxLTQ=="
/* jpmens auth-plug "np" style: 24-byte key, salt that looks like base64 but is used as text. */
#define NP_HASH "PBKDF2$sha256$901$c2FsdHNhbHQx$WOVbZkDNGVLouia2QWDodbNNzqZzN2tQ"

/* The allocation-free derivation (issue 20: 4.4 times as fast as OpenSSL 3's PKCS5_PBKDF2_HMAC)
 * against PKCS5_PBKDF2_HMAC itself: passwords around both block sizes (64, 128: longer ones are
 * hashed first), keys of one to several digest blocks, 1 to 3 and 50 iterations, both hashes. */
static void test_against_openssl(void **state)
{
	char pw[300];
	size_t pwlen, i;
	int alg, iters[] = { 1, 2, 3, 50 }, it;

	(void)state;
	for(i = 0; i < sizeof(pw); i++) pw[i] = (char)(' ' + (i * 7) % 90);
	for(alg = 0; alg < 2; alg++){
		for(pwlen = 0; pwlen < sizeof(pw); pwlen += (pwlen < 140 ? 1 : 37)){
			for(it = 0; it < 4; it++){
				struct kg_pbkdf2 h = {0};
				size_t key_len = 1 + (pwlen * 13) % KG_PBKDF2_MAX_KEY;

				h.alg = alg ? KG_PBKDF2_SHA512 : KG_PBKDF2_SHA256;
				h.iterations = (uint32_t)iters[it];
				h.salt_len = 1 + pwlen % 20;
				memcpy(h.salt, "saltSALTsaltSALTsalt", h.salt_len);
				h.key_len = key_len;
				assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)pwlen, (const unsigned char *)h.salt,
						(int)h.salt_len, iters[it], alg ? EVP_sha512() : EVP_sha256(), (int)key_len, h.key), 1);
				assert_int_equal(kg_pbkdf2__verify(&h, pw, pwlen), 1);
				h.key[key_len - 1] ^= 1;
				assert_int_equal(kg_pbkdf2__verify(&h, pw, pwlen), 0);
			}
		}
	}
}

static void test_known_answer(void **state)
{
	struct kg_pbkdf2 h;
	const char *why = NULL;
	(void)state;

	assert_int_equal(kg_pbkdf2__parse(KA_HASH, &h, &why), 0);
	assert_int_equal(h.alg, KG_PBKDF2_SHA256);
	assert_int_equal(h.iterations, 2000);
	assert_string_equal(h.salt, "Z416JHE8vSmaiamV5TRz");
	assert_int_equal(h.salt_len, 20);
	assert_int_equal(h.key_len, 32);
	assert_int_equal(h.key[0], 0xcf);
	assert_int_equal(kg_pbkdf2__verify(&h, KA_PASSWORD, strlen(KA_PASSWORD)), 1);
	assert_int_equal(kg_pbkdf2__verify(&h, KA_PASSWORD, strlen(KA_PASSWORD) - 1), 0);
	assert_int_equal(kg_pbkdf2__verify(&h, "it all adds up to normality.", strlen(KA_PASSWORD)), 0);
	assert_int_equal(kg_pbkdf2__verify(&h, "", 0), 0);
}

/* One flipped key bit, one other salt character, one iteration more: no match. */
static void test_near_misses_do_not_verify(void **state)
{
	struct kg_pbkdf2 h;
	(void)state;

	assert_int_equal(kg_pbkdf2__parse("PBKDF2$sha256$2000$Z416JHE8vSmaiamV5TRz$"
				"Z3y6FvWAZtyQe6TV+O/oyhC3oqnF8KJdlB5Lphi+Lwg=", &h, NULL), 0);
	assert_int_equal(h.key[0], 0x67);
	assert_int_equal(kg_pbkdf2__verify(&h, KA_PASSWORD, strlen(KA_PASSWORD)), 0);
	assert_int_equal(kg_pbkdf2__parse("PBKDF2$sha256$2000$z416JHE8vSmaiamV5TRz$"
				"z3y6FvWAZtyQe6TV+O/oyhC3oqnF8KJdlB5Lphi+Lwg=", &h, NULL), 0);
	assert_int_equal(kg_pbkdf2__verify(&h, KA_PASSWORD, strlen(KA_PASSWORD)), 0);
	assert_int_equal(kg_pbkdf2__parse("PBKDF2$sha256$2001$Z416JHE8vSmaiamV5TRz$"
				"z3y6FvWAZtyQe6TV+O/oyhC3oqnF8KJdlB5Lphi+Lwg=", &h, NULL), 0);
	assert_int_equal(kg_pbkdf2__verify(&h, KA_PASSWORD, strlen(KA_PASSWORD)), 0);
}

static void test_sha512_and_key_lengths(void **state)
{
	struct kg_pbkdf2 h;
	(void)state;

	assert_int_equal(kg_pbkdf2__parse(SHA512_HASH, &h, NULL), 0);
	assert_int_equal(h.alg, KG_PBKDF2_SHA512);
	assert_int_equal(h.key_len, 64);
	assert_int_equal(kg_pbkdf2__verify(&h, "secret-of-k1", 12), 1);
	assert_int_equal(kg_pbkdf2__verify(&h, "secret-of-k2", 12), 0);

	assert_int_equal(kg_pbkdf2__parse(NP_HASH, &h, NULL), 0);
	assert_int_equal(h.key_len, 24);                  /* no padding: 32 chars -> 24 bytes */
	assert_int_equal(kg_pbkdf2__verify(&h, "np", 2), 1);
	assert_int_equal(kg_pbkdf2__verify(&h, "nq", 2), 0);
}

static void test_format_round_trip(void **state)
{
	char buf[400];
	struct kg_pbkdf2 h;
	(void)state;

	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 2000, "Z416JHE8vSmaiamV5TRz", KA_PASSWORD, 32,
				buf, sizeof(buf)), 0);
	assert_string_equal(buf, KA_HASH);
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA512, 1000, "goAuthSalt1234", "secret-of-k1", 64,
				buf, sizeof(buf)), 0);
	assert_string_equal(buf, SHA512_HASH);
	/* key lengths that need one and two '=' */
	for(size_t klen = 1; klen <= 40; klen++){
		assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 3, "s", "pw", klen, buf, sizeof(buf)), 0);
		assert_int_equal(kg_pbkdf2__parse(buf, &h, NULL), 0);
		assert_int_equal(h.key_len, klen);
		assert_int_equal(kg_pbkdf2__verify(&h, "pw", 2), 1);
	}
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 3, "a$b", "pw", 32, buf, sizeof(buf)), -1);
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 3, "s", "pw", 32, buf, 10), -1);
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 0, "s", "pw", 32, buf, sizeof(buf)), -1);
}

static void test_malformed(void **state)
{
	static const struct { const char *hash, *why; } bad[] = {
		{ "", "not 5 '$'-separated fields" },
		{ "PBKDF2$sha256$2000$salt", "not 5 '$'-separated fields" },
		{ "PBKDF2$sha256$2000$salt$AAAA$x", "more than 5 '$'-separated fields" },
		{ "pbkdf2$sha256$2000$salt$AAAA", "does not start with PBKDF2$" },
		{ "$6$abc$def$ghi", "does not start with PBKDF2$" },
		{ "PBKDF2$md5$2000$salt$AAAA", "unknown algorithm (sha256 or sha512)" },
		{ "PBKDF2$SHA256$2000$salt$AAAA", "unknown algorithm (sha256 or sha512)" },
		{ "PBKDF2$sha256$$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$0$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$-5$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$12x$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$010$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$10000001$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$99999999999$salt$AAAA", "bad iteration count" },
		{ "PBKDF2$sha256$2000$$AAAA", "empty or too long salt" },
		{ "PBKDF2$sha256$2000$salt$", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$AAA", "bad base64 key" },          /* not a multiple of 4 */
		{ "PBKDF2$sha256$2000$salt$AA*A", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$A===", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$AA=A", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$ AAAA", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$AAAA\n", "bad base64 key" },
		{ "PBKDF2$sha256$2000$salt$====", "bad base64 key" },
	};
	struct kg_pbkdf2 h;
	char big[600];
	const char *why;
	(void)state;

	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		why = NULL;
		assert_int_equal(kg_pbkdf2__parse(bad[i].hash, &h, &why), -1);
		assert_non_null(why);
		assert_string_equal(why, bad[i].why);
	}
	assert_int_equal(kg_pbkdf2__parse(NULL, &h, &why), -1);
	/* a key longer than KG_PBKDF2_MAX_KEY */
	memset(big, 0, sizeof(big));
	strcpy(big, "PBKDF2$sha256$2$s$");
	memset(big + 18, 'A', 176);   /* 176 base64 characters = 132 bytes > 128 */
	assert_int_equal(kg_pbkdf2__parse(big, &h, &why), -1);
	/* a salt longer than KG_PBKDF2_MAX_SALT */
	memset(big, 0, sizeof(big));
	strcpy(big, "PBKDF2$sha256$2$");
	memset(big + 16, 's', 256);
	strcat(big, "$AAAA");
	assert_int_equal(kg_pbkdf2__parse(big, &h, &why), -1);
	assert_string_equal(why, "empty or too long salt");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_against_openssl),
		cmocka_unit_test(test_near_misses_do_not_verify),
		cmocka_unit_test(test_sha512_and_key_lengths),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
