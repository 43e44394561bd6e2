/* test_json.c -- unit tests for plugin/util/json.c's string escaper, kg_json__escape (the record JSON
 * itself is covered by test_record.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "kitgate/json.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Every special byte has its one escape; NUL inside len is escaped, not a terminator. */
static void test_escape_table(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{"", 0, ""},
		{"plain", 5, "plain"},
		{"\"", 1, "\\\""},
		{"\\", 1, "\\\\"},
		{"\b\f\n\r\t", 5, "\\b\\f\\n\\r\\t"},
		{"\x01\x1f", 2, "\\u0001\\u001f"},
		{"a\0b", 3, "a\\u0000b"},
		{"\x7f\xC3\xA9/", 4, "\x7f\xC3\xA9/"},   /* DEL, UTF-8 and '/' as is */
	};
	char out[64];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		size_t n = kg_json__escape(out, sizeof(out), cases[i].in, cases[i].len);

		if(n != strlen(cases[i].want) || memcmp(out, cases[i].want, n)){
			fail_msg("case %d: got %.*s", i, (int)n, out);
		}
		assert_true(n <= 6 * cases[i].len);
	}
}

/* With a short buffer the prefix written equals the full text's prefix, nothing is written past
 * cap, and the full length is returned; NULL/0 only measures. */
static void test_escape_truncation(void **state)
{
	const char *s = "k\"e\\y\n\x01z";
	char full[64], buf[64];
	size_t n, cap;

	(void)state;
	n = kg_json__escape(full, sizeof(full), s, strlen(s));
	assert_int_equal(kg_json__escape(NULL, 0, s, strlen(s)), n);
	for(cap = 0; cap <= n; cap++){
		memset(buf, 'Z', sizeof(buf));
		assert_int_equal(kg_json__escape(buf, cap, s, strlen(s)), n);
		assert_memory_equal(buf, full, cap);
		assert_int_equal(buf[cap], 'Z');
	}
}

/* Every byte 0x01..0x7f, quoted, parses back (cJSON) to itself. */
static void test_escape_roundtrip(void **state)
{
	char in[128], out[128 * 6 + 3];
	size_t n;
	cJSON *j;

	(void)state;
	for(int c = 1; c < 128; c++) in[c - 1] = (char)c;
	in[127] = '\0';
	out[0] = '"';
	n = kg_json__escape(out + 1, sizeof(out) - 3, in, 127);
	assert_true(n <= sizeof(out) - 3);
	out[n + 1] = '"';
	out[n + 2] = '\0';
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_true(cJSON_IsString(j));
	assert_string_equal(j->valuestring, in);
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_table),
		cmocka_unit_test(test_escape_truncation),
		cmocka_unit_test(test_escape_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
