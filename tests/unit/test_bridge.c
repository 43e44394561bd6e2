/* test_bridge.c -- unit tests for plugin/bridge/bridge.c: MQTT filter matching, Kafka topic naming, JSON attribute filtering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/bridge.h"
#include "kitgate/topic.h"
#include "kitgate/config.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

struct match_case {
	const char *filter, *topic;
	int want;
};

static void test_matches(void **state)
{
	static const struct match_case cases[] = {
		/* exact */
		{"a/b/c", "a/b/c", 1},
		{"a/b/c", "a/b/d", 0},
		{"a/b", "a/b/c", 0},
		{"a/b/c", "a/b", 0},
		{"a/b", "a/bc", 0},
		{"ab", "a", 0},
		{"A/b", "a/b", 0},
		/* '+' */
		{"a/+/c", "a/b/c", 1},
		{"a/+/c", "a/b/d", 0},
		{"a/+", "a/b", 1},
		{"a/+", "a/b/c", 0},
		{"a/+", "a", 0},
		{"+", "a", 1},
		{"+", "a/b", 0},
		{"+/+", "a/b", 1},
		{"+/b", "/b", 1},
		/* '+' matches an empty level */
		{"a/+", "a/", 1},
		{"a/+/c", "a//c", 1},
		{"+/+", "/", 1},
		{"+", "/", 0},
		/* empty levels matched literally */
		{"a//c", "a//c", 1},
		{"a//c", "a/b/c", 0},
		{"/a", "/a", 1},
		{"/a", "a", 0},
		{"a/", "a/", 1},
		{"a/", "a", 0},
		/* '#' */
		{"#", "a", 1},
		{"#", "a/b/c", 1},
		{"#", "/", 1},
		{"a/#", "a", 1},          /* parent level */
		{"a/#", "a/b", 1},
		{"a/#", "a/b/c", 1},
		{"a/#", "a/", 1},
		{"a/#", "ab", 0},
		{"a/#", "b/a", 0},
		{"a/b/#", "a", 0},
		{"a/+/#", "a/b", 1},
		{"a/+/#", "a", 0},
		{"factory/#", "factory/line1/temp", 1},
		{"factory/#", "factoryx/line1", 0},
		/* $-topics */
		{"#", "$SYS/broker/load", 0},
		{"+/broker/load", "$SYS/broker/load", 0},
		{"+", "$SYS", 0},
		{"$SYS/#", "$SYS/broker/load", 1},
		{"$SYS/+/load", "$SYS/broker/load", 1},
		{"$SYS", "$SYS", 1},
		{"a/#", "a/$SYS", 1},     /* '$' only matters at the first level */
		{"a/+", "a/$x", 1},
	};
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		int got = kg_topic__matches(cases[i].filter, cases[i].topic);

		if(got != cases[i].want){
			fail_msg("filter \"%s\" topic \"%s\": got %d want %d", cases[i].filter, cases[i].topic,
					got, cases[i].want);
		}
	}
	assert_int_equal(kg_topic__matches(NULL, "a"), 0);
	assert_int_equal(kg_topic__matches("a", NULL), 0);
}

/* Parse a config from key/value pairs (NULL-terminated list); fails the test on error. */
static void config_from(struct kg_config *cfg, const char *const *kv)
{
	struct kg_opt opts[16];
	char err[256];
	int n = 0;

	while(kv[2 * n]){
		assert_true(n < N(opts));
		opts[n].key = (char *)kv[2 * n];
		opts[n].value = (char *)kv[2 * n + 1];
		n++;
	}
	if(kg_config__parse(cfg, opts, n, err, sizeof(err))) fail_msg("config: %s", err);
}

static void test_wanted(void **state)
{
	static const char *const kv[] = {
		"bridge_topics", "factory/#",
		"bridge_topics", "plant/+/status",
		NULL,
	};
	static const struct match_case cases[] = {
		{NULL, "factory", 1},
		{NULL, "factory/line1/temp", 1},
		{NULL, "plant/a/status", 1},
		{NULL, "plant/a/status/x", 0},
		{NULL, "office/temp", 0},
		{NULL, "$SYS/factory", 0},
	};
	struct kg_config cfg, none;
	static const char *const nokv[] = {NULL};
	int i;

	(void)state;
	config_from(&cfg, kv);
	config_from(&none, nokv);
	for(i = 0; i < N(cases); i++){
		if(kg_bridge__wanted(&cfg, cases[i].topic) != cases[i].want){
			fail_msg("topic \"%s\": want %d", cases[i].topic, cases[i].want);
		}
		assert_int_equal(kg_bridge__wanted(&none, cases[i].topic), 0);
	}
	assert_int_equal(kg_bridge__wanted(NULL, "factory"), 0);
	kg_config__free(&cfg);
	kg_config__free(&none);
}

struct name_case {
	const char *topic, *sep, *want; /* want NULL = refused */
};

static void test_kafka_topic(void **state)
{
	static const struct name_case cases[] = {
		{"factory/line1/temp", "_", "factory_line1_temp"},
		{"factory/line1/temp", ".", "factory.line1.temp"},
		{"factory/line1/temp", "-", "factory-line1-temp"},
		{"factory/line1/temp", NULL, "factory_line1_temp"},
		{"factory/line1/temp", "", "factory_line1_temp"},
		{"a/b", "/", "a_b"},                 /* an illegal separator is sanitised too */
		{"plain", "_", "plain"},
		{"A-Z.a_z09", "_", "A-Z.a_z09"},     /* legal characters kept */
		{"/a/", "_", "_a_"},
		{"a b+c#d$e", "_", "a_b_c_d_e"},
		{"temp\xc3\xa9rature", "_", "temp_rature"},   /* one '_' per UTF-8 character */
		{"\xe6\xb8\xa9\xe5\xba\xa6/x", "_", "___x"},
		{"\xf0\x9f\x8c\xb1", "_", "_"},
		/* collisions: different MQTT topics, one Kafka topic (documented behaviour) */
		{"a/b", "_", "a_b"},
		{"a_b", "_", "a_b"},
		{"a+b", "_", "a_b"},
		/* refused */
		{"", "_", NULL},
		{".", "_", NULL},
		{"..", "_", NULL},
	};
	char out[250];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		int n = kg_bridge__kafka_topic(cases[i].topic, cases[i].sep, out);

		if(!cases[i].want){
			if(n != -1) fail_msg("topic \"%s\": want refused, got %d \"%s\"", cases[i].topic, n, out);
			continue;
		}
		if(n != (int)strlen(cases[i].want) || strcmp(out, cases[i].want)){
			fail_msg("topic \"%s\" sep \"%s\": got %d \"%s\" want \"%s\"", cases[i].topic,
					cases[i].sep ? cases[i].sep : "(null)", n, n >= 0 ? out : "", cases[i].want);
		}
	}
	assert_int_equal(kg_bridge__kafka_topic(NULL, "_", out), -1);
}

static void test_kafka_topic_length(void **state)
{
	char topic[600], want[600], out[250];
	int len;

	(void)state;
	for(len = 240; len <= 260; len++){
		int n;

		memset(topic, 'x', (size_t)len);
		topic[len] = '\0';
		topic[len / 2] = '/';
		memcpy(want, topic, (size_t)len + 1);
		want[len / 2] = '_';
		n = kg_bridge__kafka_topic(topic, "_", out);
		if(len <= 249){
			assert_int_equal(n, len);
			assert_string_equal(out, want);
		}else{
			assert_int_equal(n, -1);
		}
	}
	/* 249 two-byte characters are 249 Kafka characters: accepted; 250 are not */
	for(len = 0; len < 249; len++) memcpy(topic + 2 * len, "\xc3\xa9", 2);
	topic[2 * 249] = '\0';
	assert_int_equal(kg_bridge__kafka_topic(topic, "_", out), 249);
	memcpy(topic + 2 * 249, "\xc3\xa9", 3);
	assert_int_equal(kg_bridge__kafka_topic(topic, "_", out), -1);
	/* a multi-character separator counts in the length */
	memset(topic, 'y', 248);
	topic[124] = '/';
	topic[248] = '\0';
	assert_int_equal(kg_bridge__kafka_topic(topic, "__", out), 249);
	topic[247] = '\0';
	assert_int_equal(kg_bridge__kafka_topic(topic, "__", out), 248);
	memset(topic, 'y', 249);
	topic[124] = '/';
	topic[249] = '\0';
	assert_int_equal(kg_bridge__kafka_topic(topic, "__", out), -1);
}

struct transform_case {
	const char *name;
	const char *topic;
	const char *payload;   /* NULL: empty payload */
	const char *want;      /* NULL: the payload, unchanged and not copied */
	int64_t want_ts;
};

/* The configuration every transform case runs against. */
static const char *const transform_kv[] = {
	"bridge_topics", "#",
	"ignored_attributes", "factory/#=meta.debug,secret",
	"ignored_attributes", "factory/+/temp=a.b.c, unit",
	"ignored_attributes", "other/#=x",
	"ignored_attributes", "factory/line1/temp=secret,list.x",
	"timestamp_attribute", "ts",
	NULL,
};

static void run_transform_cases(const struct transform_case *cases, int n, const char *const *kv)
{
	struct kg_config cfg;
	int i;

	config_from(&cfg, kv);
	for(i = 0; i < n; i++){
		const struct transform_case *c = &cases[i];
		const uint8_t *payload = (const uint8_t *)c->payload;
		size_t len = c->payload ? strlen(c->payload) : 0;
		const uint8_t *value = (const uint8_t *)"sentinel";
		size_t vlen = 12345;
		int owned = -1;
		int64_t ts = -7;

		if(kg_bridge__transform(&cfg, c->topic, payload, len, &value, &vlen, &owned, &ts)){
			fail_msg("%s: returned -1", c->name);
		}
		if(ts != c->want_ts) fail_msg("%s: timestamp %lld want %lld", c->name, (long long)ts, (long long)c->want_ts);
		if(!c->want){
			if(owned != 0 || value != payload || vlen != len){
				fail_msg("%s: payload not returned unchanged (owned %d)", c->name, owned);
			}
			continue;
		}
		if(owned != 1) fail_msg("%s: expected a new buffer", c->name);
		if(vlen != strlen(c->want) || memcmp(value, c->want, vlen)){
			fail_msg("%s: got \"%.*s\" want \"%s\"", c->name, (int)vlen, (const char *)value, c->want);
		}
		free((void *)value);
	}
	kg_config__free(&cfg);
}

static void test_transform(void **state)
{
	static const struct transform_case cases[] = {
		{"top-level and nested removed", "factory/line2/x",
			"{\"v\":1,\"secret\":\"s\",\"meta\":{\"debug\":true,\"keep\":2}}",
			"{\"v\":1,\"meta\":{\"keep\":2}}", 0},
		{"removed whatever the value type", "factory/line2/x",
			"{\"secret\":[1,2],\"meta\":{\"debug\":{\"deep\":null}},\"v\":\"x\"}",
			"{\"meta\":{},\"v\":\"x\"}", 0},
		{"duplicate keys all removed", "factory/a", "{\"secret\":1,\"v\":2,\"secret\":3}", "{\"v\":2}", 0},
		{"missing paths: unchanged", "factory/line2/x",
			"{ \"v\" : 1, \"meta\" : { \"keep\" : 2 } }", NULL, 0},
		{"path through a non-object stops", "factory/line2/x",
			"{\"meta\":\"debug\",\"v\":1}", NULL, 0},
		{"path through an array stops", "factory/line2/x",
			"{\"meta\":[{\"debug\":1}],\"v\":1}", NULL, 0},
		{"path through null stops", "factory/line2/x", "{\"meta\":null}", NULL, 0},
		{"deep path removed", "factory/l/temp",
			"{\"a\":{\"b\":{\"c\":1,\"d\":2}},\"unit\":\"C\",\"t\":20.5}",
			"{\"a\":{\"b\":{\"d\":2}},\"t\":20.5}", 0},
		{"deep path, intermediate missing", "factory/l/temp", "{\"a\":{\"x\":{\"c\":1}},\"t\":1}", NULL, 0},
		{"deep path, last level only", "factory/l/temp", "{\"c\":1,\"b\":{\"c\":1}}", NULL, 0},
		{"keys are case-sensitive", "factory/x", "{\"Secret\":1,\"META\":{\"debug\":1}}", NULL, 0},
		{"dotted key not addressable", "factory/x", "{\"meta.debug\":1}", NULL, 0},
		{"several rules match", "factory/line1/temp",
			"{\"secret\":1,\"meta\":{\"debug\":1},\"a\":{\"b\":{\"c\":1}},\"unit\":\"C\",\"list\":{\"x\":1,\"y\":2},\"t\":1}",
			"{\"meta\":{},\"a\":{\"b\":{}},\"list\":{\"y\":2},\"t\":1}", 0},
		{"list.x through an array stops", "factory/line1/temp", "{\"list\":[{\"x\":1}],\"secret\":0}",
			"{\"list\":[{\"x\":1}]}", 0},
		{"rule of another topic not applied", "other/a", "{\"secret\":1,\"x\":2}", "{\"secret\":1}", 0},
		{"no rule matches: unchanged", "office/temp", "{\"secret\":1,\"meta\":{\"debug\":1}}", NULL, 0},
		/* non-objects are forwarded as they are */
		{"array", "factory/a", "[{\"secret\":1}]", NULL, 0},
		{"number", "factory/a", "42", NULL, 0},
		{"string", "factory/a", "\"secret\"", NULL, 0},
		{"null", "factory/a", "null", NULL, 0},
		{"invalid JSON", "factory/a", "{\"secret\":1,", NULL, 0},
		{"trailing garbage", "factory/a", "{\"secret\":1} x", NULL, 0},
		{"two objects", "factory/a", "{\"secret\":1}{}", NULL, 0},
		{"plain text", "factory/a", "21.5 C", NULL, 0},
		{"empty payload", "factory/a", NULL, NULL, 0},
		{"trailing whitespace is fine", "factory/a", "{\"secret\":1}\r\n ", "{}", 0},
		/* timestamp attribute */
		{"timestamp taken", "office/a", "{\"ts\":1700000000123,\"v\":1}", NULL, 1700000000123},
		{"timestamp and filtering", "factory/a", "{\"ts\":1700000000000,\"secret\":1}",
			"{\"ts\":1700000000000}", 1700000000000},
		{"timestamp zero", "office/a", "{\"ts\":0}", NULL, 0},
		{"timestamp missing", "office/a", "{\"time\":1700000000000}", NULL, 0},
		{"timestamp string", "office/a", "{\"ts\":\"1700000000000\"}", NULL, 0},
		{"timestamp negative", "office/a", "{\"ts\":-5}", NULL, 0},
		{"timestamp fractional", "office/a", "{\"ts\":1700000000000.5}", NULL, 0},
		{"timestamp exponent form", "office/a", "{\"ts\":1.7e12}", NULL, 1700000000000},
		{"timestamp huge", "office/a", "{\"ts\":1e300}", NULL, 0},
		{"timestamp nested only", "office/a", "{\"m\":{\"ts\":5}}", NULL, 0},
		{"timestamp bool", "office/a", "{\"ts\":true}", NULL, 0},
		{"timestamp in an array payload ignored", "office/a", "[{\"ts\":5}]", NULL, 0},
	};

	(void)state;
	run_transform_cases(cases, N(cases), transform_kv);
}

/* The default timestamp attribute is "timestamp"; byte-identical output also for payloads that
 * cJSON would re-format (spacing, number forms, unicode escapes). */
static void test_transform_defaults(void **state)
{
	static const char *const kv[] = {
		"bridge_topics", "#",
		"ignored_attributes", "#=gone",
		NULL,
	};
	static const struct transform_case cases[] = {
		{"default timestamp attribute", "a", "{\"timestamp\":42}", NULL, 42},
		{"ts is not the default", "a", "{\"ts\":42}", NULL, 0},
		{"odd formatting kept", "a", "{ \"v\" :1.50e1 ,\"s\":\"\\u00e9\" }", NULL, 0},
		{"$ topic not matched by a #-rule", "$SYS/x", "{\"gone\":1}", NULL, 0},
		{"removal re-serialises", "a", "{ \"v\" :15 ,\"gone\":1 }", "{\"v\":15}", 0},
	};

	(void)state;
	run_transform_cases(cases, N(cases), kv);
}

/* Payload not NUL-terminated: the parser must stop at len. */
static void test_transform_length_limited(void **state)
{
	static const char *const kv[] = {
		"ignored_attributes", "#=secret",
		NULL,
	};
	struct kg_config cfg;
	const char full[] = "{\"secret\":1,\"v\":2}{\"more\":3}";
	size_t len = strlen("{\"secret\":1,\"v\":2}");
	uint8_t *buf = malloc(len); /* exact size: ASan catches a read past len */
	const uint8_t *value;
	size_t vlen;
	int owned;
	int64_t ts;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, full, len);
	config_from(&cfg, kv);
	assert_int_equal(kg_bridge__transform(&cfg, "t", buf, len, &value, &vlen, &owned, &ts), 0);
	assert_int_equal(owned, 1);
	assert_int_equal(vlen, strlen("{\"v\":2}"));
	assert_memory_equal(value, "{\"v\":2}", vlen);
	free((void *)value);
	/* a prefix that cuts the object: not JSON */
	assert_int_equal(kg_bridge__transform(&cfg, "t", buf, len - 1, &value, &vlen, &owned, &ts), 0);
	assert_int_equal(owned, 0);
	assert_ptr_equal(value, buf);
	assert_int_equal(vlen, len - 1);
	free(buf);
	kg_config__free(&cfg);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_wanted),
		cmocka_unit_test(test_kafka_topic),
		cmocka_unit_test(test_kafka_topic_length),
		cmocka_unit_test(test_transform),
		cmocka_unit_test(test_transform_defaults),
		cmocka_unit_test(test_transform_length_limited),
	};

	unsetenv("KITGATE_SINK");
	unsetenv("DATABASE_URL");
	unsetenv("LOG_LEVEL");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
