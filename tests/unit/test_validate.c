/* test_validate.c -- table-driven tests of kg_validate__measurement, reason names and strict UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kitgate/record.h"
#include "kitgate/utf8.h"
#include "kitgate/validate.h"

#define NOW 1700000000000LL
#define SKEW 86400000LL
#define SERIAL "k-abcd-efgh-jkmn"

#define ID "\"id\":\"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f\""
#define KS ",\"kitSerial\":\"" SERIAL "\""
#define DT ",\"datetime\":1700000000000"
#define PQ ",\"peripheral\":7,\"quantityType\":1"
#define VAL ",\"value\":21.5"
#define RAW_OK "{" ID KS DT PQ VAL "}"
#define TIMES ",\"datetimeStart\":1700000000000,\"datetimeEnd\":1700001800000"
#define VALS ",\"values\":{\"count\":30,\"average\":21.5,\"minimum\":20.0,\"maximum\":23.0}"
#define AGG_OK "{" ID KS TIMES PQ VALS "}"

#define A10 "aaaaaaaaaa"
#define A50 A10 A10 A10 A10 A10
#define E10 "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80" \
	"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80"
#define E50 E10 E10 E10 E10 E10
#define V4(a) "\"" a "1\":1,\"" a "2\":2,\"" a "3\":3,\"" a "4\":4"
#define V16 V4("a") "," V4("b") "," V4("c") "," V4("d")
#define B10 "[[[[[[[[[["
#define B100 B10 B10 B10 B10 B10 B10 B10 B10 B10 B10
#define C10 "]]]]]]]]]]"
#define C100 C10 C10 C10 C10 C10 C10 C10 C10 C10 C10
/* arrays inside the top-level object: 999 (1000 containers open in all) and 1000 */
#define DEEP999 B100 B100 B100 B100 B100 B100 B100 B100 B100 B10 B10 B10 B10 B10 B10 B10 B10 B10 "[[[[[[[[[" \
	C100 C100 C100 C100 C100 C100 C100 C100 C100 C10 C10 C10 C10 C10 C10 C10 C10 C10 "]]]]]]]]]"
#define DEEP1000 "[" DEEP999 "]"

enum { LIM_DEFAULT, LIM_EXACT, LIM_ONE_LESS };

struct vcase {
	const char *name;
	int kind;
	const char *payload;
	size_t len;          /* 0: strlen(payload) */
	int limit;           /* LIM_*: max_payload 16384, == len, == len - 1 */
	enum kg_reason want;
	const char *detail;  /* expected detail, NULL: not checked */
};

#define R KG_KIND_RAW
#define G KG_KIND_AGGREGATE

static const struct vcase cases[] = {
	/* accepted */
	{"raw ok", R, RAW_OK, 0, LIM_DEFAULT, KG_OK, ""},
	{"raw kitSerial absent", R, "{" ID DT PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw kitSerial empty", R, "{" ID ",\"kitSerial\":\"\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw uuid upper case", R, "{\"id\":\"9B2F3C1E-0A4B-4C5D-8E6F-7A8B9C0D1E2F\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw extra fields", R, "{" ID DT PQ VAL ",\"extra\":[1,{\"x\":null}],\"z\":\"y\"}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw whitespace", R, " \n{ " ID " , \"datetime\" : 1700000000000" PQ VAL " }\r\n\t ", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw fields reordered", R, "{\"value\":-3" PQ DT "," ID "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw datetime 0", R, "{" ID ",\"datetime\":0" PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw datetime exponent", R, "{" ID ",\"datetime\":1.7e12" PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw skew boundary", R, "{" ID ",\"datetime\":1700086400000" PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw peripheral int32 max", R, "{" ID DT ",\"peripheral\":2147483647,\"quantityType\":2147483647" VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw value tiny", R, "{" ID DT PQ ",\"value\":5e-324}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw value huge finite", R, "{" ID DT PQ ",\"value\":-1.7976931348623157e308}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"raw too_large boundary ok", R, RAW_OK, 0, LIM_EXACT, KG_OK, NULL},
	{"agg ok", G, AGG_OK, 0, LIM_DEFAULT, KG_OK, ""},
	{"agg kitSerial absent", G, "{" ID TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg kitSerial empty", G, "{" ID ",\"kitSerial\":\"\"" TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg start == end", G, "{" ID ",\"datetimeStart\":5,\"datetimeEnd\":5" PQ VALS "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg 1 value", G, "{" ID TIMES PQ ",\"values\":{\"x\":1}}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg 16 values", G, "{" ID TIMES PQ ",\"values\":{" V16 "}}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg 50-char ascii name", G, "{" ID TIMES PQ ",\"values\":{\"" A50 "\":1}}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg 50-char 4-byte name", G, "{" ID TIMES PQ ",\"values\":{\"" E50 "\":1}}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg escaped name", G, "{" ID TIMES PQ ",\"values\":{\"a\\\"b\\u00e9\":1}}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"agg end at skew", G, "{" ID ",\"datetimeStart\":1700086400000,\"datetimeEnd\":1700086400000" PQ VALS "}", 0, LIM_DEFAULT, KG_OK, NULL},

	/* too_large */
	{"raw too_large", R, RAW_OK, 0, LIM_ONE_LESS, KG_TOO_LARGE, "payload"},
	{"too_large before malformed", R, "not json at all", 0, LIM_ONE_LESS, KG_TOO_LARGE, "payload"},

	/* malformed */
	{"empty", R, "", 0, LIM_DEFAULT, KG_MALFORMED, "empty"},
	{"whitespace only", R, "  \n", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"not json", R, "hello", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	/* duplicate keys spelled differently, or whole members twice */
	{"raw duplicate via escape", R, "{" ID DT PQ VAL ",\"valu\\u0065\":2}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"agg values twice", G, "{" ID TIMES PQ VALS VALS "}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"truncated json", R, "{" ID ",\"datetime\":", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"unterminated string", R, "{\"id\":\"abc", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"array top level", R, "[" RAW_OK "]", 0, LIM_DEFAULT, KG_MALFORMED, "not an object"},
	{"string top level", R, "\"x\"", 0, LIM_DEFAULT, KG_MALFORMED, "not an object"},
	{"number top level", R, "42", 0, LIM_DEFAULT, KG_MALFORMED, "not an object"},
	{"null top level", G, "null", 0, LIM_DEFAULT, KG_MALFORMED, "not an object"},
	{"trailing garbage", R, RAW_OK "x", 0, LIM_DEFAULT, KG_MALFORMED, "trailing data"},
	{"two objects", R, RAW_OK RAW_OK, 0, LIM_DEFAULT, KG_MALFORMED, "trailing data"},
	{"trailing comma garbage", G, AGG_OK " ,", 0, LIM_DEFAULT, KG_MALFORMED, "trailing data"},
	{"NaN literal", R, "{" ID DT PQ ",\"value\":NaN}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"Infinity literal", R, "{" ID DT PQ ",\"value\":Infinity}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"-inf literal", R, "{" ID DT PQ ",\"value\":-inf}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"hex number", R, "{" ID DT PQ ",\"value\":0x10}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"utf8 bad continuation", R, "{" ID ",\"kitSerial\":\"\xC3\x28\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"utf8 overlong", R, "{" ID ",\"x\":\"\xC0\xAF\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"utf8 surrogate", R, "{" ID ",\"x\":\"\xED\xA0\x80\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"utf8 above 10FFFF", G, "{" ID ",\"x\":\"\xF4\x90\x80\x80\"" TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"utf8 truncated at end", R, RAW_OK "\xE2\x82", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"latin-1 byte", R, "{" ID ",\"x\":\"\xE9\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "utf8"},
	{"nul byte inside", R, "{" ID ",\"x\":\"a\0b\"" DT PQ VAL "}", sizeof("{" ID ",\"x\":\"a\0b\"" DT PQ VAL "}") - 1,
		LIM_DEFAULT, KG_MALFORMED, "nul byte"},
	{"nul after object", R, RAW_OK "\0", sizeof(RAW_OK), LIM_DEFAULT, KG_MALFORMED, "nul byte"},
	/* parser differentials (issue 9, found by tests/fuzz/fuzz_validate): duplicate names and NUL
	 * escapes, which cJSON reads differently from other parsers */
	{"duplicate value", R, "{" ID DT PQ VAL ",\"value\":22}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"duplicate id", R, "{" ID "," ID DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"duplicate kitSerial", R, "{" ID KS ",\"kitSerial\":\"k-other\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"duplicate peripheral", G, "{" ID TIMES PQ ",\"peripheral\":8" VALS "}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"duplicate unknown field", R, "{" ID DT PQ VAL ",\"x\":1,\"x\":1}", 0, LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"duplicate among 40 keys", R, "{" ID DT PQ VAL "," V16 "," V4("e") "," V4("f") "," V4("g") "," V4("h") ",\"a1\":0}", 0,
		LIM_DEFAULT, KG_MALFORMED, "duplicate key"},
	{"40 distinct keys", R, "{" ID DT PQ VAL "," V16 "," V4("e") "," V4("f") "," V4("g") "," V4("h") "}", 0,
		LIM_DEFAULT, KG_OK, NULL},
	{"duplicate aggregate value name", G, "{" ID TIMES PQ ",\"values\":{\"a\":1,\"b\":2,\"a\":3}}", 0, LIM_DEFAULT,
		KG_MALFORMED, "duplicate key"},
	{"escaped nul in kitSerial", R, "{" ID ",\"kitSerial\":\"" SERIAL "\\u0000x\"" DT PQ VAL "}", 0, LIM_DEFAULT,
		KG_MALFORMED, "nul byte"},
	{"escaped nul in value name", G, "{" ID TIMES PQ ",\"values\":{\"a\\u0000b\":1}}", 0, LIM_DEFAULT, KG_MALFORMED, "nul byte"},
	{"escaped backslash then u0000 text", R, "{" ID DT PQ VAL ",\"x\":\"\\\\u0000\"}", 0, LIM_DEFAULT, KG_OK, NULL},
	/* strict RFC 8259 (jscan): what cJSON let through is malformed json */
	{"byte order mark", R, "\xEF\xBB\xBF" RAW_OK, 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"vertical tab as whitespace", R, "{" ID ",\v\"datetime\":1700000000000" PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"raw tab in a string", R, "{" ID ",\"x\":\"a\tb\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"leading zero", R, "{" ID DT ",\"peripheral\":07,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"empty fraction", R, "{" ID DT PQ ",\"value\":21.}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"no integer digits", R, "{" ID DT PQ ",\"value\":-.5}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	/* cJSON read a bad \u escape as NUL and ended the string there: the kitSerial matched */
	{"bad escape in kitSerial", R, "{" ID ",\"kitSerial\":\"" SERIAL "\\u12G4x\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"lone surrogate", R, "{" ID DT PQ VAL ",\"x\":\"\\uDC00\"}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"nested 1001 deep", R, "{" ID DT PQ VAL ",\"x\":" DEEP1000 "}", 0, LIM_DEFAULT, KG_MALFORMED, "json"},
	{"nested 1000 deep", R, "{" ID DT PQ VAL ",\"x\":" DEEP999 "}", 0, LIM_DEFAULT, KG_OK, NULL},
	/* escapes in names and values are read like plain text */
	{"escaped field names", R, "{\"i\\u0064\":\"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f\",\"kit\\u0053erial\":\"k-abcd\\u002defgh-jkmn\"" DT PQ
		",\"valu\\u0065\":1}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"escaped uuid", R, "{\"id\":\"\\u0039b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"25-digit value", R, "{" ID DT PQ ",\"value\":1234567890123456789012345}", 0, LIM_DEFAULT, KG_OK, NULL},
	{"datetime with fraction zeros", R, "{" ID ",\"datetime\":1700000000000.000000000000000000000" PQ VAL "}", 0, LIM_DEFAULT, KG_OK, NULL},

	/* missing_field */
	{"empty object", R, "{}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "id"},
	{"raw no id", R, "{\"kitSerial\":\"" SERIAL "\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "id"},
	{"raw no datetime", R, "{" ID PQ VAL "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "datetime"},
	{"raw no peripheral", R, "{" ID DT ",\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "peripheral"},
	{"raw no quantityType", R, "{" ID DT ",\"peripheral\":7" VAL "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "quantityType"},
	{"raw no value", R, "{" ID DT PQ "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "value"},
	{"raw field name case", R, "{" ID DT PQ ",\"Value\":1}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "value"},
	{"raw sent as aggregate", G, RAW_OK, 0, LIM_DEFAULT, KG_MISSING_FIELD, "datetimeStart"},
	{"agg no datetimeEnd", G, "{" ID ",\"datetimeStart\":1" PQ VALS "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "datetimeEnd"},
	{"agg no values", G, "{" ID TIMES PQ "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "values"},
	{"agg no peripheral", G, "{" ID TIMES ",\"quantityType\":1" VALS "}", 0, LIM_DEFAULT, KG_MISSING_FIELD, "peripheral"},

	/* bad_type */
	{"id number", R, "{\"id\":123" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id null", R, "{\"id\":null" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id short", R, "{\"id\":\"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id long", R, "{\"id\":\"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2f0\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id no dashes", R, "{\"id\":\"9b2f3c1e0a4b4c5d8e6f7a8b9c0d1e2f\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id dash misplaced", R, "{\"id\":\"9b2f3c1-e0a4b-4c5d-8e6f-7a8b9c0d1e2f\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id non-hex", R, "{\"id\":\"9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e2g\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id braces", R, "{\"id\":\"{9b2f3c1e-0a4b-4c5d-8e6f-7a8b9c0d1e}\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"id empty", G, "{\"id\":\"\"" TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "id"},
	{"kitSerial number", R, "{" ID ",\"kitSerial\":1" DT PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "kitSerial"},
	{"kitSerial null", G, "{" ID ",\"kitSerial\":null" TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "kitSerial"},
	{"datetime string", R, "{" ID ",\"datetime\":\"1700000000000\"" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "datetime"},
	{"datetimeStart bool", G, "{" ID ",\"datetimeStart\":true,\"datetimeEnd\":1" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "datetimeStart"},
	{"peripheral 0", R, "{" ID DT ",\"peripheral\":0,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"peripheral negative", R, "{" ID DT ",\"peripheral\":-7,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"peripheral fraction", R, "{" ID DT ",\"peripheral\":7.5,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"peripheral over int32", R, "{" ID DT ",\"peripheral\":2147483648,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"peripheral string", R, "{" ID DT ",\"peripheral\":\"7\",\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"peripheral inf", R, "{" ID DT ",\"peripheral\":1e999,\"quantityType\":1" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "peripheral"},
	{"quantityType 0", G, "{" ID TIMES ",\"peripheral\":7,\"quantityType\":0" VALS "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "quantityType"},
	{"quantityType array", R, "{" ID DT ",\"peripheral\":7,\"quantityType\":[1]" VAL "}", 0, LIM_DEFAULT, KG_BAD_TYPE, "quantityType"},
	{"value string", R, "{" ID DT PQ ",\"value\":\"21.5\"}", 0, LIM_DEFAULT, KG_BAD_TYPE, "value"},
	{"value string NaN", R, "{" ID DT PQ ",\"value\":\"NaN\"}", 0, LIM_DEFAULT, KG_BAD_TYPE, "value"},
	{"value null", R, "{" ID DT PQ ",\"value\":null}", 0, LIM_DEFAULT, KG_BAD_TYPE, "value"},
	{"value bool", R, "{" ID DT PQ ",\"value\":true}", 0, LIM_DEFAULT, KG_BAD_TYPE, "value"},
	{"values array", G, "{" ID TIMES PQ ",\"values\":[1,2]}", 0, LIM_DEFAULT, KG_BAD_TYPE, "values"},
	{"values number", G, "{" ID TIMES PQ ",\"values\":3}", 0, LIM_DEFAULT, KG_BAD_TYPE, "values"},
	{"values null", G, "{" ID TIMES PQ ",\"values\":null}", 0, LIM_DEFAULT, KG_BAD_TYPE, "values"},

	/* serial_mismatch */
	{"raw kitSerial other", R, "{" ID ",\"kitSerial\":\"k-other-serial\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_SERIAL_MISMATCH, "kitSerial"},
	{"raw kitSerial prefix", R, "{" ID ",\"kitSerial\":\"k-abcd-efgh-jkm\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_SERIAL_MISMATCH, "kitSerial"},
	{"raw kitSerial longer", R, "{" ID ",\"kitSerial\":\"" SERIAL "x\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_SERIAL_MISMATCH, "kitSerial"},
	{"raw kitSerial case", R, "{" ID ",\"kitSerial\":\"K-ABCD-EFGH-JKMN\"" DT PQ VAL "}", 0, LIM_DEFAULT, KG_SERIAL_MISMATCH, "kitSerial"},
	{"agg kitSerial other", G, "{" ID ",\"kitSerial\":\" \"" TIMES PQ VALS "}", 0, LIM_DEFAULT, KG_SERIAL_MISMATCH, "kitSerial"},

	/* bad_time */
	{"datetime negative", R, "{" ID ",\"datetime\":-1" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetime"},
	{"datetime fraction", R, "{" ID ",\"datetime\":1700000000000.5" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetime"},
	{"datetime skew + 1", R, "{" ID ",\"datetime\":1700086400001" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetime"},
	{"datetime beyond 2^53", R, "{" ID ",\"datetime\":1e300" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetime"},
	{"datetime inf", R, "{" ID ",\"datetime\":1e999" PQ VAL "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetime"},
	{"agg end < start", G, "{" ID ",\"datetimeStart\":1700001800000,\"datetimeEnd\":1700000000000" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetimeEnd"},
	{"agg end = start - 1", G, "{" ID ",\"datetimeStart\":1700000000000,\"datetimeEnd\":1699999999999" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetimeEnd"},
	{"agg start negative", G, "{" ID ",\"datetimeStart\":-5,\"datetimeEnd\":1" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetimeStart"},
	{"agg end skew + 1", G, "{" ID ",\"datetimeStart\":1,\"datetimeEnd\":1700086400001" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetimeEnd"},
	{"agg end fraction", G, "{" ID ",\"datetimeStart\":1,\"datetimeEnd\":2.25" PQ VALS "}", 0, LIM_DEFAULT, KG_BAD_TIME, "datetimeEnd"},

	/* bad_value */
	{"value 1e999", R, "{" ID DT PQ ",\"value\":1e999}", 0, LIM_DEFAULT, KG_BAD_VALUE, "value"},
	{"value -1e999", R, "{" ID DT PQ ",\"value\":-1e999}", 0, LIM_DEFAULT, KG_BAD_VALUE, "value"},
	{"values empty", G, "{" ID TIMES PQ ",\"values\":{}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values 17", G, "{" ID TIMES PQ ",\"values\":{" V16 ",\"e1\":1}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values 51-char name", G, "{" ID TIMES PQ ",\"values\":{\"" A50 "a\":1}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values 51-char 4-byte name", G, "{" ID TIMES PQ ",\"values\":{\"" E50 "\xC3\xA9\":1}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values empty name", G, "{" ID TIMES PQ ",\"values\":{\"\":1}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values string", G, "{" ID TIMES PQ ",\"values\":{\"count\":\"30\"}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values null entry", G, "{" ID TIMES PQ ",\"values\":{\"count\":null}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values nested", G, "{" ID TIMES PQ ",\"values\":{\"count\":{\"a\":1}}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
	{"values inf", G, "{" ID TIMES PQ ",\"values\":{\"count\":1,\"average\":-1e999}}", 0, LIM_DEFAULT, KG_BAD_VALUE, "values"},
};

static const struct kg_limits default_limits = {16384, SKEW};

/* Runs one case with the payload in a heap block of exactly its length (no NUL after it), so
 * ASan catches any read past len. */
static enum kg_reason run_case(const struct vcase *tc, struct kg_record *rec, const char **detail)
{
	size_t len = tc->len ? tc->len : strlen(tc->payload);
	struct kg_limits lim = default_limits;
	char *copy = malloc(len ? len : 1);
	enum kg_reason r;

	assert_non_null(copy);
	memcpy(copy, tc->payload, len);
	if(tc->limit == LIM_EXACT) lim.max_payload = len;
	if(tc->limit == LIM_ONE_LESS) lim.max_payload = len - 1;
	r = kg_validate__measurement(tc->kind, SERIAL, strlen(SERIAL), len ? copy : NULL, len, NOW, &lim, rec, detail);
	free(copy);
	return r;
}

static void test_table(void **state)
{
	(void)state;
	int failures = 0;
	int seen[KG_REASON_COUNT] = {0};

	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		const struct vcase *tc = &cases[i];
		struct kg_record rec;
		const char *detail = NULL;
		enum kg_reason r = run_case(tc, &rec, &detail);

		seen[tc->want]++;
		if(r != tc->want){
			print_error("case '%s': got %s (%s), want %s\n", tc->name, kg_reason__name(r),
					detail ? detail : "(null)", kg_reason__name(tc->want));
			failures++;
			continue;
		}
		if(!detail){
			print_error("case '%s': detail not set\n", tc->name);
			failures++;
		}else if(tc->detail && strcmp(detail, tc->detail) != 0){
			print_error("case '%s': detail '%s', want '%s'\n", tc->name, detail, tc->detail);
			failures++;
		}
		if(r == KG_OK){
			if(rec.kind != tc->kind || strcmp(rec.serial, SERIAL) != 0){
				print_error("case '%s': kind/serial not filled\n", tc->name);
				failures++;
			}
		}
	}
	assert_int_equal(failures, 0);
	/* every reason the validator can return is covered by the table */
	for(int r = KG_OK; r < KG_REASON_COUNT; r++){
		if(r == KG_OVERLOAD || r >= KG_FOREIGN_PERIPHERAL) continue;  /* set by the plugin / the snapshot */
		if(!seen[r]) print_error("no case for %s\n", kg_reason__name((enum kg_reason)r));
		assert_true(seen[r] > 0);
	}
}

/* Many distinct keys are fine and cheap (sorted, not compared pairwise); one duplicate among them
 * is found wherever it is. */
static void test_duplicates_many_keys(void **state)
{
	(void)state;
	enum { NKEYS = 2000 };
	size_t cap = NKEYS * 16 + 256, n;
	char *buf = malloc(cap);
	struct kg_limits lim = {cap, SKEW};
	struct kg_record rec;
	const char *detail;

	assert_non_null(buf);
	n = (size_t)snprintf(buf, cap, "{" ID DT PQ VAL);
	for(int i = 0; i < NKEYS; i++) n += (size_t)snprintf(buf + n, cap - n, ",\"k%d\":%d", i, i);
	snprintf(buf + n, cap - n, "}");
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), buf, strlen(buf), NOW,
			&lim, &rec, &detail), KG_OK);
	n = (size_t)snprintf(buf, cap, "{" ID DT PQ VAL);
	for(int i = 0; i < NKEYS; i++) n += (size_t)snprintf(buf + n, cap - n, ",\"k%d\":%d", i == NKEYS - 1 ? 7 : i, i);
	snprintf(buf + n, cap - n, "}");
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), buf, strlen(buf), NOW,
			&lim, &rec, &detail), KG_MALFORMED);
	assert_string_equal(detail, "duplicate key");
	free(buf);
}

static void test_null_detail_ok(void **state)
{
	(void)state;
	struct kg_record rec;
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), "{}", 2, NOW,
			&default_limits, &rec, NULL), KG_MISSING_FIELD);
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), RAW_OK, strlen(RAW_OK), NOW,
			&default_limits, &rec, NULL), KG_OK);
}

static void test_raw_fields(void **state)
{
	(void)state;
	static const uint8_t want_id[16] = {0x9b, 0x2f, 0x3c, 0x1e, 0x0a, 0x4b, 0x4c, 0x5d,
		0x8e, 0x6f, 0x7a, 0x8b, 0x9c, 0x0d, 0x1e, 0x2f};
	const char *p = "{\"id\":\"9B2F3C1E-0A4B-4C5D-8E6F-7A8B9C0D1E2F\",\"kitSerial\":\"\",\"datetime\":1699999999999,"
		"\"peripheral\":2147483647,\"quantityType\":3,\"value\":-0.125}";
	struct kg_record rec;
	const char *detail = NULL;

	memset(&rec, 0xAA, sizeof(rec));
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), p, strlen(p), NOW,
			&default_limits, &rec, &detail), KG_OK);
	assert_int_equal(rec.kind, KG_KIND_RAW);
	assert_memory_equal(rec.id, want_id, 16);
	assert_string_equal(rec.serial, SERIAL);
	assert_int_equal(rec.datetime_ms, 1699999999999LL);
	assert_int_equal(rec.peripheral, 2147483647);
	assert_int_equal(rec.quantity_type, 3);
	assert_true(rec.value == -0.125);
	assert_null(rec.topic);
	assert_int_equal(rec.payload_len, 0);
}

static void test_agg_fields(void **state)
{
	(void)state;
	const char *p = AGG_OK;
	struct kg_record rec;
	static const char *const names[] = {"count", "average", "minimum", "maximum"};
	static const double vals[] = {30, 21.5, 20.0, 23.0};

	assert_int_equal(kg_validate__measurement(KG_KIND_AGGREGATE, SERIAL, strlen(SERIAL), p, strlen(p), NOW,
			&default_limits, &rec, NULL), KG_OK);
	assert_int_equal(rec.kind, KG_KIND_AGGREGATE);
	assert_int_equal(rec.start_ms, 1700000000000LL);
	assert_int_equal(rec.end_ms, 1700001800000LL);
	assert_int_equal(rec.peripheral, 7);
	assert_int_equal(rec.quantity_type, 1);
	assert_int_equal(rec.nvalues, 4);
	for(int i = 0; i < 4; i++){
		assert_string_equal(rec.values[i].name, names[i]);
		assert_true(rec.values[i].value == vals[i]);
	}

	/* 50 four-byte characters fill the name buffer exactly */
	p = "{" ID TIMES PQ ",\"values\":{\"" E50 "\":1.5,\"\\u00e9\\n\":2}}";
	assert_int_equal(kg_validate__measurement(KG_KIND_AGGREGATE, SERIAL, strlen(SERIAL), p, strlen(p), NOW,
			&default_limits, &rec, NULL), KG_OK);
	assert_int_equal(rec.nvalues, 2);
	assert_string_equal(rec.values[0].name, E50);
	assert_int_equal(strlen(rec.values[0].name), 200);
	assert_string_equal(rec.values[1].name, "\xC3\xA9\n");
	assert_true(rec.values[1].value == 2);
}

/* The payload sits in a larger buffer followed by bytes that would break it if read. */
static void test_not_nul_terminated(void **state)
{
	(void)state;
	static const char *const tails[] = {"garbage", "}", " ,\"x\":1}", "\xFF\xFE", "\0"};
	struct kg_record rec;
	const char *detail = NULL;

	for(size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++){
		char buf[512];
		size_t n = strlen(RAW_OK), tl = strlen(tails[t]) + 1;
		memcpy(buf, RAW_OK, n);
		memcpy(buf + n, tails[t], tl);
		assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), buf, n, NOW,
				&default_limits, &rec, &detail), KG_OK);
		assert_int_equal(rec.datetime_ms, 1700000000000LL);
		/* one byte short is a cut-off object */
		assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL, strlen(SERIAL), buf, n - 1, NOW,
				&default_limits, &rec, &detail), KG_MALFORMED);
	}

	/* the topic serial is a view too: "k-abcd-efgh-jkmnXYZ" with length 16 */
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, SERIAL "XYZ", strlen(SERIAL), RAW_OK, strlen(RAW_OK),
			NOW, &default_limits, &rec, &detail), KG_OK);
	assert_string_equal(rec.serial, SERIAL);
}

/* Every prefix of valid payloads is rejected, and never reads past its length (ASan). */
static void test_all_prefixes(void **state)
{
	(void)state;
	static const char *const full[] = {RAW_OK, AGG_OK};
	static const int kinds[] = {KG_KIND_RAW, KG_KIND_AGGREGATE};

	for(int k = 0; k < 2; k++){
		size_t n = strlen(full[k]);
		for(size_t len = 0; len < n; len++){
			char *copy = malloc(len + 1);
			struct kg_record rec;
			assert_non_null(copy);
			memcpy(copy, full[k], len);
			assert_int_equal(kg_validate__measurement(kinds[k], SERIAL, strlen(SERIAL), copy, len, NOW,
					&default_limits, &rec, NULL), KG_MALFORMED);
			free(copy);
		}
	}
}

static void test_topic_serial(void **state)
{
	(void)state;
	char longs[KG_SERIAL_MAX + 2];
	struct kg_record rec;
	const char *detail = NULL;
	const char *p = "{" ID DT PQ VAL "}";

	memset(longs, 's', sizeof(longs));
	/* exactly KG_SERIAL_MAX bytes: accepted and stored */
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, longs, KG_SERIAL_MAX, p, strlen(p), NOW,
			&default_limits, &rec, &detail), KG_OK);
	assert_int_equal(strlen(rec.serial), KG_SERIAL_MAX);
	/* one more: malformed */
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, longs, KG_SERIAL_MAX + 1, p, strlen(p), NOW,
			&default_limits, &rec, &detail), KG_MALFORMED);
	assert_string_equal(detail, "serial too long");
	assert_int_equal(kg_validate__measurement(KG_KIND_RAW, "", 0, p, strlen(p), NOW,
			&default_limits, &rec, &detail), KG_MALFORMED);
}

static void test_reason_names(void **state)
{
	(void)state;
	static const char *const want[] = {"ok", "too_large", "malformed", "missing_field", "bad_type",
		"serial_mismatch", "bad_time", "bad_value", "overload",
		"foreign_peripheral", "unknown_peripheral", "unknown_quantity_type", "rate_limited"};
	assert_int_equal(sizeof(want) / sizeof(want[0]), KG_REASON_COUNT);
	for(int r = 0; r < KG_REASON_COUNT; r++){
		assert_string_equal(kg_reason__name((enum kg_reason)r), want[r]);
	}
	assert_string_equal(kg_reason__name(KG_REASON_COUNT), "unknown");
	assert_string_equal(kg_reason__name((enum kg_reason)-1), "unknown");
}

struct ucase {
	const char *s;
	size_t len;
	int valid;
};

static void test_utf8(void **state)
{
	(void)state;
	static const struct ucase u[] = {
		{"", 0, 1},
		{"plain ascii", 11, 1},
		{"\0", 1, 1},
		{"\xC2\x80", 2, 1},                 /* U+0080 */
		{"\xDF\xBF", 2, 1},                 /* U+07FF */
		{"\xE0\xA0\x80", 3, 1},             /* U+0800 */
		{"\xED\x9F\xBF", 3, 1},             /* U+D7FF */
		{"\xEE\x80\x80", 3, 1},             /* U+E000 */
		{"\xEF\xBF\xBF", 3, 1},             /* U+FFFF */
		{"\xF0\x90\x80\x80", 4, 1},         /* U+10000 */
		{"\xF4\x8F\xBF\xBF", 4, 1},         /* U+10FFFF */
		{"\x80", 1, 0},                     /* lone continuation */
		{"\xBF", 1, 0},
		{"\xC0\x80", 2, 0},                 /* overlong NUL */
		{"\xC1\xBF", 2, 0},                 /* overlong */
		{"\xE0\x9F\xBF", 3, 0},             /* overlong 3-byte */
		{"\xF0\x8F\xBF\xBF", 4, 0},         /* overlong 4-byte */
		{"\xED\xA0\x80", 3, 0},             /* U+D800 */
		{"\xED\xBF\xBF", 3, 0},             /* U+DFFF */
		{"\xF4\x90\x80\x80", 4, 0},         /* U+110000 */
		{"\xF5\x80\x80\x80", 4, 0},
		{"\xFF", 1, 0},
		{"\xC3", 1, 0},                     /* truncated */
		{"\xE2\x82", 2, 0},
		{"\xF0\x9F\x98", 3, 0},
		{"\xC3\x28", 2, 0},                 /* bad continuation */
		{"\xE2\x28\xA1", 3, 0},
		{"\xE2\x82\x28", 3, 0},
		{"\xF0\x9F\x28\x80", 4, 0},
		{"\xF0\x9F\x98\x28", 4, 0},
		{"ok\xC3\xA9ok\xE2\x82\xAC", 10, 1},
	};
	for(size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++){
		uint8_t *copy = malloc(u[i].len ? u[i].len : 1);
		assert_non_null(copy);
		memcpy(copy, u[i].s, u[i].len);
		if(kg_utf8__valid(copy, u[i].len) != u[i].valid){
			print_error("utf8 case %zu: want %d\n", i, u[i].valid);
			fail();
		}
		free(copy);
	}
	assert_int_equal(kg_utf8__valid(NULL, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_null_detail_ok),
		cmocka_unit_test(test_duplicates_many_keys),
		cmocka_unit_test(test_raw_fields),
		cmocka_unit_test(test_agg_fields),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_all_prefixes),
		cmocka_unit_test(test_topic_serial),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
