/* test_base64.c -- unit tests for plugin/util/base64.c, with the inputs of both its uses: HTTP
 * Basic credentials (padding optional, plugin/live/http.c) and the padded salts, hashes and keys
 * of mosquitto password files and PBKDF2 hashes (plugin/auth/pwfile.c, plugin/auth/pbkdf2.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/base64.h"

static long dec(const char *in, unsigned char *out, size_t cap, enum kg_base64_padding pad)
{
	return kg_base64__decode(in, strlen(in), out, cap, pad);
}

/* RFC 4648 section 10's vectors, padded and (for Basic) without padding. */
static void test_rfc4648(void **state)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	unsigned char out[16];
	char nopad[16];
	size_t i;

	(void)state;
	for(i = 0; i < 7; i++){
		size_t n = strlen(plain[i]);

		assert_int_equal(dec(b64[i], out, sizeof(out), KG_BASE64_PAD_OPTIONAL), (long)n);
		assert_memory_equal(out, plain[i], n);
		if(i) {
			assert_int_equal(dec(b64[i], out, sizeof(out), KG_BASE64_PADDED), (long)n);
			assert_memory_equal(out, plain[i], n);
		}
		snprintf(nopad, sizeof(nopad), "%.*s", (int)strcspn(b64[i], "="), b64[i]);
		assert_int_equal(dec(nopad, out, sizeof(out), KG_BASE64_PAD_OPTIONAL), (long)n);
		assert_memory_equal(out, plain[i], n);
		/* padding required: without it only the multiples of 3 bytes still decode */
		if(i && strlen(nopad) % 4) assert_int_equal(dec(nopad, out, sizeof(out), KG_BASE64_PADDED), -1);
	}
}

/* HTTP Basic: "server:pw" as curl sends it, a NUL inside (checked by the caller), junk. */
static void test_basic_credentials(void **state)
{
	unsigned char out[64];

	(void)state;
	assert_int_equal(dec("c2VydmVyOnB3", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), 9);
	assert_memory_equal(out, "server:pw", 9);
	assert_int_equal(dec("c2VydmVyOnB3AGp1bms=", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), 14); /* "server:pw\0junk" */
	assert_memory_equal(out, "server:pw\0junk", 14);
	assert_int_equal(dec("c2VydmVyOnB3AGp1bms===", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), 14); /* extra '=' */
	assert_int_equal(dec("c2Vy dmVy", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), -1);   /* a space */
	assert_int_equal(dec("c2Vy=dmVy", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), -1);   /* '=' inside */
	assert_int_equal(dec("c2VydmVy-_", out, sizeof(out), KG_BASE64_PAD_OPTIONAL), -1);  /* base64url */
	assert_int_equal(dec("c2VydmVyOnB3", out, 8, KG_BASE64_PAD_OPTIONAL), -1);         /* does not fit */
	assert_int_equal(dec("c2VydmVyOnB3", out, 9, KG_BASE64_PAD_OPTIONAL), 9);          /* fits exactly */
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(kg_base64__decode("Zm9vXXXX", 4, out, sizeof(out), KG_BASE64_PAD_OPTIONAL), 3);
}

/* mosquitto_passwd's $7$ salt (12 bytes) and hash (64 bytes), a PBKDF2 key as Go writes it. */
static void test_password_hashes(void **state)
{
	/* shaped as mosquitto_passwd writes a $7$ entry: a 12-byte salt, a 64-byte hash */
	static const char salt[] = "Sd1dZsqWWQ8VY7d0";
	static const char hash[] =
		"6+HjuE1W1IZj3ONlkfcJZHHv3zGlWaS5m2FNHv+q9v0sHwmW1pMpqgiGZmpmEyo66HQ6EjYCGlTfbVY9/A8pdA==";
	unsigned char out[128];

	(void)state;
	assert_int_equal(dec(salt, out, sizeof(out), KG_BASE64_PADDED), 12);
	assert_int_equal(dec(hash, out, sizeof(out), KG_BASE64_PADDED), 64);
	assert_int_equal(dec(hash, out, 63, KG_BASE64_PADDED), -1);             /* the key buffer is too small */
	assert_int_equal(dec("", out, sizeof(out), KG_BASE64_PADDED), -1);      /* empty */
	assert_int_equal(dec("Zm9vYg", out, sizeof(out), KG_BASE64_PADDED), -1); /* padding missing */
	assert_int_equal(dec("Zm9=====", out, sizeof(out), KG_BASE64_PADDED), -1); /* too much padding */
	assert_int_equal(dec("Zg=vYmFy", out, sizeof(out), KG_BASE64_PADDED), -1); /* '=' inside */
	assert_int_equal(dec("Zm9v\nYmFy", out, sizeof(out), KG_BASE64_PADDED), -1); /* a line break */
	assert_int_equal(dec("Zm9v!mFy", out, sizeof(out), KG_BASE64_PADDED), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648),
		cmocka_unit_test(test_basic_credentials),
		cmocka_unit_test(test_password_hashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
