/* test_jscan.c -- the measurement payload's JSON reader (jscan.c): strict RFC 8259 where cJSON was
 * lenient, cJSON's limits where it has them, names compared as cJSON does, numbers as strtod. */
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "kitgate/jscan.h"

static const struct kg_jname fields[] = {KG_JNAME("id"), KG_JNAME("values")};

static void setup(struct kg_jscan *js, struct kg_jmember *m, size_t mcap)
{
	js->fields = fields;
	js->nfields = 2;
	js->list_field = m ? 1 : -1;
	js->members = m;
	js->members_cap = mcap;
}

/* Scan s (copied into a heap block of exactly its length: ASan sees any overread). The caller
 * calls kg_jscan__done. */
static enum kg_jscan_result scan_n(const char *s, size_t len, struct kg_jscan *js, struct kg_jmember *m, size_t mcap)
{
	char *copy = malloc(len ? len : 1);
	enum kg_jscan_result r;

	assert_non_null(copy);
	memcpy(copy, s, len);
	setup(js, m, mcap);
	r = kg_jscan__object(js, copy, len);
	free(copy);  /* the views are not read after this: only results and scratch-held names */
	return r;
}

static enum kg_jscan_result scan(const char *s)
{
	struct kg_jscan js;
	struct kg_jmember m[4];
	enum kg_jscan_result r = scan_n(s, strlen(s), &js, m, 4);

	kg_jscan__done(&js);
	return r;
}

struct jcase {
	const char *text;
	enum kg_jscan_result want;
	int cjson_accepts;  /* 1: cJSON 1.7 parses it to an object (a leniency jscan drops) */
};

static void test_results(void **state)
{
	(void)state;
	static const struct jcase cases[] = {
		{"{}", KG_JSCAN_OK, 1},
		{" \t\r\n{ \"a\" : [ 1 , { \"b\" : null } , true , false , \"x\" , -0.5e+3 ] } \n", KG_JSCAN_OK, 1},
		{"", KG_JSCAN_SYNTAX, 0},
		{"   ", KG_JSCAN_SYNTAX, 0},
		{"{", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":1,}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\" 1}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":[1,]}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":[1 2]}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":{\"b\":1,}}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":tru}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":nul}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":\"\\x\"}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":\"\\u12G4\"}", KG_JSCAN_SYNTAX, 1},     /* cJSON: a NUL (and the string ends) */
		{"{\"a\":\"\\uDC00\"}", KG_JSCAN_SYNTAX, 0},          /* lone low surrogate */
		{"{\"a\":\"\\uD800\"}", KG_JSCAN_SYNTAX, 0},          /* lone high surrogate */
		{"{\"a\":\"\\uD800\\u0041\"}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":\"\\uD83D\\uDE00\"}", KG_JSCAN_OK, 1},
		{"{\"a\":1}x", KG_JSCAN_TRAILING, 0},
		{"{}{}", KG_JSCAN_TRAILING, 0},
		{"[1]", KG_JSCAN_NOT_OBJECT, 0},
		{"\"x\"", KG_JSCAN_NOT_OBJECT, 0},
		{"-1.5e3", KG_JSCAN_NOT_OBJECT, 0},
		{"{\"a\":1,\"a\":2}", KG_JSCAN_DUPLICATE, 1},
		{"{\"id\":1,\"i\\u0064\":2}", KG_JSCAN_DUPLICATE, 1},
		{"{\"a\\u0000x\":1,\"a\\u0000y\":2}", KG_JSCAN_DUPLICATE, 1}, /* cJSON's names end at NUL */
		{"{\"a\\u0000x\":1,\"b\":2}", KG_JSCAN_NUL_ESCAPE, 1},
		{"{\"a\":{\"b\":1,\"b\":2}}", KG_JSCAN_OK, 1},        /* nested objects: not checked */
		{"{\"values\":{\"b\":1,\"b\":2}}", KG_JSCAN_DUPLICATE, 1},
		{"{\"a\":[\"\\u0000\"]}", KG_JSCAN_NUL_ESCAPE, 1},
		{"{\"a\":\"\\\\u0000\"}", KG_JSCAN_OK, 1},
		/* cJSON's leniencies, refused here (RFC 8259) */
		{"\xEF\xBB\xBF{}", KG_JSCAN_SYNTAX, 1},               /* byte order mark */
		{"{\"a\":\x0B" "1}", KG_JSCAN_SYNTAX, 1},             /* control character as whitespace */
		{"\x01{}", KG_JSCAN_SYNTAX, 1},
		{"{\"a\":\"x\ty\"}", KG_JSCAN_SYNTAX, 1},             /* raw control character in a string */
		{"{\"a\":01}", KG_JSCAN_SYNTAX, 1},                    /* leading zero */
		{"{\"a\":-01}", KG_JSCAN_SYNTAX, 1},
		{"{\"a\":1.}", KG_JSCAN_SYNTAX, 1},                    /* empty fraction */
		{"{\"a\":1.e5}", KG_JSCAN_SYNTAX, 1},
		{"{\"a\":-.5}", KG_JSCAN_SYNTAX, 1},                   /* no integer digits */
		{"{\"a\":+1}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":.5}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":1e}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":-}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":0x10}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":NaN}", KG_JSCAN_SYNTAX, 0},
		{"{\"a\":Infinity}", KG_JSCAN_SYNTAX, 0},
	};
	int failures = 0;

	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		const struct jcase *tc = &cases[i];
		enum kg_jscan_result r = scan(tc->text);
		cJSON *j = cJSON_ParseWithLengthOpts(tc->text, strlen(tc->text), NULL, 0);

		if(r != tc->want){
			print_error("case %zu '%s': result %d, want %d\n", i, tc->text, (int)r, (int)tc->want);
			failures++;
		}
		/* the table's claim about cJSON holds (so the leniencies listed are real ones) */
		if(tc->want != KG_JSCAN_TRAILING && tc->want != KG_JSCAN_NOT_OBJECT
				&& (j && cJSON_IsObject(j) ? 1 : 0) != tc->cjson_accepts){
			print_error("case %zu '%s': cJSON %s it\n", i, tc->text, j ? "accepts" : "refuses");
			failures++;
		}
		cJSON_Delete(j);
	}
	assert_int_equal(failures, 0);
}

/* Numbers of any length (cJSON's as packaged reads them all); a long one through strtod. */
static void test_long_number(void **state)
{
	(void)state;
	static char num[20000], doc[20100];
	static const int lens[] = {62, 63, 64, 65, 200, 19000};

	for(size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++){
		struct kg_jscan js;
		struct kg_jmember m[1];
		cJSON *j;
		size_t n;

		memset(num, '1', sizeof(num));
		memcpy(num, "2.", 2);
		num[lens[k]] = '\0';
		n = (size_t)snprintf(doc, sizeof(doc), "{\"id\":%s}", num);
		j = cJSON_ParseWithLengthOpts(doc, n, NULL, 0);
		assert_non_null(j);
		setup(&js, m, 1);
		assert_int_equal(kg_jscan__object(&js, doc, n), KG_JSCAN_OK);
		assert_int_equal(js.field[0].type, KG_J_NUMBER);
		assert_true(kg_jscan__number(&js.field[0].text) == cJSON_GetObjectItem(j, "id")->valuedouble);
		kg_jscan__done(&js);
		cJSON_Delete(j);
		assert_int_equal(scan(num), KG_JSCAN_NOT_OBJECT);
	}
}

/* Nesting: 1000 open containers are fine, 1001 are not (cJSON's limit). */
static void test_depth(void **state)
{
	(void)state;
	enum { N = 1001 };
	char *buf = malloc(2 * N + 16);
	size_t n;

	assert_non_null(buf);
	for(int depth = 999; depth <= 1001; depth++){
		/* {"a": + (depth - 1) arrays + 1 + closers + } */
		n = 0;
		n += (size_t)sprintf(buf + n, "{\"a\":");
		for(int i = 1; i < depth; i++) buf[n++] = '[';
		buf[n++] = '1';
		for(int i = 1; i < depth; i++) buf[n++] = ']';
		buf[n++] = '}';
		buf[n] = '\0';
		assert_int_equal(scan(buf), depth <= 1000 ? KG_JSCAN_OK : KG_JSCAN_SYNTAX);
		/* the same through an object inside the listed one */
		n = (size_t)sprintf(buf, "{\"values\":{\"a\":");
		for(int i = 2; i < depth; i++) buf[n++] = '[';
		buf[n++] = '1';
		for(int i = 2; i < depth; i++) buf[n++] = ']';
		buf[n++] = '}';
		buf[n++] = '}';
		buf[n] = '\0';
		assert_int_equal(scan(buf), depth <= 1000 ? KG_JSCAN_OK : KG_JSCAN_SYNTAX);
	}
	free(buf);
}

/* Captured fields and the listed object's members, names decoded. */
static void test_capture(void **state)
{
	(void)state;
	const char *t = "{\"x\":[{\"id\":5}],\"i\\u0064\":\"a\\\"b\\u00e9\\uD83D\\uDE00\",\"values\":{\"c\\n\":1.5,\"d\":true,\"e\":[],\"f\":2}}";
	struct kg_jscan js;
	struct kg_jmember m[3];
	char buf[32];
	size_t n;

	setup(&js, m, 3);
	assert_int_equal(kg_jscan__object(&js, t, strlen(t)), KG_JSCAN_OK); /* views into t */
	assert_int_equal(js.field[0].type, KG_J_STRING);
	assert_true(js.field[0].text.escaped);
	n = kg_jscan__string(&js.field[0].text, buf, sizeof(buf));
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "a\"b\xC3\xA9\xF0\x9F\x98\x80", 9);
	assert_int_equal(kg_jscan__string(&js.field[0].text, buf, 2), 9); /* the length, not what fits */
	assert_int_equal(js.field[1].type, KG_J_OBJECT);
	assert_int_equal(js.nmembers, 4);
	assert_int_equal(m[0].name.len, 2);
	assert_memory_equal(m[0].name.p, "c\n", 2);
	assert_int_equal(m[0].val.type, KG_J_NUMBER);
	assert_true(kg_jscan__number(&m[0].val.text) == 1.5);
	assert_int_equal(m[1].val.type, KG_J_TRUE);
	assert_int_equal(m[2].val.type, KG_J_ARRAY);

	/* absent fields, and "values" that is not an object: not listed */
	t = "{\"values\":[1,2]}";
	kg_jscan__done(&js);
	assert_int_equal(scan_n(t, strlen(t), &js, m, 3), KG_JSCAN_OK);
	kg_jscan__done(&js);
	assert_int_equal(js.field[0].type, KG_J_NONE);
	assert_int_equal(js.field[1].type, KG_J_ARRAY);
	assert_int_equal(js.nmembers, 0);
}

/* Many names: sorted, not compared pairwise; a duplicate among them is found, escaped or not. */
static void test_many_names(void **state)
{
	(void)state;
	enum { N = 3000 };
	char *buf = malloc(N * 24 + 64);
	struct kg_jscan js;
	size_t n;

	assert_non_null(buf);
	for(int variant = 0; variant < 3; variant++){
		n = (size_t)sprintf(buf, "{");
		for(int i = 0; i < N; i++){
			int k = variant && i == N - 1 ? 17 : i;
			if(variant == 2 && i == N - 1) n += (size_t)sprintf(buf + n, "\"\\u006b%d\":1,", k);
			else n += (size_t)sprintf(buf + n, "\"k%d\":1,", k);
		}
		buf[n - 1] = '}';
		assert_int_equal(scan_n(buf, n, &js, NULL, 0), variant ? KG_JSCAN_DUPLICATE : KG_JSCAN_OK);
		kg_jscan__done(&js);
	}
	free(buf);
}

/* Numbers: the fast path and strtod agree on every token (both are correctly rounded). */
static void test_numbers(void **state)
{
	(void)state;
	static const char *const toks[] = {
		"0", "-0", "-0.0", "0e5", "-0e-5", "1", "21.5", "-3", "1700000000000", "1.7e12", "2147483647",
		"9007199254740992", "9007199254740993", "9007199254740995", "18446744073709551615",
		"123456789012345678901234567890", "0.1", "0.3", "1e22", "1e23", "1e-22", "1e-23",
		"5e-324", "2.4703282292062327e-324", "1.7976931348623157e308", "1.7976931348623159e308",
		"1e999", "-1e999", "1e-999", "4.9406564584124654e-324", "0.000000000000000000000000001",
		"3.14159265358979323846", "1E+2", "1e-0", "100000000000000000000000",
		"0.00000000000000000000000000000000000000000000000000000000001",
	};
	for(size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++){
		struct kg_jstr s = {toks[i], (uint32_t)strlen(toks[i]), 0};
		double want = strtod(toks[i], NULL), got = kg_jscan__number(&s);
		if(memcmp(&want, &got, sizeof(got))){
			print_error("number %s: %.17g, strtod %.17g\n", toks[i], got, want);
			fail();
		}
	}
	/* random ones of up to 19 digits with exponents around the fast path's edge */
	uint64_t seed = 42;
	for(int i = 0; i < 200000; i++){
		char t[64];
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int digits = 1 + (int)(seed >> 60) % 19;
		uint64_t m = seed >> 8;
		int e = (int)((seed >> 3) % 61) - 30;
		snprintf(t, sizeof(t), "%s%.*llu%se%d", (seed & 1) ? "-" : "", digits,
				(unsigned long long)(m % 10000000000000000000ull), (seed & 2) ? ".5" : "", e);
		/* %.*llu pads; the token must be a valid JSON number: no leading zeros */
		char *p = t + (t[0] == '-');
		while(p[0] == '0' && p[1] >= '0' && p[1] <= '9') memmove(p, p + 1, strlen(p));
		struct kg_jstr s = {t, (uint32_t)strlen(t), 0};
		double want = strtod(t, NULL), got = kg_jscan__number(&s);
		if(memcmp(&want, &got, sizeof(got))){
			print_error("number %s: %.17g, strtod %.17g\n", t, got, want);
			fail();
		}
	}
}

/* The strtod fallback reads JSON's '.' whatever the thread's LC_NUMERIC (with a locale whose
 * decimal point is ',' or several bytes, a plain strtod would cut the number short), keeps errno,
 * and a token cut after its exponent letter or sign reads only its own bytes (ASan checks that:
 * the tokens are exactly-sized heap copies). */
static void test_numbers_locale_and_bounds(void **state)
{
	static const struct { const char *tok; double want; } slow[] = {
		{"21.50000000000000000001", 21.5}, {"1.5e300", 1.5e300}, {"0.1e-30", 0.1e-30},
		{"-2.5e-100", -2.5e-100}, {"1700000.00000000000000001e6", 1700000e6},
	};
	static const char *const cut[] = {"1e", "1e+", "-2E-", "7.5e"};
	locale_t other = newlocale(LC_NUMERIC_MASK, "ps_AF.UTF-8", (locale_t)0); /* decimal point U+066B: two bytes */
	locale_t prev = (locale_t)0;

	(void)state;
	if(!other) other = newlocale(LC_NUMERIC_MASK, "de_DE.UTF-8", (locale_t)0);
	if(other) prev = uselocale(other); /* else only the C locale is installed: still runs the rest */
	for(size_t i = 0; i < sizeof(slow) / sizeof(slow[0]); i++){
		char *copy = malloc(strlen(slow[i].tok));
		struct kg_jstr s = {copy, (uint32_t)strlen(slow[i].tok), 0};
		double got;

		assert_non_null(copy);
		memcpy(copy, slow[i].tok, s.len); /* not NUL-terminated */
		errno = 1234;
		got = kg_jscan__number(&s);
		assert_int_equal(errno, 1234);
		if(got != slow[i].want){
			print_error("number %s: %.17g, want %.17g (locale %s)\n", slow[i].tok, got, slow[i].want,
					other ? "non-C" : "C");
			fail();
		}
		free(copy);
	}
	for(size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++){
		char *copy = malloc(strlen(cut[i]));
		struct kg_jstr s = {copy, (uint32_t)strlen(cut[i]), 0};

		assert_non_null(copy);
		memcpy(copy, cut[i], s.len);
		(void)kg_jscan__number(&s); /* any value; no read past s.len */
		free(copy);
	}
	if(other){
		uselocale(prev);
		freelocale(other);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_long_number),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_capture),
		cmocka_unit_test(test_many_names),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_numbers_locale_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
