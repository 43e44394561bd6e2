/* test_acl.c -- unit tests for plugin/ingest/topic.c: topic classification, the access matrix, usernames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/access.h"
#include "kitgate/topic.h"

#define R KG_ACCESS_READ
#define W KG_ACCESS_WRITE
#define S KG_ACCESS_SUBSCRIBE
#define U KG_ACCESS_UNSUBSCRIBE
#define ALLOW KG_ACL_ALLOW
#define DENY KG_ACL_DENY
#define DEFER KG_ACL_DEFER
#define ODEFER KG_OTHER_DEFER
#define OALLOW KG_OTHER_ALLOW
#define ODENY KG_OTHER_DENY

struct acl_case {
	const char *user;
	bool service;
	int access;
	const char *topic;
	enum kg_other_topics other;
	enum kg_acl_result want;
};

static const struct acl_case acl_cases[] = {
	/* kit, own topics */
	{"k-1", false, R, "kit/k-1/measurement/raw", ODEFER, ALLOW},
	{"k-1", false, W, "kit/k-1/measurement/raw", ODEFER, ALLOW},
	{"k-1", false, W, "kit/k-1/measurement/aggregate", ODENY, ALLOW},
	{"k-1", false, W, "kit/k-1", ODEFER, ALLOW},
	{"k-1", false, W, "kit/k-1/", ODEFER, ALLOW},
	{"k-1", false, R, "kit/k-1/config/x/y", ODENY, ALLOW},
	{"k-1", false, S, "kit/k-1/#", ODENY, ALLOW},
	{"k-1", false, S, "kit/k-1/+/raw", ODENY, ALLOW},
	{"k-1", false, S, "kit/k-1/measurement/raw", ODENY, ALLOW},
	{"k-1", false, S, "kit/k-1", ODENY, ALLOW},
	{"k-1", false, U, "kit/k-1/#", ODENY, ALLOW},
	/* look-alike measurement topics: no write for anyone; reading and subscribing stay */
	{"k-1", false, W, "kit/k-1/measurement/raw/", OALLOW, DENY},
	{"k-1", false, W, "kit/k-1/measurement/raw/extra", OALLOW, DENY},
	{"k-1", false, W, "kit/k-1/measurement/RAW", OALLOW, DENY},
	{"server", true, W, "kit/k-1/measurement/other", OALLOW, DENY},
	{"server", true, W, "kit/k-1/measurement/aggregate/", OALLOW, DENY},
	{"k-1", false, S, "kit/k-1/measurement/#", ODENY, ALLOW},
	{"k-1", false, W, "kit/k-1/measurements/raw", ODENY, ALLOW},
	/* shared subscriptions are judged by their filter */
	{"server", true, S, "$share/workers/kit/#", ODENY, ALLOW},
	{"server", true, S, "$share/workers/kit/+/measurement/raw", ODEFER, ALLOW},
	{"server", true, U, "$share/workers/kit/#", ODENY, ALLOW},
	{"server", true, S, "$share/workers/#", ODENY, ALLOW},
	{"k-1", false, S, "$share/workers/kit/+/measurement/raw", OALLOW, DENY},
	{"k-1", false, S, "$share/workers/kit/#", OALLOW, DENY},
	{"k-1", false, S, "$share/workers/#", OALLOW, DENY},
	{"k-1", false, S, "$share/workers/+/k-1/#", OALLOW, DENY},
	{"k-1", false, S, "$share/workers/kit/k-2/#", OALLOW, DENY},
	{"k-1", false, S, "$share/workers/kit/k-1/#", ODENY, ALLOW},
	{"k-1", false, S, "$share/g/kit/k-1/measurement/raw", ODENY, ALLOW},
	{"k-1", false, S, "$share/workers/other/x", ODEFER, DEFER},
	{"k-1", false, S, "$share/workers/other/x", ODENY, DENY},
	{"k-1", false, S, "$share/workers", OALLOW, DENY},
	{"k-1", false, S, "$share//kit/k-1/#", OALLOW, DENY},
	{"k-1", false, S, "$share/g/", OALLOW, DENY},
	{NULL, false, S, "$share/g/kit/#", OALLOW, DENY},
	/* kit, its own statistics: readable, not writable (only the plugin publishes them) */
	{"k-1", false, R, "kit/k-1/stats/11/1", ODENY, ALLOW},
	{"k-1", false, S, "kit/k-1/stats/#", ODENY, ALLOW},
	{"k-1", false, W, "kit/k-1/stats/11/1", OALLOW, DENY},
	{"k-1", false, W, "kit/k-1/stats", OALLOW, DENY},
	{"k-1", false, W, "kit/k-1/statsx/1", OALLOW, ALLOW},
	{"k-1", false, W, "kit/k-10/stats/1/1", OALLOW, DENY},
	{"server", true, W, "kit/k-1/stats/11/1", ODENY, ALLOW},
	/* kit, other kits' topics */
	{"k-1", false, R, "kit/k-2/measurement/raw", OALLOW, DENY},
	{"k-1", false, W, "kit/k-2/measurement/raw", OALLOW, DENY},
	{"k-1", false, W, "kit/k-2", OALLOW, DENY},
	{"k-1", false, S, "kit/k-2/#", OALLOW, DENY},
	{"k-1", false, S, "kit/k-2/measurement/raw", OALLOW, DENY},
	{"k-1", false, U, "kit/k-2/#", ODENY, ALLOW},
	/* kit, wildcard subscriptions */
	{"k-1", false, S, "kit/#", OALLOW, DENY},
	{"k-1", false, S, "kit/+/measurement/raw", OALLOW, DENY},
	{"k-1", false, S, "kit/+", OALLOW, DENY},
	{"k-1", false, S, "kit", OALLOW, DENY},
	{"k-1", false, S, "#", OALLOW, DENY},
	{"k-1", false, S, "+/x", OALLOW, DENY},
	{"k-1", false, S, "+", OALLOW, DENY},
	{"k-1", false, S, "+/k-1/#", OALLOW, DENY},
	{"k-1", false, U, "#", OALLOW, ALLOW},
	{"k-1", false, U, "#", ODEFER, DEFER},
	/* prefix trickery */
	{"k-10", false, R, "kit/k-1", ODEFER, DENY},
	{"k-10", false, W, "kit/k-1/measurement/raw", ODEFER, DENY},
	{"k-10", false, S, "kit/k-1/#", ODEFER, DENY},
	{"k-1", false, R, "kit/k-10/x", ODEFER, DENY},
	{"k-1", false, W, "kit/k-10", ODEFER, DENY},
	{"k-1", false, S, "kit/k-10/#", ODEFER, DENY},
	{"k-1", false, S, "kit/k-1#", ODEFER, DENY},
	{"k-1", false, S, "kit/k-1+/x", ODEFER, DENY},
	{"K-1", false, W, "kit/k-1/x", ODEFER, DENY},
	{"k-1", false, W, "kitk-1/x", ODEFER, DEFER},
	/* usernames that cannot be serials never own anything */
	{"+", false, S, "kit/+/#", OALLOW, DENY},
	{"#", false, S, "kit/#", OALLOW, DENY},
	{"", false, W, "kit//x", OALLOW, DENY},
	{"a/b", false, W, "kit/a/b/x", OALLOW, DENY},
	/* KIT_INVALID topics */
	{"k-1", false, W, "kit", OALLOW, DENY},
	{"k-1", false, W, "kit/", OALLOW, DENY},
	{"k-1", false, W, "kit//x", OALLOW, DENY},
	{"k-1", false, R, "kit//k-1", OALLOW, DENY},
	{"server", true, W, "kit", ODENY, ALLOW},
	{"server", true, W, "kit//x", ODENY, ALLOW},
	/* service user */
	{"server", true, R, "kit/k-1/measurement/raw", ODENY, ALLOW},
	{"server", true, W, "kit/k-2/x", ODENY, ALLOW},
	{"server", true, S, "kit/#", ODENY, ALLOW},
	{"server", true, S, "kit/+/measurement/raw", ODENY, ALLOW},
	{"server", true, U, "kit/#", ODENY, ALLOW},
	{"server", true, S, "#", ODENY, ALLOW},
	{"server", true, S, "+/x", ODENY, ALLOW},
	{"server", true, W, "other/x", ODENY, DENY},
	{"server", true, W, "other/x", ODEFER, DEFER},
	{"server", true, R, "other/x", OALLOW, ALLOW},
	/* a non-service user named like the service user is just a kit */
	{"server", false, S, "kit/#", OALLOW, DENY},
	/* anonymous */
	{NULL, false, R, "kit/k-1/measurement/raw", OALLOW, DENY},
	{NULL, false, W, "kit/k-1/measurement/raw", OALLOW, DENY},
	{NULL, false, S, "kit/k-1/#", OALLOW, DENY},
	{NULL, false, S, "kit/#", OALLOW, DENY},
	{NULL, false, U, "kit/#", ODENY, ALLOW},
	{NULL, false, S, "#", OALLOW, ALLOW},
	{NULL, false, S, "#", ODEFER, DEFER},
	{NULL, false, S, "+/x", ODENY, DENY},
	{NULL, false, W, "other", OALLOW, ALLOW},
	/* other topics under each mode */
	{"k-1", false, R, "other/x", ODEFER, DEFER},
	{"k-1", false, W, "other/x", OALLOW, ALLOW},
	{"k-1", false, S, "other/#", ODENY, DENY},
	{"k-1", false, U, "other/#", OALLOW, ALLOW},
	{"k-1", false, W, "$SYS/broker/x", ODEFER, DEFER},
	{"k-1", false, S, "$SYS/#", OALLOW, ALLOW},
	{"k-1", false, S, "$SYS/#", ODENY, DENY},
	{"k-1", false, W, "kitx/k-1", OALLOW, ALLOW},
	{"k-1", false, W, "ki", ODENY, DENY},
	{"k-1", false, W, "Kit/k-2", OALLOW, ALLOW},
	{"k-1", false, S, "x/+/kit/#", OALLOW, ALLOW},
	{"k-1", false, S, "+x/kit", ODEFER, DEFER},
	/* unknown access bits under kit/ are denied */
	{"k-1", false, 0, "kit/k-1/x", OALLOW, DENY},
	{"k-1", false, R | W, "kit/k-1/x", OALLOW, DENY},
	{"k-1", false, R, NULL, OALLOW, DENY},
};

static void test_acl_matrix(void **state)
{
	size_t i;
	int failures = 0;

	(void)state;
	for(i = 0; i < sizeof(acl_cases) / sizeof(acl_cases[0]); i++){
		const struct acl_case *c = &acl_cases[i];
		enum kg_acl_result got = kg_access__decide(c->user, c->service, c->access, c->topic, c->other);

		if(got != c->want){
			print_error("case %zu: user=%s service=%d access=%d topic=%s other=%d: got %d want %d\n",
					i, c->user ? c->user : "(null)", c->service, c->access,
					c->topic ? c->topic : "(null)", c->other, got, c->want);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

struct classify_case {
	const char *topic;
	enum kg_topic_class want;
	const char *serial; /* expected serial level (KIT*), NULL for OTHER */
};

static const struct classify_case classify_cases[] = {
	{"kit/k-1/measurement/raw", KG_TOPIC_KIT_RAW, "k-1"},
	{"kit/k-1/measurement/aggregate", KG_TOPIC_KIT_AGGREGATE, "k-1"},
	/* look-alikes: only raw and aggregate exist under measurement/ (refused for writes) */
	{"kit/k-1/measurement/raw/x", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurement/raw/", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurement/aggregate/", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurement/rawx", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurement/RAW", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurement/other", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/measurements/raw", KG_TOPIC_KIT, "k-1"},
	{"kit/k-1/measurement", KG_TOPIC_KIT, "k-1"},
	{"kit/k-1/measurement/", KG_TOPIC_KIT_LOOKALIKE, "k-1"},
	{"kit/k-1/x/raw", KG_TOPIC_KIT, "k-1"},
	{"kit/k-1", KG_TOPIC_KIT, "k-1"},
	{"kit/k-1/", KG_TOPIC_KIT, "k-1"},
	{"kit/a-very-long-serial-0001/config", KG_TOPIC_KIT, "a-very-long-serial-0001"},
	{"kit", KG_TOPIC_KIT_INVALID, ""},
	{"kit/", KG_TOPIC_KIT_INVALID, ""},
	{"kit//x", KG_TOPIC_KIT_INVALID, ""},
	{"kit//measurement/raw", KG_TOPIC_KIT_INVALID, ""},
	{"kitx/k-1/measurement/raw", KG_TOPIC_OTHER, NULL},
	{"ki", KG_TOPIC_OTHER, NULL},
	{"", KG_TOPIC_OTHER, NULL},
	{"/kit/k-1", KG_TOPIC_OTHER, NULL},
	{"Kit/k-1/measurement/raw", KG_TOPIC_OTHER, NULL},
	{"$SYS/broker/uptime", KG_TOPIC_OTHER, NULL},
	{"other/kit/k-1", KG_TOPIC_OTHER, NULL},
};

static void test_classify(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(classify_cases) / sizeof(classify_cases[0]); i++){
		const struct classify_case *c = &classify_cases[i];
		const char *serial = (const char *)1;
		size_t len = 12345;
		enum kg_topic_class got = kg_topic__classify(c->topic, &serial, &len);

		if(got != c->want) print_error("classify %s: got %d want %d\n", c->topic, got, c->want);
		assert_int_equal(got, c->want);
		if(c->serial){
			assert_non_null(serial);
			assert_int_equal(len, strlen(c->serial));
			assert_memory_equal(serial, c->serial, len);
		}else{
			assert_null(serial);
			assert_int_equal(len, 0);
		}
		/* NULL out-parameters are allowed */
		assert_int_equal(kg_topic__classify(c->topic, NULL, NULL), c->want);
	}
}

struct user_case {
	const char *user;
	bool want;
};

static const struct user_case user_cases[] = {
	{"k-test-0001", true},
	{"server", true},
	{"a", true},
	{"with space", true},
	{"$weird", true},
	{NULL, false},
	{"", false},
	{"+", false},
	{"a+b", false},
	{"#", false},
	{"a#", false},
	{"/", false},
	{"a/b", false},
	{"kit/", false},
};

static void test_username_ok(void **state)
{
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(user_cases) / sizeof(user_cases[0]); i++){
		if(kg_access__username_ok(user_cases[i].user) != user_cases[i].want){
			print_error("username_ok(%s) != %d\n", user_cases[i].user ? user_cases[i].user : "(null)",
					user_cases[i].want);
		}
		assert_int_equal(kg_access__username_ok(user_cases[i].user), user_cases[i].want);
	}
}

/* The live view's stream key, without printf: the same text snprintf gives, at the limits too. */
static void test_kit_stats_topic(void **state)
{
	(void)state;
	static const int32_t v[] = {1, 7, 10, 2147483647, -1, -2147483647 - 1, 0};
	char serial[65], got[KG_TOPIC_KIT_STATS_MAX], want[128];

	memset(serial, 's', 64);
	serial[64] = '\0';
	for(size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++){
		for(size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++){
			for(size_t slen = 0; slen <= 64; slen += 64){
				size_t n = kg_topic__kit_stats(got, slen ? serial : "k-test-0001", slen ? slen : 11, v[i], v[k]);
				int wn = snprintf(want, sizeof(want), "kit/%s/stats/%d/%d", slen ? serial : "k-test-0001",
						(int)v[i], (int)v[k]);
				assert_int_equal(n, (size_t)wn);
				assert_true(n < sizeof(got));
				assert_string_equal(got, want);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acl_matrix),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_kit_stats_topic),
		cmocka_unit_test(test_username_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
