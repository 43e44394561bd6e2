/* test_record.c -- kg_record encode/decode, canonical JSON, UUID, time and number formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "kitgate/record.h"
#include "kitgate/utf8.h"
#include "kitgate/numfmt.h"
#include "kitgate/timefmt.h"
#include "kitgate/uuid.h"
#include "kitgate/json.h"
#include "kitgate/validate.h"

static const uint8_t ID1[16] = {0x9b, 0x2f, 0x3c, 0x1e, 0x0a, 0x4b, 0x4c, 0x5d,
	0x8e, 0x6f, 0x7a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f};
#define ID1_TEXT "9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f"

static void make_raw(struct kg_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = KG_KIND_RAW;
	memcpy(r->id, ID1, 16);
	strcpy(r->serial, "k-abcd-efgh-jkmn");
	r->peripheral = 7;
	r->quantity_type = 1;
	r->datetime_ms = 1700000000000LL;
	r->value = 21.5;
}

static void make_agg(struct kg_record *r)
{
	static const char *const names[] = {"count", "average", "minimum", "maximum"};
	static const double vals[] = {30, 21.5, 20.0, 23.0};

	memset(r, 0, sizeof(*r));
	r->kind = KG_KIND_AGGREGATE;
	memcpy(r->id, ID1, 16);
	strcpy(r->serial, "k-abcd-efgh-jkmn");
	r->peripheral = 7;
	r->quantity_type = 1;
	r->start_ms = 1700000000000LL;
	r->end_ms = 1700001800000LL;
	r->nvalues = 4;
	for(int i = 0; i < 4; i++){
		strcpy(r->values[i].name, names[i]);
		r->values[i].value = vals[i];
	}
}

/* The largest RAW/AGGREGATE record: 64-byte serial, 16 names of 50 four-byte characters. */
static void make_agg_max(struct kg_record *r)
{
	make_agg(r);
	memset(r->serial, 's', KG_SERIAL_MAX);
	r->serial[KG_SERIAL_MAX] = '\0';
	r->peripheral = INT32_MAX;
	r->quantity_type = INT32_MIN;
	r->start_ms = 0;
	r->end_ms = INT64_MAX;
	r->nvalues = KG_AGG_MAX;
	for(int i = 0; i < KG_AGG_MAX; i++){
		char *p = r->values[i].name;
		for(int c = 0; c < KG_AGG_NAME_MAX; c++){
			memcpy(p, "\xF0\x9F\x98\x80", 4);
			p += 4;
		}
		*p = '\0';
		r->values[i].value = -1.0 / (i + 3);
	}
}

static const uint8_t BRIDGE_PAYLOAD[] = {'{', 0, 1, 0xFF, '}'};

static void make_bridge(struct kg_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = KG_KIND_BRIDGE;
	r->topic = "factory/line1/temp";
	r->topic_len = (uint16_t)strlen(r->topic);
	r->payload = BRIDGE_PAYLOAD;
	r->payload_len = sizeof(BRIDGE_PAYLOAD);
}

static void assert_same(const struct kg_record *a, const struct kg_record *b)
{
	assert_int_equal(a->kind, b->kind);
	if(a->kind == KG_KIND_BRIDGE){
		assert_int_equal(a->topic_len, b->topic_len);
		assert_memory_equal(a->topic, b->topic, a->topic_len);
		assert_int_equal(a->payload_len, b->payload_len);
		if(a->payload_len) assert_memory_equal(a->payload, b->payload, a->payload_len);
		return;
	}
	assert_memory_equal(a->id, b->id, 16);
	assert_string_equal(a->serial, b->serial);
	assert_int_equal(a->peripheral, b->peripheral);
	assert_int_equal(a->quantity_type, b->quantity_type);
	if(a->kind == KG_KIND_RAW){
		assert_int_equal(a->datetime_ms, b->datetime_ms);
		assert_memory_equal(&a->value, &b->value, sizeof(double));
		return;
	}
	assert_int_equal(a->start_ms, b->start_ms);
	assert_int_equal(a->end_ms, b->end_ms);
	assert_int_equal(a->nvalues, b->nvalues);
	for(int i = 0; i < a->nvalues; i++){
		assert_string_equal(a->values[i].name, b->values[i].name);
		assert_memory_equal(&a->values[i].value, &b->values[i].value, sizeof(double));
	}
}

typedef void (*maker_fn)(struct kg_record *);
static const maker_fn makers[] = {make_raw, make_agg, make_agg_max, make_bridge};

/* Round trip; every proper prefix and every one-byte extension is rejected. */
/* kg_record__reset clears what not every kind writes and keeps the rest. */
static void test_reset(void **state)
{
	(void)state;
	struct kg_record rec;

	memset(&rec, 0xAA, sizeof(rec));
	kg_record__reset(&rec, KG_KIND_AGGREGATE);
	assert_int_equal(rec.kind, KG_KIND_AGGREGATE);
	assert_int_equal(rec.datetime_ms, 0);
	assert_true(rec.value == 0);
	assert_int_equal(rec.start_ms, 0);
	assert_int_equal(rec.end_ms, 0);
	assert_int_equal(rec.nvalues, 0);
	assert_null(rec.topic);
	assert_int_equal(rec.topic_len, 0);
	assert_null(rec.payload);
	assert_int_equal(rec.payload_len, 0);
	assert_int_equal(rec.id[0], 0xAA);          /* written by every decoder: untouched */
	assert_int_equal((uint8_t)rec.values[0].name[0], 0xAA);
}

static void test_roundtrip_and_truncation(void **state)
{
	(void)state;
	for(size_t m = 0; m < sizeof(makers) / sizeof(makers[0]); m++){
		struct kg_record in, out;
		uint8_t *buf;
		size_t n;

		makers[m](&in);
		n = kg_record__encode(&in, NULL, 0);
		assert_true(n > 0);
		if(in.kind != KG_KIND_BRIDGE) assert_true(n <= KG_RECORD_MAX_FIXED);
		buf = malloc(n + 1);
		assert_non_null(buf);
		assert_int_equal(kg_record__encode(&in, buf, n), n);
		assert_int_equal(buf[0], in.kind);
		assert_int_equal(kg_record__decode(buf, n, &out), 0);
		assert_same(&in, &out);
		if(in.kind == KG_KIND_BRIDGE){
			assert_true((const uint8_t *)out.topic > buf && (const uint8_t *)out.topic < buf + n);
		}
		for(size_t len = 0; len < n; len++){
			/* a heap block of exactly len bytes so ASan sees any over-read */
			uint8_t *cut = malloc(len ? len : 1);
			assert_non_null(cut);
			memcpy(cut, buf, len);
			if(kg_record__decode(len ? cut : NULL, len, &out) != -1){
				print_error("maker %zu: prefix of %zu/%zu bytes decoded\n", m, len, n);
				fail();
			}
			free(cut);
		}
		buf[n] = 0;
		assert_int_equal(kg_record__decode(buf, n + 1, &out), -1);
		free(buf);
	}
}

static void test_layout(void **state)
{
	(void)state;
	struct kg_record r;
	uint8_t buf[KG_RECORD_MAX_FIXED];
	size_t n;
	static const uint8_t want_tail[] = {
		7, 0, 0, 0, 1, 0, 0, 0,                          /* peripheral, quantity type */
		0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0x00, 0x00,  /* 1700000000000 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x35, 0x40,  /* 21.5 */
	};

	make_raw(&r);
	n = kg_record__encode(&r, buf, sizeof(buf));
	assert_int_equal(n, 1 + 16 + 1 + 16 + sizeof(want_tail));
	assert_int_equal(buf[0], KG_KIND_RAW);
	assert_memory_equal(buf + 1, ID1, 16);
	assert_int_equal(buf[17], 16);
	assert_memory_equal(buf + 18, "k-abcd-efgh-jkmn", 16);
	assert_memory_equal(buf + 34, want_tail, sizeof(want_tail));

	make_bridge(&r);
	n = kg_record__encode(&r, buf, sizeof(buf));
	assert_int_equal(n, 1 + 2 + 18 + 4 + 5);
	assert_int_equal(buf[1], 18);
	assert_int_equal(buf[2], 0);
	assert_memory_equal(buf + 3, "factory/line1/temp", 18);
	assert_int_equal(buf[21], 5);
	assert_int_equal(buf[22] | buf[23] | buf[24], 0);
	assert_memory_equal(buf + 25, BRIDGE_PAYLOAD, 5);

	make_agg_max(&r);
	n = kg_record__encode(&r, buf, sizeof(buf));
	assert_int_equal(n, 1 + 16 + 1 + 64 + 4 + 4 + 8 + 8 + 1 + 16 * (1 + 200 + 8));
}

/* A too-small cap returns the needed size and writes nothing past cap. */
static void test_encode_small_cap(void **state)
{
	(void)state;
	for(size_t m = 0; m < sizeof(makers) / sizeof(makers[0]); m++){
		struct kg_record in;
		uint8_t buf[KG_RECORD_MAX_FIXED + 16];
		size_t need;

		makers[m](&in);
		need = kg_record__encode(&in, NULL, 0);
		for(size_t cap = 0; cap < need; cap += (need / 13) + 1){
			memset(buf, 0xA5, sizeof(buf));
			assert_int_equal(kg_record__encode(&in, buf, cap), need);
			for(size_t i = cap; i < need + 16 && i < sizeof(buf); i++){
				assert_int_equal(buf[i], 0xA5);
			}
		}
	}
}

static void test_encode_invalid(void **state)
{
	(void)state;
	struct kg_record r;
	uint8_t buf[KG_RECORD_MAX_FIXED];

	make_raw(&r);
	r.kind = 0;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	r.kind = 4;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	make_raw(&r);
	memset(r.serial, 'x', sizeof(r.serial)); /* unterminated */
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	make_agg(&r);
	r.nvalues = 0;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	r.nvalues = KG_AGG_MAX + 1;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	make_agg(&r);
	r.values[2].name[0] = '\0';
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	make_bridge(&r);
	r.topic_len = 0;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	make_bridge(&r);
	r.payload = NULL;
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 0);
	r.payload_len = 0; /* empty bridge payload is fine */
	assert_int_equal(kg_record__encode(&r, buf, sizeof(buf)), 1 + 2 + 18 + 4);
}

/* Corruptions of valid encodings, each at a known offset. */
struct corrupt {
	const char *name;
	maker_fn make;
	size_t off;
	uint8_t byte;
};

static void test_decode_rejects(void **state)
{
	(void)state;
	/* raw: kind@0 id@1 slen@17 serial@18..33 peripheral@34 qt@38 dt@42 value@50 */
	/* agg (4 values): n@58, name_len@59, "count"@60, f64@65 */
	static const struct corrupt cs[] = {
		{"kind 0", make_raw, 0, 0},
		{"kind 4", make_raw, 0, 4},
		{"kind 255", make_agg, 0, 255},
		{"serial_len 65", make_raw, 17, 65},
		{"serial_len 255", make_raw, 17, 255},
		{"serial_len too short", make_raw, 17, 15},
		{"nul in serial", make_raw, 20, 0},
		{"bad utf8 in serial", make_raw, 20, 0xC0},
		{"value NaN", make_raw, 57, 0x7F},          /* 0x7F80..0x4035 hi bytes -> exp all ones */
		{"n 0", make_agg, 58, 0},
		{"n 17", make_agg, 58, 17},
		{"n 255", make_agg, 58, 255},
		{"n 3 (trailing)", make_agg, 58, 3},
		{"name_len 0", make_agg, 59, 0},
		{"name_len 201", make_agg, 59, 201},
		{"nul in name", make_agg, 61, 0},
		{"bad utf8 in name", make_agg, 61, 0xFF},
		{"bridge topic_len 0", make_bridge, 1, 0},
		{"bridge topic_len big", make_bridge, 2, 1},
		{"bridge payload_len big", make_bridge, 21, 6},
		{"bridge payload_len huge", make_bridge, 24, 0x80},
	};
	for(size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++){
		struct kg_record in, out;
		uint8_t buf[KG_RECORD_MAX_FIXED];
		size_t n;

		cs[i].make(&in);
		n = kg_record__encode(&in, buf, sizeof(buf));
		assert_int_equal(kg_record__decode(buf, n, &out), 0);
		assert_true(cs[i].off < n);
		buf[cs[i].off] = cs[i].byte;
		if(cs[i].make == make_raw && cs[i].off == 57) buf[56] = 0xF8; /* exponent bits all ones */
		if(kg_record__decode(buf, n, &out) != -1){
			print_error("corruption '%s' decoded\n", cs[i].name);
			fail();
		}
	}

	/* a 51-character name (valid UTF-8, 51 bytes) is over the character limit */
	{
		struct kg_record in, out;
		uint8_t buf[KG_RECORD_MAX_FIXED];
		size_t n;
		make_agg(&in);
		memset(in.values[0].name, 'n', 51);
		in.values[0].name[51] = '\0';
		n = kg_record__encode(&in, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(kg_record__decode(buf, n, &out), -1);
		in.values[0].name[50] = '\0';
		n = kg_record__encode(&in, buf, sizeof(buf));
		assert_int_equal(kg_record__decode(buf, n, &out), 0);
	}
	assert_int_equal(kg_record__decode(NULL, 0, &(struct kg_record){0}), -1);
}

static void test_json_raw(void **state)
{
	(void)state;
	struct kg_record r;
	char buf[1024];
	size_t n;
	const char *want = "{\"id\":\"" ID1_TEXT "\",\"kitSerial\":\"k-abcd-efgh-jkmn\",\"datetime\":1700000000000,"
		"\"peripheral\":7,\"quantityType\":1,\"value\":21.5}";

	make_raw(&r);
	n = kg_json__record(&r, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	r.value = 0.1;
	r.datetime_ms = 0;
	r.peripheral = INT32_MAX;
	kg_json__record(&r, buf, sizeof(buf));
	assert_string_equal(buf, "{\"id\":\"" ID1_TEXT "\",\"kitSerial\":\"k-abcd-efgh-jkmn\",\"datetime\":0,"
		"\"peripheral\":2147483647,\"quantityType\":1,\"value\":0.1}");
}

static void test_json_agg(void **state)
{
	(void)state;
	struct kg_record r;
	char buf[8192];
	size_t n;
	const char *want = "{\"id\":\"" ID1_TEXT "\",\"kitSerial\":\"k-abcd-efgh-jkmn\","
		"\"datetimeStart\":1700000000000,\"datetimeEnd\":1700001800000,\"peripheral\":7,\"quantityType\":1,"
		"\"values\":{\"count\":30,\"average\":21.5,\"minimum\":20,\"maximum\":23}}";
	cJSON *j;

	make_agg(&r);
	n = kg_json__record(&r, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));

	/* the largest aggregate re-parses with every value intact, in order */
	make_agg_max(&r);
	r.quantity_type = 5;
	n = kg_json__record(&r, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	j = cJSON_ParseWithLength(buf, n);
	assert_non_null(j);
	{
		const cJSON *vals = cJSON_GetObjectItemCaseSensitive(j, "values");
		const cJSON *it;
		int i = 0;
		assert_int_equal(cJSON_GetArraySize(vals), KG_AGG_MAX);
		cJSON_ArrayForEach(it, vals){
			assert_string_equal(it->string, r.values[i].name);
			assert_true(it->valuedouble == r.values[i].value);
			i++;
		}
		assert_true(cJSON_GetObjectItemCaseSensitive(j, "datetimeEnd")->valuedouble == (double)INT64_MAX);
	}
	cJSON_Delete(j);
}

/* Strings with quotes, backslashes and control characters survive a cJSON round trip. */
static void test_json_escaping(void **state)
{
	(void)state;
	struct kg_record r;
	char buf[2048];
	cJSON *j;
	const char *serial = "a\"b\\c\n\t\x01\x1f\x7f\xC3\xA9/";

	make_agg(&r);
	strcpy(r.serial, serial);
	strcpy(r.values[1].name, "\b\f\r\"\\");
	kg_json__record(&r, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"kitSerial\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\xC3\xA9/\""));
	assert_non_null(strstr(buf, "\"\\b\\f\\r\\\"\\\\\":21.5"));
	for(const char *p = buf; *p; p++) assert_true((unsigned char)*p >= 0x20);
	j = cJSON_Parse(buf);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "kitSerial")->valuestring, serial);
	assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "values"), "\b\f\r\"\\"));
	cJSON_Delete(j);
}

static void test_json_small_cap(void **state)
{
	(void)state;
	struct kg_record r;
	char full[512], buf[512];
	size_t n;

	make_raw(&r);
	n = kg_json__record(&r, full, sizeof(full));
	assert_int_equal(kg_json__record(&r, NULL, 0), n);
	for(size_t cap = 1; cap <= n + 1; cap++){
		memset(buf, 'Z', sizeof(buf));
		assert_int_equal(kg_json__record(&r, buf, cap), n);
		assert_int_equal(buf[cap - 1], '\0');
		assert_memory_equal(buf, full, cap - 1);
		assert_int_equal(buf[cap], 'Z');
	}
	/* bridge records have no JSON of their own */
	make_bridge(&r);
	buf[0] = 'x';
	assert_int_equal(kg_json__record(&r, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], '\0');
}

/* Validation output -> encode -> decode -> JSON equals the canonical form. */
static void test_validate_to_json(void **state)
{
	(void)state;
	const char *p = "{\"value\":-0.5,\"quantityType\":2,\"peripheral\":11,\"datetime\":1700000000123,"
		"\"kitSerial\":\"\",\"id\":\"9B2F3C1E-0A4B-4C5D-8E6F-7A8B9C0D1E2F\",\"extra\":1}";
	struct kg_limits lim = {16384, 86400000};
	struct kg_record rec, back;
	uint8_t enc[KG_RECORD_MAX_FIXED];
	char json[512];
	size_t n;

	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, "k-test-0001", 11, p, strlen(p), 1700000000000LL,
			&lim, &rec, NULL), KG_OK);
	n = kg_record__encode(&rec, enc, sizeof(enc));
	assert_int_equal(kg_record__decode(enc, n, &back), 0);
	kg_json__record(&back, json, sizeof(json));
	assert_string_equal(json, "{\"id\":\"" ID1_TEXT "\",\"kitSerial\":\"k-test-0001\",\"datetime\":1700000000123,"
		"\"peripheral\":11,\"quantityType\":2,\"value\":-0.5}");
}

static void test_uuid(void **state)
{
	(void)state;
	char text[37];
	uint8_t id[16], all[16];
	static const char *const bad[] = {
		"", "9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2", "9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f0",
		"9b2f3c1e0a4b-4c5d-8e6f-7a8b9c0d1e2f0", "9b2f3c1e-0a4b-4c5d-8e6f_7a8b9c0d1e2f",
		"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2g", " 9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2", "+b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f",
		"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2\xC3", "9b2f3c1e-0a4b-4c5d-8e6f-7a8b-c0d1e2f",
	};

	kg_uuid__format(ID1, text);
	assert_string_equal(text, ID1_TEXT);
	assert_int_equal(kg_uuid__parse(ID1_TEXT, 36, id), 0);
	assert_memory_equal(id, ID1, 16);
	assert_int_equal(kg_uuid__parse("9B2F3C1E-0A4B-4C5D-8E6F-7A8B9C0D1E2F", 36, id), 0);
	assert_memory_equal(id, ID1, 16);
	/* a longer buffer: only len counts */
	assert_int_equal(kg_uuid__parse(ID1_TEXT "garbage", 36, id), 0);
	assert_int_equal(kg_uuid__parse(ID1_TEXT, 35, id), -1);

	memset(all, 0xFF, 16);
	kg_uuid__format(all, text);
	assert_string_equal(text, "ffffffff-ffff-ffff-ffff-ffffffffffff");
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		memset(id, 0x11, 16);
		if(kg_uuid__parse(bad[i], strlen(bad[i]), id) != -1){
			print_error("uuid '%s' parsed\n", bad[i]);
			fail();
		}
		for(int k = 0; k < 16; k++) assert_int_equal(id[k], 0x11);
	}
	/* every byte value round-trips */
	for(int b = 0; b < 256; b++){
		uint8_t in[16], out[16];
		for(int k = 0; k < 16; k++) in[k] = (uint8_t)(b + k * 17);
		kg_uuid__format(in, text);
		assert_int_equal(strlen(text), 36);
		assert_int_equal(kg_uuid__parse(text, 36, out), 0);
		assert_memory_equal(in, out, 16);
	}
}

struct tcase {
	int64_t ms;
	const char *want;
};

static void test_time(void **state)
{
	(void)state;
	static const struct tcase ts[] = {
		{1700000000123LL, "2023-11-14 22:13:20.123+00"},
		{0, "1970-01-01 00:00:00.000+00"},
		{999, "1970-01-01 00:00:00.999+00"},
		{1000, "1970-01-01 00:00:01.000+00"},
		{951782400000LL, "2000-02-29 00:00:00.000+00"},
		{951868799999LL, "2000-02-29 23:59:59.999+00"},
		{4102444800001LL, "2100-01-01 00:00:00.001+00"},
		{253402300799999LL, "9999-12-31 23:59:59.999+00"},
		{-1, "1969-12-31 23:59:59.999+00"},
		{-1000, "1969-12-31 23:59:59.000+00"},
	};
	for(size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++){
		char out[40];
		int n = kg_timefmt__pg(ts[i].ms, out);
		assert_string_equal(out, ts[i].want);
		assert_int_equal(n, strlen(ts[i].want));
	}
}

struct dcase {
	double v;
	const char *want; /* NULL: only the round trip is checked */
};

static void test_double(void **state)
{
	(void)state;
	static const struct dcase ds[] = {
		{0.1, "0.1"},
		{21.5, "21.5"},
		{1e300, "1e+300"},
		{-0.0, "-0"},
		{0.0, "0"},
		{30, "30"},
		{5e-324, "4.94065645841247e-324"},          /* %.16g would be longer */
		{0.30000000000000004, "0.30000000000000004"}, /* needs 17 digits */
		{1.0 / 3.0, "0.3333333333333333"},            /* needs 16 */
		{1.7976931348623157e308, "1.7976931348623157e+308"},
		{2.2250738585072014e-308, NULL},
		{123456789012345678.0, NULL},
		{-21.25, "-21.25"},
	};
	for(size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++){
		char out[32];
		int n = kg_numfmt__double(ds[i].v, out);
		double back = strtod(out, NULL);
		assert_int_equal(n, strlen(out));
		assert_true(n > 0 && n < 32);
		if(back != ds[i].v || signbit(back) != signbit(ds[i].v)){
			print_error("double %zu: '%s' does not round-trip\n", i, out);
			fail();
		}
		if(ds[i].want) assert_string_equal(out, ds[i].want);
	}
	{
		char out[32];
		assert_int_equal(kg_numfmt__double(INFINITY, out), 4);
		assert_string_equal(out, "null");
		kg_numfmt__double(NAN, out);
		assert_string_equal(out, "null");
	}
}

/* kg_record__copy keeps every byte a record uses (the encoding of the copy is the original's) and
 * copies far less than the struct for RAW and BRIDGE records. */
static void test_copy_used(void **state)
{
	struct kg_record src, dst;
	uint8_t a[KG_RECORD_MAX_FIXED], b[KG_RECORD_MAX_FIXED];
	size_t na, nb;
	int i;

	(void)state;
	for(i = 0; i < 3; i++){
		if(i == 0) make_raw(&src);
		else if(i == 1) make_agg(&src);
		else make_bridge(&src);
		memset(&dst, 0x5A, sizeof(dst));
		kg_record__copy(&dst, &src);
		na = kg_record__encode(&src, a, sizeof(a));
		nb = kg_record__encode(&dst, b, sizeof(b));
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
		assert_true(kg_record__used(&src) <= sizeof(src));
		if(src.kind != KG_KIND_AGGREGATE) assert_true(kg_record__used(&src) * 10 < sizeof(src));
		else assert_int_equal(kg_record__used(&src), offsetof(struct kg_record, values) + src.nvalues * sizeof(src.values[0]));
	}
}

/* kg_record__store: records stored back to back, sized to their data, each aligned, in a buffer
 * of exactly their kg_record__stored sizes (the ASan build catches a read past it); read through
 * pointers they encode as the originals do (what the PostgreSQL sink's batches hold). */
static void test_store_sized(void **state)
{
	struct kg_record src[3];
	const struct kg_record *at[3];
	uint8_t a[KG_RECORD_MAX_FIXED], b[KG_RECORD_MAX_FIXED];
	size_t total = 0, off = 0, na, nb;
	unsigned char *buf;
	int i;

	(void)state;
	make_raw(&src[0]);
	make_agg(&src[1]);
	make_bridge(&src[2]);
	for(i = 0; i < 3; i++){
		size_t st = kg_record__stored(&src[i]);

		assert_true(st >= kg_record__used(&src[i]) && st < kg_record__used(&src[i]) + _Alignof(struct kg_record));
		assert_int_equal(st % _Alignof(struct kg_record), 0);
		total += st;
	}
	assert_true(total * 5 < sizeof(src));
	buf = malloc(total);
	assert_non_null(buf);
	for(i = 0; i < 3; i++){
		at[i] = (const struct kg_record *)(void *)(buf + off);
		off += kg_record__store(buf + off, &src[i]);
	}
	assert_int_equal(off, total);
	for(i = 0; i < 3; i++){
		na = kg_record__encode(&src[i], a, sizeof(a));
		nb = kg_record__encode(at[i], b, sizeof(b));
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na);
		assert_string_equal(at[i]->serial, src[i].serial);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_sized),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_roundtrip_and_truncation),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_copy_used),
		cmocka_unit_test(test_encode_small_cap),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_json_raw),
		cmocka_unit_test(test_json_agg),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_json_small_cap),
		cmocka_unit_test(test_validate_to_json),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_double),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
