/* test_brokerinfo.c -- plugin/brokerinfo.c: the broker version found in an executable image (the
 * one distinct "2.x.y" string; none, two different ones, look-alikes and a string cut by the end of
 * the image give "unknown"), and detection in a process that is not a broker. Optionally (env
 * KG_TEST_BROKER_BINARIES="path=version ...") real broker binaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/brokerinfo.h"

static int scan(const char *img, size_t len, char *out, size_t outsz)
{
	return kg_brokerinfo__scan_version((const unsigned char *)img, len, out, outsz);
}

static void test_one_version(void **state)
{
	static const char img[] = "\x7f" "ELF\0\0junk\0mosquitto version %s\0" "2.0.11\0" "1.2\0tail";
	static const char img21[] = "2.1.2\0" "2.1.2\0" "mosquitto version %s starting\0";
	char out[16];

	(void)state;
	assert_int_equal(scan(img, sizeof(img) - 1, out, sizeof(out)), 0);
	assert_string_equal(out, "2.0.11");
	/* the same string twice is one version; at the very start of the image too */
	assert_int_equal(scan(img21, sizeof(img21) - 1, out, sizeof(out)), 0);
	assert_string_equal(out, "2.1.2");
}

static void test_unknown(void **state)
{
	static const char two[] = "x\0" "2.0.11\0" "2.1.2\0";
	static const char looks[] = "v2.0.11\0" "2.0.11a\0" "2.0\0" "3.0.1\0" "2.0.1234\0" "2..1\0" "2.0.\0";
	static const char cut[] = "abc\0" "2.0.11"; /* no NUL after it: not a whole string */
	char out[16];

	(void)state;
	assert_int_equal(scan(two, sizeof(two) - 1, out, sizeof(out)), -1);
	assert_string_equal(out, "unknown");
	assert_int_equal(scan(looks, sizeof(looks) - 1, out, sizeof(out)), -1);
	assert_string_equal(out, "unknown");
	assert_int_equal(scan(cut, sizeof(cut) - 1, out, sizeof(out)), -1);
	assert_int_equal(scan("", 0, out, sizeof(out)), -1);
	/* too small an output buffer: no truncated version */
	assert_int_equal(scan("2.0.11\0", 7, out, 6), -1);
	assert_string_equal(out, "unkno");
}

/* This test program is no broker: no 2.1 functions, and its image names two versions (the test
 * data above), so none. */
static void test_detect_here(void **state)
{
	struct kg_brokerinfo bi;

	(void)state;
	kg_brokerinfo__detect(&bi);
	assert_false(bi.api21);
	assert_false(bi.delayed_auth);
	assert_null(bi.complete_basic_auth); /* the one lookup of the function auth.c calls */
	assert_string_equal(bi.version, "unknown");
}

/* KG_TEST_BROKER_BINARIES="/usr/sbin/mosquitto=2.0.11 /x/sbin/mosquitto=2.1.2": each image names
 * its version (ctest sets it from ci/brokers when the cache exists). */
static void test_real_binaries(void **state)
{
	const char *env = getenv("KG_TEST_BROKER_BINARIES");
	char *list, *tok, *save = NULL;

	(void)state;
	if(!env || !*env) skip();
	list = strdup(env);
	assert_non_null(list);
	for(tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save)){
		char *eq = strrchr(tok, '='), out[16];
		FILE *f;
		unsigned char *buf;
		long n;

		assert_non_null(eq);
		*eq = '\0';
		f = fopen(tok, "rb");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc((size_t)n);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		assert_int_equal(kg_brokerinfo__scan_version(buf, (size_t)n, out, sizeof(out)), 0);
		assert_string_equal(out, eq + 1);
		free(buf);
	}
	free(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_version),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_detect_here),
		cmocka_unit_test(test_real_binaries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
