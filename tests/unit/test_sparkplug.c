/* test_sparkplug.c -- unit tests for plugin/bridge/sparkplug.c (Sparkplug B -> JSON) and its hook in kg_bridge__transform. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "sparkplug_b.pb-c.h"
#include "kitgate/bridge.h"
#include "kitgate/config.h"
#include "kitgate/sparkplug.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef Org__Eclipse__Tahu__Protobuf__Payload SpPayload;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Metric SpMetric;
typedef Org__Eclipse__Tahu__Protobuf__Payload__MetaData SpMetaData;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertySet SpPropertySet;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertySetList SpPropertySetList;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertyValue SpPropertyValue;
typedef Org__Eclipse__Tahu__Protobuf__Payload__DataSet SpDataSet;
typedef Org__Eclipse__Tahu__Protobuf__Payload__DataSet__Row SpRow;
typedef Org__Eclipse__Tahu__Protobuf__Payload__DataSet__DataSetValue SpDataSetValue;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Template SpTemplate;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Template__Parameter SpParameter;

#define PAYLOAD_INIT ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT
#define METRIC_INIT ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__INIT
#define MV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_##x
#define PV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_##x
#define DV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_##x
#define TV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_##x

/* The two vectors of the UNS bridge notes (a Tahu NBIRTH; a File metric with metadata). */
static const char VECTOR1_HEX[] =
	"08c4898983d33012170a08496e707574732f41100018eaf2f5a8a02b200b700012170a08496e707574732f4210"
	"0118eaf2f5a8a02b200b700012180a094f7574707574732f45100218eaf2f5a8a02b200b700012180a094f7574"
	"707574732f46100318eaf2f5a8a02b200b7000122b0a1850726f706572746965732f4861726477617265204d61"
	"6b65100418eaf2f5a8a02b200c7a04536f6e7912210a1150726f706572746965732f576569676874100518eaf2"
	"f5a8a02b200350c8011800";
static const char VECTOR1_JSON[] =
	"{\"timestamp\": 1671554024644, \"metrics\": [{\"name\": \"Inputs/A\", \"alias\": 0, \"timestamp\": 1486144502122, \"datatype\": 11, \"value\": false}, "
	"{\"name\": \"Inputs/B\", \"alias\": 1, \"timestamp\": 1486144502122, \"datatype\": 11, \"value\": false}, "
	"{\"name\": \"Outputs/E\", \"alias\": 2, \"timestamp\": 1486144502122, \"datatype\": 11, \"value\": false}, "
	"{\"name\": \"Outputs/F\", \"alias\": 3, \"timestamp\": 1486144502122, \"datatype\": 11, \"value\": false}, "
	"{\"name\": \"Properties/Hardware Make\", \"alias\": 4, \"timestamp\": 1486144502122, \"datatype\": 12, \"value\": \"Sony\"}, "
	"{\"name\": \"Properties/Weight\", \"alias\": 5, \"timestamp\": 1486144502122, \"datatype\": 3, \"value\": 200}], \"seq\": 0}";
static const char VECTOR2_HEX[] =
	"12780a0d74657374206d657461646174611894b9afcbd0312012424b080012057574662d38183920012a087465"
	"73742e74787432037478743a206138613432643135396435633831356138303632396337636534343364343034"
	"420b6465736372697074696f6e8201104920616d206120746578742066696c65";
static const char VECTOR2_JSON[] =
	"{\"metrics\": [{\"name\": \"test metadata\", \"timestamp\": 1705260080276, \"datatype\": 18, "
	"\"metadata\": {\"is_multi_part\": false, \"content_type\": \"utf-8\", \"size\": 57, \"seq\": 1, "
	"\"file_name\": \"test.txt\", \"file_type\": \"txt\", \"md5\": \"a8a42d159d5c815a80629c7ce443d404\", "
	"\"description\": \"description\"}, \"value\": \"SSBhbSBhIHRleHQgZmlsZQ==\"}]}";

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2, i;

	assert_true(n <= cap);
	for(i = 0; i < n; i++){
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* Decode bytes and compare with the expected JSON structurally (cJSON_Compare, case-sensitive
 * keys, any member order). Returns the compact JSON (caller frees) for extra text checks. */
static char *expect_bytes(const uint8_t *buf, size_t len, const char *want_json)
{
	char *json = NULL;
	size_t jlen = 0;
	cJSON *got, *want;
	int rc = kg_sparkplug__to_json(buf, len, &json, &jlen);

	if(rc) fail_msg("decode failed: %d", rc);
	assert_int_equal(strlen(json), jlen);
	got = cJSON_Parse(json);
	if(!got) fail_msg("output is not JSON: %s", json);
	want = cJSON_Parse(want_json);
	if(!want) fail_msg("bad expectation: %s", want_json);
	if(!cJSON_Compare(got, want, 1)) fail_msg("got  %s\nwant %s", json, want_json);
	cJSON_Delete(got);
	cJSON_Delete(want);
	return json;
}

static uint8_t *pack(const SpPayload *pl, size_t *len)
{
	uint8_t *buf;

	*len = org__eclipse__tahu__protobuf__payload__get_packed_size(pl);
	buf = malloc(*len ? *len : 1);
	assert_non_null(buf);
	assert_int_equal(org__eclipse__tahu__protobuf__payload__pack(pl, buf), *len);
	return buf;
}

static char *expect(const SpPayload *pl, const char *want_json)
{
	size_t len;
	uint8_t *buf = pack(pl, &len);
	char *json = expect_bytes(buf, len, want_json);

	free(buf);
	return json;
}

static int decode_rc(const uint8_t *buf, size_t len)
{
	cJSON *out = (cJSON *)&out; /* must be reset to NULL on failure */
	int rc = kg_sparkplug__decode(buf, len, &out);

	if(rc) assert_null(out);
	cJSON_Delete(out);
	return rc;
}

/* A payload of one metric. */
static char *expect_metric(SpMetric *m, const char *want_metric_json)
{
	SpPayload pl = PAYLOAD_INIT;
	SpMetric *ms[1] = {m};
	char want[4096];

	pl.n_metrics = 1;
	pl.metrics = ms;
	snprintf(want, sizeof want, "{\"metrics\":[%s]}", want_metric_json);
	return expect(&pl, want);
}

static SpMetric metric(uint32_t datatype)
{
	SpMetric m = METRIC_INIT;

	m.has_datatype = 1;
	m.datatype = datatype;
	return m;
}

static SpMetric m_int(uint32_t dt, uint32_t v)
{
	SpMetric m = metric(dt);

	m.value_case = MV(INT_VALUE);
	m.int_value = v;
	return m;
}

static SpMetric m_long(uint32_t dt, uint64_t v)
{
	SpMetric m = metric(dt);

	m.value_case = MV(LONG_VALUE);
	m.long_value = v;
	return m;
}

static SpMetric m_bytes(uint32_t dt, const void *data, size_t len)
{
	SpMetric m = metric(dt);

	m.value_case = MV(BYTES_VALUE);
	m.bytes_value.data = (uint8_t *)data;
	m.bytes_value.len = len;
	return m;
}

static void expect_free(SpMetric m, const char *want)
{
	free(expect_metric(&m, want));
}

/* ---- the note's vectors ------------------------------------------------------------------ */

static void test_vectors(void **state)
{
	uint8_t buf[256];
	size_t n;

	(void)state;
	n = unhex(VECTOR1_HEX, buf, sizeof buf);
	assert_int_equal(n, 191);
	free(expect_bytes(buf, n, VECTOR1_JSON));
	n = unhex(VECTOR2_HEX, buf, sizeof buf);
	assert_int_equal(n, 122);
	free(expect_bytes(buf, n, VECTOR2_JSON));
}

/* ---- scalars ----------------------------------------------------------------------------- */

static void test_signed_scalars(void **state)
{
	char *json;

	(void)state;
	/* Tahu sign-extends to 32 bits; some encoders send only the low bits: both read back. */
	expect_free(m_int(1, (uint32_t)-10), "{\"datatype\":1,\"value\":-10}");
	expect_free(m_int(1, 246), "{\"datatype\":1,\"value\":-10}");
	expect_free(m_int(1, 127), "{\"datatype\":1,\"value\":127}");
	expect_free(m_int(1, (uint32_t)-128), "{\"datatype\":1,\"value\":-128}");
	expect_free(m_int(2, (uint32_t)-300), "{\"datatype\":2,\"value\":-300}");
	expect_free(m_int(2, 65236), "{\"datatype\":2,\"value\":-300}");
	expect_free(m_int(2, 32767), "{\"datatype\":2,\"value\":32767}");
	expect_free(m_int(3, (uint32_t)-100000), "{\"datatype\":3,\"value\":-100000}");
	expect_free(m_int(3, (uint32_t)INT32_MIN), "{\"datatype\":3,\"value\":-2147483648}");
	expect_free(m_long(4, (uint64_t)-123456), "{\"datatype\":4,\"value\":-123456}");
	expect_free(m_long(4, 9007199254740992ull), "{\"datatype\":4,\"value\":9007199254740992}");
	/* a signed type in the other field still keeps its sign */
	expect_free(m_long(3, (uint64_t)-7), "{\"datatype\":3,\"value\":-7}");
	expect_free(m_int(4, (uint32_t)-7), "{\"datatype\":4,\"value\":-7}");
	/* an all-default metric prints {} */
	{
		SpMetric m = METRIC_INIT;

		free(expect_metric(&m, "{}"));
	}
	/* beyond 2^53: exact digits, not a rounded double */
	{
		SpMetric m = m_long(4, (uint64_t)INT64_MIN);

		json = expect_metric(&m, "{\"datatype\":4,\"value\":-9223372036854775808}");
		assert_non_null(strstr(json, "\"value\":-9223372036854775808}"));
		free(json);
	}
}

static void test_unsigned_scalars(void **state)
{
	char *json;
	SpMetric m;

	(void)state;
	expect_free(m_int(5, 250), "{\"datatype\":5,\"value\":250}");
	expect_free(m_int(6, 65000), "{\"datatype\":6,\"value\":65000}");
	expect_free(m_int(7, 4000000000u), "{\"datatype\":7,\"value\":4000000000}");
	/* Tahu before 3.0 put UInt32 in long_value */
	expect_free(m_long(7, 4000000000u), "{\"datatype\":7,\"value\":4000000000}");
	m = m_long(8, UINT64_MAX);
	json = expect_metric(&m, "{\"datatype\":8,\"value\":18446744073709551615}");
	assert_non_null(strstr(json, "\"value\":18446744073709551615}"));
	free(json);
	m = m_long(8, 9007199254740993ull);
	json = expect_metric(&m, "{\"datatype\":8,\"value\":9007199254740993}");
	assert_non_null(strstr(json, "9007199254740993"));
	free(json);
	expect_free(m_long(13, 1700000000123ull), "{\"datatype\":13,\"value\":1700000000123}");
	/* no datatype: the field's own (unsigned) reading */
	m = m_int(0, (uint32_t)-1);
	m.has_datatype = 0;
	expect_free(m, "{\"value\":4294967295}");
}

static void test_float_bool_string(void **state)
{
	SpMetric m;
	char *json;

	(void)state;
	m = metric(9);
	m.value_case = MV(FLOAT_VALUE);
	m.float_value = 1.1f;
	json = expect_metric(&m, "{\"datatype\":9,\"value\":1.1}");
	assert_non_null(strstr(json, "\"value\":1.1}")); /* shortest float text, not 1.100000023841858 */
	free(json);
	m.float_value = -0.25f;
	expect_free(m, "{\"datatype\":9,\"value\":-0.25}");
	m.float_value = NAN;
	expect_free(m, "{\"datatype\":9,\"value\":\"NaN\"}");
	m.float_value = -INFINITY;
	expect_free(m, "{\"datatype\":9,\"value\":\"-Infinity\"}");
	m = metric(10);
	m.value_case = MV(DOUBLE_VALUE);
	m.double_value = 3.141592653589793;
	json = expect_metric(&m, "{\"datatype\":10,\"value\":3.141592653589793}");
	assert_non_null(strstr(json, "3.141592653589793"));
	free(json);
	m.double_value = INFINITY;
	expect_free(m, "{\"datatype\":10,\"value\":\"Infinity\"}");
	m = metric(11);
	m.value_case = MV(BOOLEAN_VALUE);
	m.boolean_value = 1;
	expect_free(m, "{\"datatype\":11,\"value\":true}");
	m = metric(12);
	m.value_case = MV(STRING_VALUE);
	m.string_value = "h\xc3\xa9llo \"q\"\n";
	expect_free(m, "{\"datatype\":12,\"value\":\"h\xc3\xa9llo \\\"q\\\"\\n\"}");
	m.string_value = "";
	expect_free(m, "{\"datatype\":12,\"value\":\"\"}");
	m.datatype = 14;
	m.string_value = "some text";
	expect_free(m, "{\"datatype\":14,\"value\":\"some text\"}");
	m.datatype = 15;
	m.string_value = "5b3d3e3c-6f53-4bd4-9a4e-1c7c4d0c1b6a";
	expect_free(m, "{\"datatype\":15,\"value\":\"5b3d3e3c-6f53-4bd4-9a4e-1c7c4d0c1b6a\"}");
}

static void test_bytes_and_file(void **state)
{
	static const uint8_t b[] = {0x00, 0x01, 0x02, 0xff};
	SpMetaData md = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__META_DATA__INIT;
	SpMetric m;

	(void)state;
	expect_free(m_bytes(17, b, sizeof b), "{\"datatype\":17,\"value\":\"AAEC/w==\"}");
	expect_free(m_bytes(17, b, 0), "{\"datatype\":17,\"value\":\"\"}");
	m = m_bytes(18, "hello", 5);
	md.has_is_multi_part = 1;
	md.is_multi_part = 1;
	md.file_name = "h.txt";
	md.has_size = 1;
	md.size = 5;
	m.metadata = &md;
	expect_free(m, "{\"datatype\":18,\"metadata\":{\"is_multi_part\":true,\"file_name\":\"h.txt\",\"size\":5},"
			"\"value\":\"aGVsbG8=\"}");
	/* an empty metadata message is present: {} */
	SpMetaData empty = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__META_DATA__INIT;
	m.metadata = &empty;
	expect_free(m, "{\"datatype\":18,\"metadata\":{},\"value\":\"aGVsbG8=\"}");
}

/* Flags, nulls and absent fields: only what is present is printed. */
static void test_flags_nulls_absent(void **state)
{
	SpPayload pl = PAYLOAD_INIT;
	SpMetric m = metric(3), m2 = METRIC_INIT;
	SpMetric *ms[2] = {&m, &m2};
	uint8_t body[] = {0xde, 0xad};

	(void)state;
	m.name = "";
	m.has_alias = 1;
	m.alias = 0;
	m.has_is_historical = 1;
	m.is_historical = 1;
	m.has_is_transient = 1;
	m.is_transient = 0;
	m.has_is_null = 1;
	m.is_null = 1;
	expect_free(m, "{\"name\":\"\",\"alias\":0,\"datatype\":3,\"is_historical\":true,\"is_transient\":false,"
			"\"is_null\":true,\"value\":null}");
	/* is_null false with a value */
	m.is_null = 0;
	m.value_case = MV(INT_VALUE);
	m.int_value = 5;
	expect_free(m, "{\"name\":\"\",\"alias\":0,\"datatype\":3,\"is_historical\":true,\"is_transient\":false,"
			"\"is_null\":false,\"value\":5}");
	/* empty payload: no fields at all */
	free(expect(&pl, "{}"));
	pl.has_seq = 1;
	pl.seq = 255;
	pl.uuid = "u-1";
	pl.has_body = 1;
	pl.body.data = body;
	pl.body.len = sizeof body;
	pl.n_metrics = 2;
	pl.metrics = ms;
	m2.has_alias = 1;
	m2.alias = 7;
	m2.value_case = MV(DOUBLE_VALUE);
	m2.double_value = -2.5;
	free(expect(&pl, "{\"metrics\":[{\"name\":\"\",\"alias\":0,\"datatype\":3,\"is_historical\":true,"
			"\"is_transient\":false,\"is_null\":false,\"value\":5},{\"alias\":7,\"value\":-2.5}],"
			"\"seq\":255,\"uuid\":\"u-1\",\"body\":\"3q0=\"}"));
}

/* ---- arrays ------------------------------------------------------------------------------ */

static void test_arrays(void **state)
{
	static const uint8_t i8[] = {0xE9, 0x7B};                       /* spec: [-23, 123] */
	static const uint8_t i16[] = {0xD0, 0x8A, 0x30, 0x75};          /* [-30000, 30000] */
	static const uint8_t i32[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x80};
	static const uint8_t i64[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80};
	static const uint8_t u8[] = {0xFF, 0x00};
	static const uint8_t u16[] = {0xFF, 0xFF, 0x34, 0x12};
	static const uint8_t u32[] = {0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t u64[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t f32[] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x10, 0xC0}; /* 1.5, -2.25 */
	static const uint8_t f64[] = {0x18, 0x2D, 0x44, 0x54, 0xFB, 0x21, 0x09, 0x40}; /* pi */
	static const uint8_t bools[] = {0x0C, 0x00, 0x00, 0x00, 0x34, 0xD0};          /* spec example */
	static const uint8_t strs[] = "ABC\0hello\0";
	static const uint8_t dts[] = {0x7B, 0x06, 0xEF, 0xCF, 0x8B, 0x01, 0x00, 0x00}; /* 1700000630395 */
	char *json;
	SpMetric m;

	(void)state;
	expect_free(m_bytes(22, i8, sizeof i8), "{\"datatype\":22,\"value\":[-23,123]}");
	expect_free(m_bytes(23, i16, sizeof i16), "{\"datatype\":23,\"value\":[-30000,30000]}");
	expect_free(m_bytes(24, i32, sizeof i32), "{\"datatype\":24,\"value\":[-1,-2147483648]}");
	m = m_bytes(25, i64, sizeof i64);
	json = expect_metric(&m, "{\"datatype\":25,\"value\":[-1,-9223372036854775808]}");
	assert_non_null(strstr(json, "[-1,-9223372036854775808]"));
	free(json);
	expect_free(m_bytes(26, u8, sizeof u8), "{\"datatype\":26,\"value\":[255,0]}");
	expect_free(m_bytes(27, u16, sizeof u16), "{\"datatype\":27,\"value\":[65535,4660]}");
	expect_free(m_bytes(28, u32, sizeof u32), "{\"datatype\":28,\"value\":[4294967295]}");
	m = m_bytes(29, u64, sizeof u64);
	json = expect_metric(&m, "{\"datatype\":29,\"value\":[18446744073709551615]}");
	assert_non_null(strstr(json, "[18446744073709551615]"));
	free(json);
	expect_free(m_bytes(30, f32, sizeof f32), "{\"datatype\":30,\"value\":[1.5,-2.25]}");
	m = m_bytes(31, f64, sizeof f64);
	json = expect_metric(&m, "{\"datatype\":31,\"value\":[3.141592653589793]}");
	assert_non_null(strstr(json, "[3.141592653589793]"));
	free(json);
	expect_free(m_bytes(32, bools, sizeof bools), "{\"datatype\":32,\"value\":"
			"[false,false,true,true,false,true,false,false,true,true,false,true]}");
	expect_free(m_bytes(33, strs, sizeof strs - 1), "{\"datatype\":33,\"value\":[\"ABC\",\"hello\"]}");
	expect_free(m_bytes(33, "ABC\0\0x", 6), "{\"datatype\":33,\"value\":[\"ABC\",\"\",\"x\"]}");
	expect_free(m_bytes(34, dts, sizeof dts), "{\"datatype\":34,\"value\":[1700000630395]}");
	/* empty arrays */
	expect_free(m_bytes(24, i8, 0), "{\"datatype\":24,\"value\":[]}");
	expect_free(m_bytes(33, i8, 0), "{\"datatype\":33,\"value\":[]}");
	expect_free(m_bytes(32, "\0\0\0\0", 4), "{\"datatype\":32,\"value\":[]}");
}

static void test_malformed_arrays(void **state)
{
	static const uint8_t odd[] = {0x01, 0x02, 0x03};
	static const uint8_t bools_short[] = {0x11, 0x00, 0x00, 0x00, 0xFF, 0xFF}; /* 17 bits in 16 */
	static const uint8_t bools_huge[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x01};
	const struct { uint32_t dt; const uint8_t *b; size_t n; } cases[] = {
		{23, odd, 3}, {24, odd, 3}, {25, odd, 3}, {27, odd, 1}, {28, odd, 2}, {29, odd, 3},
		{30, odd, 3}, {31, odd, 3}, {34, odd, 3},
		{32, odd, 3}, {32, bools_short, sizeof bools_short}, {32, bools_huge, sizeof bools_huge},
		{33, (const uint8_t *)"ok\0\xff\xfe", 5},
	};
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		SpPayload pl = PAYLOAD_INIT;
		SpMetric m = m_bytes(cases[i].dt, cases[i].b, cases[i].n);
		SpMetric *ms[1] = {&m};
		size_t len;
		uint8_t *buf;

		pl.n_metrics = 1;
		pl.metrics = ms;
		buf = pack(&pl, &len);
		if(decode_rc(buf, len) != KG_SPARKPLUG_INVALID) fail_msg("case %d (datatype %u) decoded", i, cases[i].dt);
		free(buf);
	}
}

/* ---- DataSet ------------------------------------------------------------------------------- */

static void test_dataset(void **state)
{
	SpDataSetValue v[2][4];
	SpDataSetValue *r0[4] = {&v[0][0], &v[0][1], &v[0][2], &v[0][3]};
	SpDataSetValue *r1[3] = {&v[1][0], &v[1][1], &v[1][2]};
	SpRow rows[3] = {ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__ROW__INIT,
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__ROW__INIT,
		ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__ROW__INIT};
	SpRow *rowp[3] = {&rows[0], &rows[1], &rows[2]};
	SpDataSet ds = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__INIT;
	char *cols[4] = {"i8", "name", "ok", "i64"};
	uint32_t types[4] = {1, 12, 11, 4};
	SpMetric m = metric(16);
	int i, j;

	(void)state;
	for(i = 0; i < 2; i++){
		for(j = 0; j < 4; j++){
			SpDataSetValue init = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__INIT;

			v[i][j] = init;
		}
	}
	v[0][0].value_case = DV(INT_VALUE); v[0][0].int_value = (uint32_t)-5;
	v[0][1].value_case = DV(STRING_VALUE); v[0][1].string_value = "a";
	v[0][2].value_case = DV(BOOLEAN_VALUE); v[0][2].boolean_value = 1;
	v[0][3].value_case = DV(LONG_VALUE); v[0][3].long_value = (uint64_t)-99;
	v[1][0].value_case = DV(INT_VALUE); v[1][0].int_value = 100;
	v[1][1].value_case = DV(FLOAT_VALUE); v[1][1].float_value = 0.5f;
	/* v[1][2] has no value: an empty element */
	rows[0].n_elements = 4; rows[0].elements = r0;
	rows[1].n_elements = 3; rows[1].elements = r1;
	/* rows[2]: no elements */
	ds.has_num_of_columns = 1;
	ds.num_of_columns = 4;
	ds.n_columns = 4;
	ds.columns = cols;
	ds.n_types = 4;
	ds.types = types;
	ds.n_rows = 3;
	ds.rows = rowp;
	m.name = "table";
	m.value_case = MV(DATASET_VALUE);
	m.dataset_value = &ds;
	expect_free(m, "{\"name\":\"table\",\"datatype\":16,\"value\":{\"num_of_columns\":4,"
			"\"columns\":[\"i8\",\"name\",\"ok\",\"i64\"],\"types\":[1,12,11,4],\"rows\":["
			"{\"elements\":[{\"value\":-5},{\"value\":\"a\"},{\"value\":true},{\"value\":-99}]},"
			"{\"elements\":[{\"value\":100},{\"value\":0.5},{}]},{}]}}");
	/* an empty dataset */
	SpDataSet empty = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__INIT;
	m.dataset_value = &empty;
	expect_free(m, "{\"name\":\"table\",\"datatype\":16,\"value\":{}}");
}

/* ---- Template ------------------------------------------------------------------------------ */

static void test_template(void **state)
{
	SpParameter p1 = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__INIT;
	SpParameter p2 = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__INIT;
	SpParameter p3 = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__INIT;
	SpParameter *ps[3] = {&p1, &p2, &p3};
	SpTemplate inner = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__INIT;
	SpTemplate t = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__INIT;
	SpMetric sub = m_int(2, (uint32_t)-2), nested = metric(19);
	SpMetric *tm[2] = {&sub, &nested};
	SpMetric m = metric(19);

	(void)state;
	p1.name = "min";
	p1.has_type = 1;
	p1.type = 2;
	p1.value_case = TV(INT_VALUE);
	p1.int_value = (uint32_t)-40;
	p2.name = "label";
	p2.has_type = 1;
	p2.type = 12;
	p2.value_case = TV(STRING_VALUE);
	p2.string_value = "motor";
	p3.name = "unset";
	sub.name = "speed";
	inner.template_ref = "Base";
	nested.name = "inner";
	nested.value_case = MV(TEMPLATE_VALUE);
	nested.template_value = &inner;
	t.version = "1.0";
	t.n_metrics = 2;
	t.metrics = tm;
	t.n_parameters = 3;
	t.parameters = ps;
	t.has_is_definition = 1;
	t.is_definition = 1;
	m.name = "_types_/Motor";
	m.value_case = MV(TEMPLATE_VALUE);
	m.template_value = &t;
	expect_free(m, "{\"name\":\"_types_/Motor\",\"datatype\":19,\"value\":{\"version\":\"1.0\",\"metrics\":["
			"{\"name\":\"speed\",\"datatype\":2,\"value\":-2},"
			"{\"name\":\"inner\",\"datatype\":19,\"value\":{\"template_ref\":\"Base\"}}],"
			"\"parameters\":[{\"name\":\"min\",\"type\":2,\"value\":-40},"
			"{\"name\":\"label\",\"type\":12,\"value\":\"motor\"},{\"name\":\"unset\"}],"
			"\"is_definition\":true}}");
}

/* ---- PropertySet / PropertySetList ------------------------------------------------------------ */

static void test_property_sets(void **state)
{
	SpPropertyValue v[6];
	SpPropertyValue *vp[6] = {&v[0], &v[1], &v[2], &v[3], &v[4], &v[5]};
	char *keys[6] = {"engUnit", "readOnly", "offset", "nested", "list", "missing"};
	SpPropertySet set = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET__INIT;
	SpPropertySet inner = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET__INIT;
	SpPropertySet *innerp[2] = {&inner, &inner};
	SpPropertySetList list = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET_LIST__INIT;
	SpPropertyValue iv = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__INIT;
	SpPropertyValue *ivp[1] = {&iv};
	char *ikeys[1] = {"deep"};
	SpMetric m = m_long(4, (uint64_t)-1);
	int i;

	(void)state;
	for(i = 0; i < 6; i++){
		SpPropertyValue init = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__INIT;

		v[i] = init;
	}
	v[0].has_type = 1; v[0].type = 12; v[0].value_case = PV(STRING_VALUE); v[0].string_value = "degC";
	v[1].has_type = 1; v[1].type = 11; v[1].value_case = PV(BOOLEAN_VALUE); v[1].boolean_value = 0;
	v[2].has_type = 1; v[2].type = 1; v[2].value_case = PV(INT_VALUE); v[2].int_value = 0xFF;
	v[3].has_type = 1; v[3].type = 20; v[3].value_case = PV(PROPERTYSET_VALUE); v[3].propertyset_value = &inner;
	v[4].has_type = 1; v[4].type = 21; v[4].value_case = PV(PROPERTYSETS_VALUE); v[4].propertysets_value = &list;
	v[5].has_type = 1; v[5].type = 3; v[5].has_is_null = 1; v[5].is_null = 1;
	iv.has_type = 1;
	iv.type = 10;
	iv.value_case = PV(DOUBLE_VALUE);
	iv.double_value = 0.25;
	inner.n_keys = 1;
	inner.keys = ikeys;
	inner.n_values = 1;
	inner.values = ivp;
	list.n_propertyset = 2;
	list.propertyset = innerp;
	set.n_keys = 6;
	set.keys = keys;
	set.n_values = 6;
	set.values = vp;
	m.properties = &set;
	expect_free(m, "{\"datatype\":4,\"properties\":{\"keys\":[\"engUnit\",\"readOnly\",\"offset\",\"nested\","
			"\"list\",\"missing\"],\"values\":[{\"type\":12,\"value\":\"degC\"},{\"type\":11,\"value\":false},"
			"{\"type\":1,\"value\":-1},"
			"{\"type\":20,\"value\":{\"keys\":[\"deep\"],\"values\":[{\"type\":10,\"value\":0.25}]}},"
			"{\"type\":21,\"value\":{\"propertyset\":[{\"keys\":[\"deep\"],\"values\":[{\"type\":10,\"value\":0.25}]},"
			"{\"keys\":[\"deep\"],\"values\":[{\"type\":10,\"value\":0.25}]}]}},"
			"{\"type\":3,\"is_null\":true,\"value\":null}]},\"value\":-1}");
	/* an empty property set */
	SpPropertySet none = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_SET__INIT;
	m.properties = &none;
	expect_free(m, "{\"datatype\":4,\"properties\":{},\"value\":-1}");
}

/* ---- what must not decode -------------------------------------------------------------------- */

static void test_invalid(void **state)
{
	uint8_t buf[256];
	size_t n;
	static const uint8_t garbage[] = "{\"not\":\"protobuf\"}";
	static const uint8_t bad_wire[] = {0x0F, 0x00};              /* wire type 7 */
	static const uint8_t truncated_len[] = {0x12, 0x05, 0x0a};   /* metric of 5 bytes, 1 present */
	static const uint8_t bad_varint[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
	static const uint8_t group[] = {0x0B, 0x0C};                 /* start/end group */
	static const uint8_t bad_utf8_name[] = {0x12, 0x03, 0x0a, 0x01, 0xC3};
	static const uint8_t nul_in_name[] = {0x12, 0x04, 0x0a, 0x02, 'a', 0x00};
	static const uint8_t surrogate[] = {0x22, 0x03, 0xED, 0xA0, 0x80};   /* uuid U+D800 */

	(void)state;
	assert_int_equal(decode_rc(garbage, sizeof garbage - 1), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(bad_wire, sizeof bad_wire), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(truncated_len, sizeof truncated_len), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(bad_varint, sizeof bad_varint), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(group, sizeof group), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(bad_utf8_name, sizeof bad_utf8_name), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(nul_in_name, sizeof nul_in_name), KG_SPARKPLUG_INVALID);
	assert_int_equal(decode_rc(surrogate, sizeof surrogate), KG_SPARKPLUG_INVALID);
	/* every strict prefix of vector 1 that cuts a field is refused; none crashes */
	n = unhex(VECTOR1_HEX, buf, sizeof buf);
	assert_int_equal(decode_rc(buf, n - 1), KG_SPARKPLUG_INVALID);
	for(size_t k = 0; k < n; k++) (void)decode_rc(buf, k);
	/* an empty input is an empty Payload */
	assert_int_equal(decode_rc(buf, 0), 0);
	assert_int_equal(decode_rc(NULL, 0), 0);
	assert_int_equal(decode_rc(NULL, 1), KG_SPARKPLUG_INVALID);
}

/* Nesting bombs: property sets inside property values, templates inside metrics. */
static uint8_t *nest(size_t levels, size_t *len)
{
	/* innermost: a PropertySet with one key; wrapped alternately in PropertyValue.propertyset_value
	 * (field 9) and PropertySet.values (field 2), then Metric.properties (9), Payload.metrics (2). */
	size_t cap = 16 + levels * 16, n, i;
	uint8_t *buf = malloc(cap), *tmp = malloc(cap);

	assert_non_null(buf);
	assert_non_null(tmp);
	buf[0] = 0x0a; buf[1] = 0x01; buf[2] = 'k';
	n = 3;
	for(i = 0; i < 2 * levels + 2; i++){
		uint8_t tag = (i == 2 * levels) ? 0x4a : (i == 2 * levels + 1) ? 0x12 : (i % 2 == 0) ? 0x4a : 0x12;
		size_t h = 0, v = n;

		tmp[h++] = tag;
		do{
			tmp[h++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
			v >>= 7;
		}while(v);
		memcpy(tmp + h, buf, n);
		n += h;
		memcpy(buf, tmp, n);
	}
	free(tmp);
	*len = n;
	return buf;
}

static void test_depth_limit(void **state)
{
	size_t len;
	uint8_t *buf;

	(void)state;
	/* Payload(1) > Metric(2) > PropertySet(3) > [PropertyValue > PropertySet] x levels */
	buf = nest(10, &len);
	assert_int_equal(decode_rc(buf, len), 0);
	free(buf);
	buf = nest((KG_SPARKPLUG_MAX_DEPTH - 3) / 2, &len);
	assert_int_equal(decode_rc(buf, len), 0);
	free(buf);
	buf = nest((KG_SPARKPLUG_MAX_DEPTH - 3) / 2 + 1, &len);
	assert_int_equal(decode_rc(buf, len), KG_SPARKPLUG_INVALID);
	free(buf);
	buf = nest(2000, &len); /* 4000 levels: the pre-scan stops at the limit */
	assert_int_equal(decode_rc(buf, len), KG_SPARKPLUG_INVALID);
	free(buf);
}

/* The protobuf-c allocation budget: a million empty metrics (2 bytes each on the wire, over
 * 100 bytes each once unpacked) exceed KG_SPARKPLUG_ALLOC_LIMIT; a hundred thousand do not. */
static void test_alloc_limit(void **state)
{
	size_t n = 1000000, i, len;
	uint8_t *buf = malloc(2 * n);

	(void)state;
	assert_non_null(buf);
	assert_true(n * sizeof(SpMetric) > KG_SPARKPLUG_ALLOC_LIMIT);
	for(i = 0; i < n; i++){
		buf[2 * i] = 0x12;
		buf[2 * i + 1] = 0x00;
	}
	assert_int_equal(decode_rc(buf, 2 * n), KG_SPARKPLUG_INVALID);
	len = 2 * 100000;
	assert_true(100000 * (sizeof(SpMetric) + sizeof(void *)) < KG_SPARKPLUG_ALLOC_LIMIT);
	assert_int_equal(decode_rc(buf, len), 0);
	free(buf);
}

/* The rc of decoding one metric of datatype dt whose bytes_value is data[0..len). */
static int metric_rc(uint32_t dt, const uint8_t *data, size_t len)
{
	SpMetric m = m_bytes(dt, data, len), *ms[1] = {&m};
	SpPayload pl = PAYLOAD_INIT;
	size_t n;
	uint8_t *buf;
	int rc;

	pl.n_metrics = 1;
	pl.metrics = ms;
	buf = pack(&pl, &n);
	rc = decode_rc(buf, n);
	free(buf);
	return rc;
}

static long peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* The decoded output is bounded, not only the input: a StringArray of NULs is one empty string per
 * byte (16 MiB of NULs took the broker to a 1.95 GB peak), a BooleanArray 6 bytes of text per bit.
 * Past KG_SPARKPLUG_OUTPUT_LIMIT the payload is KG_SPARKPLUG_TOO_BIG (the bridge forwards it
 * unchanged and counts it undecodable) and the peak memory of the decode stays within a few times
 * the limit; arrays under the limit still decode. */
static void test_output_limit(void **state)
{
	size_t big = (size_t)16 << 20, i;
	uint8_t *nuls = calloc(1, big), *strs;
	long before;

	(void)state;
	assert_non_null(nuls);
	/* 2 MiB of NULs: 2 Mi strings, > 32 MiB as a tree */
	assert_int_equal(metric_rc(33, nuls, (size_t)2 << 20), KG_SPARKPLUG_TOO_BIG);
	/* the issue's case, with the peak memory of the decode measured */
	before = peak_rss_kb();
	assert_int_equal(metric_rc(33, nuls, big), KG_SPARKPLUG_TOO_BIG);
	print_message("16 MiB StringArray of NULs: peak RSS grew by %ld KiB (limit %zu MiB of tree)\n",
			peak_rss_kb() - before, KG_SPARKPLUG_OUTPUT_LIMIT >> 20);
	assert_true(peak_rss_kb() - before < 4 * (long)(KG_SPARKPLUG_OUTPUT_LIMIT >> 10) + 3 * (long)(big >> 10));
	/* a BooleanArray of ~128 Mi bits: ~768 MiB of text unbounded */
	nuls[0] = 0xE0; nuls[1] = 0xFF; nuls[2] = 0xFF; nuls[3] = 0x07; /* count (16 Mi - 4) * 8, LE */
	assert_int_equal(metric_rc(32, nuls, big), KG_SPARKPLUG_TOO_BIG);
	/* under the limit: 100,000 one-letter strings decode */
	strs = malloc(200000);
	assert_non_null(strs);
	for(i = 0; i < 100000; i++){
		strs[2 * i] = 'a';
		strs[2 * i + 1] = '\0';
	}
	assert_int_equal(metric_rc(33, strs, 200000), 0);
	free(strs);
	free(nuls);
}

/* ---- topics and the bridge hook ------------------------------------------------------------- */

static void test_is_topic(void **state)
{
	static const struct { const char *topic; int want; } cases[] = {
		{"spBv1.0/g/NBIRTH/n", 1},
		{"spBv1.0/g/DDATA/n/d", 1},
		{"spBv1.0/g/DDATA/n/d/extra", 1},
		{"spBv1.0/STATE/host", 0},
		{"spBv1.0/STATE", 0},
		{"spBv1.0/g/NBIRTH", 0},
		{"spBv1.0/g", 0},
		{"spBv1.0", 0},
		{"spAv1.0/g/NBIRTH/n", 0},
		{"STATE/host", 0},
		{"uns/spBv1.0/g/NDATA/n", 0},
		{"spBv1.0/STATEX/NDATA/n", 1},
	};
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		if(kg_sparkplug__is_topic(cases[i].topic) != cases[i].want) fail_msg("%s", cases[i].topic);
	}
	assert_int_equal(kg_sparkplug__is_topic(NULL), 0);
}

static void config(struct kg_config *cfg, const char *const *kv)
{
	struct kg_opt opts[16];
	char err[256];
	int n = 0;

	for(; kv[0]; kv += 2, n++){
		opts[n].key = (char *)kv[0];
		opts[n].value = (char *)kv[1];
	}
	if(kg_config__parse(cfg, opts, n, err, sizeof(err))) fail_msg("config: %s", err);
}

static void transform(const struct kg_config *cfg, const char *topic, const uint8_t *p, size_t len,
		const char *want_json, int64_t want_ts)
{
	const uint8_t *value;
	size_t vlen;
	int owned;
	int64_t ts;

	assert_int_equal(kg_bridge__transform(cfg, topic, p, len, &value, &vlen, &owned, &ts), 0);
	assert_int_equal(ts, want_ts);
	if(!want_json){
		assert_int_equal(owned, 0);
		assert_ptr_equal(value, p);
		assert_int_equal(vlen, len);
		return;
	}
	assert_int_equal(owned, 1);
	{
		char *s = strndup((const char *)value, vlen);
		cJSON *got = cJSON_Parse(s), *want = cJSON_Parse(want_json);

		assert_non_null(want);
		if(!got || !cJSON_Compare(got, want, 1)) fail_msg("got  %s\nwant %s", s, want_json);
		cJSON_Delete(got);
		cJSON_Delete(want);
		free(s);
	}
	free((void *)value);
}

static void test_bridge_hook(void **state)
{
	static const char *const decode_kv[] = {"sink", "none", "bridge_topics", "spBv1.0/#",
		"ignored_attributes", "spBv1.0/+/NDATA/#=seq", NULL};
	static const char *const raw_kv[] = {"sink", "none", "bridge_topics", "spBv1.0/#",
		"bridge_sparkplug", "raw", NULL};
	static const char *const ts_kv[] = {"sink", "none", "bridge_topics", "spBv1.0/#",
		"timestamp_attribute", "ts", NULL};
	static const uint8_t garbage[] = {0xFF, 0xFF, 0xFF};
	static const uint8_t state_json[] = "{\"online\":true,\"timestamp\":1700000000000}";
	struct kg_config cfg;
	uint8_t v1[256];
	size_t n1 = unhex(VECTOR1_HEX, v1, sizeof v1);
	uint64_t before;

	(void)state;
	config(&cfg, decode_kv);
	transform(&cfg, "spBv1.0/g/NBIRTH/n", v1, n1, VECTOR1_JSON, 1671554024644);
	/* ignored_attributes applies to the decoded JSON */
	{
		cJSON *want = cJSON_Parse(VECTOR1_JSON);
		char *s;

		cJSON_DeleteItemFromObject(want, "seq");
		s = cJSON_PrintUnformatted(want);
		transform(&cfg, "spBv1.0/g/NDATA/n", v1, n1, s, 1671554024644);
		free(s);
		cJSON_Delete(want);
	}
	/* garbage: forwarded unchanged, counted */
	before = kg_bridge__undecodable();
	transform(&cfg, "spBv1.0/g/DDATA/n/d", garbage, sizeof garbage, NULL, 0);
	assert_int_equal(kg_bridge__undecodable(), before + 1);
	/* STATE is JSON, not protobuf: the JSON path (unchanged, timestamp read) */
	transform(&cfg, "spBv1.0/STATE/host", state_json, sizeof state_json - 1, NULL, 1700000000000);
	assert_int_equal(kg_bridge__undecodable(), before + 1);
	/* a topic that is not Sparkplug: protobuf bytes are just non-JSON */
	transform(&cfg, "spBv1.0/g", v1, n1, NULL, 0);
	/* an empty payload is forwarded as is */
	transform(&cfg, "spBv1.0/g/NDEATH/n", v1, 0, NULL, 0);
	assert_int_equal(kg_bridge__undecodable(), before + 1);
	kg_config__free(&cfg);

	/* raw: bytes forwarded, nothing counted */
	config(&cfg, raw_kv);
	transform(&cfg, "spBv1.0/g/NBIRTH/n", v1, n1, NULL, 0);
	transform(&cfg, "spBv1.0/g/DDATA/n/d", garbage, sizeof garbage, NULL, 0);
	assert_int_equal(kg_bridge__undecodable(), before + 1);
	kg_config__free(&cfg);

	/* another timestamp_attribute: the payload timestamp is the fallback on Sparkplug topics */
	config(&cfg, ts_kv);
	transform(&cfg, "spBv1.0/g/NBIRTH/n", v1, n1, VECTOR1_JSON, 1671554024644);
	kg_config__free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_limit),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_signed_scalars),
		cmocka_unit_test(test_unsigned_scalars),
		cmocka_unit_test(test_float_bool_string),
		cmocka_unit_test(test_bytes_and_file),
		cmocka_unit_test(test_flags_nulls_absent),
		cmocka_unit_test(test_arrays),
		cmocka_unit_test(test_malformed_arrays),
		cmocka_unit_test(test_dataset),
		cmocka_unit_test(test_template),
		cmocka_unit_test(test_property_sets),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_alloc_limit),
		cmocka_unit_test(test_is_topic),
		cmocka_unit_test(test_bridge_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
