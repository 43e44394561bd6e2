/* test_config.c -- unit tests for plugin/config/config.c: options, environment fallbacks, defaults, errors. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/rdkconf.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const env_names[] = {
	"KITGATE_SINK", "DATABASE_URL", "KAFKA_HOST", "KAFKA_PORT", "KAFKA_USERNAME", "KAFKA_PASSWORD", "LOG_LEVEL",
};

static int clear_env(void **state)
{
	int i;

	(void)state;
	for(i = 0; i < N(env_names); i++) unsetenv(env_names[i]);
	return 0;
}

/* Sets every variable of env_names to the value at the same index (in env_names order). */
static void set_env(const char *const values[])
{
	int i;

	for(i = 0; i < N(env_names); i++) setenv(env_names[i], values[i], 1);
}

/* Parses a single option; on failure checks the error is exactly one non-empty line. */
static int parse1(struct kg_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	struct kg_opt opt = {(char *)key, (char *)value};
	int rc = kg_config__parse(cfg, &opt, 1, err, errlen);

	if(rc){
		assert_true(err[0] != '\0');
		assert_null(strchr(err, '\n'));
	}
	return rc;
}

/* Numeric fields by option name, for the range tables. */
static long long num_field(const struct kg_config *c, const char *key)
{
	if(!strcmp(key, "queue_limit")) return (long long)c->queue_limit;
	if(!strcmp(key, "batch_size")) return c->batch_size;
	if(!strcmp(key, "batch_ms")) return c->batch_ms;
	if(!strcmp(key, "pg_connections")) return c->pg_connections;
	if(!strcmp(key, "max_payload")) return (long long)c->max_payload;
	if(!strcmp(key, "max_clock_skew_s")) return c->max_clock_skew_s;
	if(!strcmp(key, "spool_segment_mb")) return (long long)(c->spool_segment_bytes / (1024 * 1024));
	if(!strcmp(key, "shutdown_timeout_ms")) return c->shutdown_timeout_ms;
	if(!strcmp(key, "stats_interval_s")) return c->stats_interval_s;
	if(!strcmp(key, "stats_max_streams")) return (long long)c->stats_max_streams;
	if(!strcmp(key, "stats_max_samples")) return (long long)c->stats_max_samples;
	if(!strcmp(key, "stats_max_streams_per_kit")) return (long long)c->stats_max_streams_per_kit;
	if(!strcmp(key, "auth_refresh_s")) return c->auth_refresh_s;
	if(!strcmp(key, "auth_cold_budget_ms")) return c->auth_cold_budget_ms;
	if(!strcmp(key, "auth_max_iterations")) return c->auth_max_iterations;
	if(!strcmp(key, "auth_threads")) return c->auth_threads;
	if(!strcmp(key, "kit_rate_limit")) return c->kit_rate_limit;
	fail_msg("no numeric field %s", key);
	return -1;
}

/* kit_rate_limit <messages/s>[:<burst>]: the burst defaults to the rate; off is off. */
static void test_kit_rate_limit(void **state)
{
	static const struct kg_opt burst[] = { {"kit_rate_limit", "10:50"} };
	static const struct kg_opt plain[] = { {"kit_rate_limit", "7"} };
	static const struct kg_opt off[] = { {"kit_rate_limit", "off"} };
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, burst, 1, err, sizeof(err)), 0);
	assert_int_equal(c.kit_rate_limit, 10);
	assert_int_equal(c.kit_rate_burst, 50);
	kg_config__free(&c);
	assert_int_equal(kg_config__parse(&c, plain, 1, err, sizeof(err)), 0);
	assert_int_equal(c.kit_rate_limit, 7);
	assert_int_equal(c.kit_rate_burst, 7);
	kg_config__free(&c);
	assert_int_equal(kg_config__parse(&c, off, 1, err, sizeof(err)), 0);
	assert_int_equal(c.kit_rate_limit, 0);
	kg_config__free(&c);
}

static void test_live_options(void **state)
{
	static const struct kg_opt opts[] = {
		{"stats_topics", "sensors/+/temp"},
		{"stats_topics", "plant/#=plant/summary"},
		{"stats_field", "v"},
		{"http_listen", "127.0.0.1:8080"},
		{"http_password_file", "/etc/mosquitto/passwd"},
	};
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, opts, 5, err, sizeof(err)), 0);
	assert_int_equal(c.nstats_topics, 2);
	assert_string_equal(c.stats_topics[0], "sensors/+/temp");
	assert_string_equal(c.stats_topics[1], "plant/#=plant/summary");
	assert_string_equal(c.stats_field, "v");
	assert_string_equal(c.http_listen, "127.0.0.1:8080");
	assert_string_equal(c.http_password_file, "/etc/mosquitto/passwd");
	kg_config__free(&c);
	assert_int_equal(kg_config__parse(&c, (const struct kg_opt[]){{"http_listen", "off"}}, 1, err, sizeof(err)), 0);
	assert_null(c.http_listen);
	kg_config__free(&c);
}

static void test_defaults(void **state)
{
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_POSTGRES);
	assert_string_equal(c.database_url, "postgresql://astroplant:astroplant@localhost/astroplant");
	assert_string_equal(c.kafka_brokers, "localhost:9092");
	assert_null(c.kafka_username);
	assert_null(c.kafka_password);
	assert_int_equal(c.nkafka_props, 0);
	assert_string_equal(c.kafka_topic_raw, "raw");
	assert_string_equal(c.kafka_topic_aggregate, "aggregate");
	assert_int_equal(c.nservice_users, 1);
	assert_string_equal(c.service_users[0], "server");
	assert_int_equal(c.other_topics, KG_OTHER_DEFER);
	assert_int_equal(c.queue_limit, 100000);
	assert_int_equal(c.batch_size, 1000);
	assert_int_equal(c.batch_ms, 10);
	assert_int_equal(c.pg_connections, 2);
	assert_string_equal(c.spool_dir, "/var/lib/mosquitto/kitgate");
	assert_int_equal(c.max_payload, 16384);
	assert_int_equal(c.max_clock_skew_s, 86400);
	assert_int_equal(c.log_level, KG_LOG_INFO);
	assert_int_equal(c.nbridge_topics, 0);
	assert_string_equal(c.kafka_topic_separator, "_");
	assert_int_equal(c.nignored, 0);
	assert_string_equal(c.timestamp_attribute, "timestamp");
	assert_int_equal(c.spool_segment_bytes, 64ull * 1024 * 1024);
	assert_int_equal(c.shutdown_timeout_ms, 5000);
	assert_int_equal(c.stats_interval_s, 10);
	assert_int_equal(c.nstats_topics, 0);
	assert_string_equal(c.stats_field, "value");
	assert_int_equal(c.stats_max_streams, 10000);
	assert_int_equal(c.stats_max_samples, 1024);
	assert_int_equal(c.stats_max_streams_per_kit, 64);
	assert_null(c.http_listen);
	assert_null(c.http_password_file);
	assert_int_equal(c.auth, KG_AUTH_NONE);
	assert_int_equal(c.auth_refresh_s, 30);
	assert_int_equal(c.auth_cold_budget_ms, 250);
	assert_int_equal(c.auth_max_iterations, 1000000);
	assert_int_equal(c.auth_threads, 0);
	assert_int_equal(c.kit_rate_limit, 0);
	assert_int_equal(c.kit_rate_burst, 0);
	assert_true(kg_config__is_service(&c, "server"));
	assert_false(kg_config__is_service(&c, "k-1"));
	assert_false(kg_config__is_service(&c, NULL));
	kg_config__free(&c);
	assert_null(c.database_url);
	kg_config__free(&c); /* twice is harmless */
}

static void test_every_option(void **state)
{
	static const struct kg_opt opts[] = {
		{"sink", "kafka"},
		{"database_url", "postgres+psycopg2://u:p@db:5433/x"},
		{"kafka_brokers", "b1:9093,b2:9094"},
		{"kafka_username", "ku"},
		{"kafka_password", "kp"},
		{"kafka.security.protocol", "SASL_SSL"},
		{"kafka_topic_raw", "m_raw"},
		{"kafka_topic_aggregate", "m_agg"},
		{"service_users", "server,admin"},
		{"other_topics", "allow"},
		{"queue_limit", "5"},
		{"batch_size", "7"},
		{"batch_ms", "0"},
		{"spool_dir", "/tmp/spool"},
		{"max_payload", "100"},
		{"max_clock_skew_s", "0"},
		{"log_level", "debug"},
		{"bridge_topics", "uns/#"},
		{"kafka_topic_separator", "."},
		{"ignored_attributes", "uns/#=meta.debug"},
		{"timestamp_attribute", "ts"},
		{"spool_segment_mb", "2"},
		{"shutdown_timeout_ms", "0"},
		{"stats_interval_s", "0"},
		{"kafka.linger.ms", "5"},
	};
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, opts, N(opts), err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_KAFKA);
	assert_string_equal(c.database_url, "postgresql://u:p@db:5433/x");
	assert_string_equal(c.kafka_brokers, "b1:9093,b2:9094");
	assert_string_equal(c.kafka_username, "ku");
	assert_string_equal(c.kafka_password, "kp");
	assert_int_equal(c.nkafka_props, 2);
	assert_string_equal(c.kafka_props[0].key, "security.protocol");
	assert_string_equal(c.kafka_props[0].value, "SASL_SSL");
	assert_string_equal(c.kafka_props[1].key, "linger.ms");
	assert_string_equal(c.kafka_props[1].value, "5");
	assert_string_equal(c.kafka_topic_raw, "m_raw");
	assert_string_equal(c.kafka_topic_aggregate, "m_agg");
	assert_int_equal(c.nservice_users, 2);
	assert_string_equal(c.service_users[1], "admin");
	assert_true(kg_config__is_service(&c, "admin"));
	assert_false(kg_config__is_service(&c, "admi"));
	assert_int_equal(c.other_topics, KG_OTHER_ALLOW);
	assert_int_equal(c.queue_limit, 5);
	assert_int_equal(c.batch_size, 7);
	assert_int_equal(c.batch_ms, 0);
	assert_string_equal(c.spool_dir, "/tmp/spool");
	assert_int_equal(c.max_payload, 100);
	assert_int_equal(c.max_clock_skew_s, 0);
	assert_int_equal(c.log_level, KG_LOG_DEBUG);
	assert_int_equal(c.nbridge_topics, 1);
	assert_string_equal(c.bridge_topics[0], "uns/#");
	assert_string_equal(c.kafka_topic_separator, ".");
	assert_int_equal(c.nignored, 1);
	assert_string_equal(c.ignored[0].filter, "uns/#");
	assert_int_equal(c.ignored[0].npaths, 1);
	assert_string_equal(c.ignored[0].paths[0], "meta.debug");
	assert_string_equal(c.timestamp_attribute, "ts");
	assert_int_equal(c.spool_segment_bytes, 2ull * 1024 * 1024);
	assert_int_equal(c.shutdown_timeout_ms, 0);
	assert_int_equal(c.stats_interval_s, 0);
	kg_config__free(&c);
}

static void test_enum_values(void **state)
{
	static const struct {
		const char *key, *value;
		int want;
	} cases[] = {
		{"sink", "postgres", KG_SINK_POSTGRES},
		{"sink", "kafka", KG_SINK_KAFKA},
		{"sink", "none", KG_SINK_NONE},
		{"sink", "KAFKA", KG_SINK_KAFKA},
		{"other_topics", "defer", KG_OTHER_DEFER},
		{"other_topics", "allow", KG_OTHER_ALLOW},
		{"other_topics", "deny", KG_OTHER_DENY},
		{"log_level", "DEBUG", KG_LOG_DEBUG},
		{"log_level", "INFO", KG_LOG_INFO},
		{"log_level", "WARNING", KG_LOG_WARNING},
		{"log_level", "warn", KG_LOG_WARNING},
		{"log_level", "ERROR", KG_LOG_ERROR},
		{"auth", "none", KG_AUTH_NONE},
		{"auth", "postgres", KG_AUTH_POSTGRES},
		{"auth", "Postgres", KG_AUTH_POSTGRES},
	};
	struct kg_config c;
	char err[256];
	int i, got;

	(void)state;
	for(i = 0; i < N(cases); i++){
		assert_int_equal(parse1(&c, cases[i].key, cases[i].value, err, sizeof(err)), 0);
		if(!strcmp(cases[i].key, "sink")) got = (int)c.sink;
		else if(!strcmp(cases[i].key, "other_topics")) got = (int)c.other_topics;
		else if(!strcmp(cases[i].key, "auth")) got = (int)c.auth;
		else got = c.log_level;
		assert_int_equal(got, cases[i].want);
		kg_config__free(&c);
	}
}

/* Range boundaries: every numeric option's min and max are accepted. */
static void test_numeric_bounds(void **state)
{
	static const struct {
		const char *key, *value;
		long long want;
	} cases[] = {
		{"queue_limit", "1", 1},
		{"queue_limit", "9223372036854775807", 9223372036854775807LL},
		{"batch_size", "1", 1},
		{"batch_size", "100000", 100000},
		{"pg_connections", "1", 1},
		{"pg_connections", "16", 16},
		{"batch_ms", "0", 0},
		{"batch_ms", "60000", 60000},
		{"max_payload", "1", 1},
		{"max_payload", "268435455", 268435455},
		{"max_clock_skew_s", "0", 0},
		{"max_clock_skew_s", "31536000", 31536000},
		{"max_clock_skew_s", "315360000", 315360000},   /* 10 years: the maximum */
		{"spool_segment_mb", "1", 1},
		{"spool_segment_mb", "4096", 4096},
		{"shutdown_timeout_ms", "0", 0},
		{"shutdown_timeout_ms", "600000", 600000},
		{"stats_interval_s", "0", 0},
		{"stats_interval_s", "3600", 3600},
		{"stats_max_streams", "1", 1},
		{"stats_max_streams", "10000000", 10000000},
		{"stats_max_samples", "2", 2},
		{"stats_max_samples", "1000000", 1000000},
		{"stats_max_streams_per_kit", "1", 1},
		{"stats_max_streams_per_kit", "10000000", 10000000},
		{"auth_refresh_s", "1", 1},
		{"auth_refresh_s", "86400", 86400},
		{"auth_cold_budget_ms", "1", 1},
		{"auth_cold_budget_ms", "1000", 1000},
		{"auth_max_iterations", "1", 1},
		{"auth_max_iterations", "15000", 15000},
		{"auth_max_iterations", "10000000", 10000000},
		{"auth_threads", "1", 1},
		{"auth_threads", "256", 256},
		{"kit_rate_limit", "1", 1},
		{"kit_rate_limit", "1000000", 1000000},
	};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		if(parse1(&c, cases[i].key, cases[i].value, err, sizeof(err))) fail_msg("%s %s: %s", cases[i].key, cases[i].value, err);
		assert_int_equal(num_field(&c, cases[i].key), cases[i].want);
		kg_config__free(&c);
	}
}

/* Every malformed value fails with one line that names the option and quotes the value. */
static void test_malformed_options(void **state)
{
	static const struct {
		const char *key, *value;
	} cases[] = {
		{"sink", "mysql"},
		{"sink", ""},
		{"database_url", "mysql://x/y"},
		{"database_url", "localhost"},
		{"other_topics", "maybe"},
		{"log_level", "TRACE"},
		{"queue_limit", "abc"},
		{"queue_limit", "0"},
		{"queue_limit", "-1"},
		{"queue_limit", "10x"},
		{"queue_limit", " 10"},
		{"queue_limit", "+10"},
		{"queue_limit", ""},
		{"queue_limit", "99999999999999999999"},
		{"batch_size", "0"},
		{"batch_size", "100001"},
		{"pg_connections", "0"},
		{"pg_connections", "17"},
		{"batch_size", "1.5"},
		{"batch_ms", "-1"},
		{"batch_ms", "60001"},
		{"max_payload", "0"},
		{"max_payload", "268435456"},
		{"max_clock_skew_s", "-1"},
		{"max_clock_skew_s", "1e3"},
		{"max_clock_skew_s", "315360001"},                /* *1000 must not overflow */
		{"max_clock_skew_s", "9223372036854775807"},
		{"spool_segment_mb", "0"},
		{"spool_segment_mb", "4097"},
		{"shutdown_timeout_ms", "600001"},
		{"shutdown_timeout_ms", "x"},
		{"stats_interval_s", "3601"},
		{"stats_interval_s", "-5"},
		{"stats_max_streams", "0"},
		{"stats_max_samples", "1"},
		{"stats_max_streams_per_kit", "0"},
		{"stats_field", ""},
		{"stats_topics", "a/#/b"},
		{"stats_topics", "a/b=c/+"},
		{"stats_topics", "a/b="},
		{"stats_topics", "=x"},
		{"http_listen", "8080"},
		{"http_listen", "127.0.0.1:0"},
		{"http_listen", "127.0.0.1:65536"},
		{"http_listen", ":8080"},
		{"http_listen", ""},
		{"http_password_file", ""},
		{"auth", "ldap"},
		{"auth", ""},
		{"auth", "postgres,files"},
		{"auth_refresh_s", "0"},
		{"auth_refresh_s", "86401"},
		{"auth_refresh_s", "30s"},
		{"auth_cold_budget_ms", "0"},
		{"auth_cold_budget_ms", "1001"},
		{"auth_cold_budget_ms", "off"},
		{"auth_max_iterations", "0"},
		{"auth_max_iterations", "10000001"},
		{"auth_max_iterations", "1e6"},
		{"auth_max_iterations", "-1"},
		{"auth_threads", "0"},
		{"auth_threads", "257"},
		{"auth_threads", "cpus"},
		{"kit_rate_limit", "0"},
		{"kit_rate_limit", "10:0"},
		{"kit_rate_limit", "10:"},
		{"kit_rate_limit", ":10"},
		{"kit_rate_limit", "1.5"},
		{"kit_rate_limit", "10:20:30"},
		{"kit_rate_limit", "1000001"},
		{"kit_rate_limit", ""},
		{"kafka_topic_separator", ""},
		{"kafka_topic_separator", "__"},
		{"kafka_topic_separator", "/"},
		{"kafka_topic_separator", " "},
		{"kafka_topic_separator", "#"},
		{"service_users", "a,,b"},
		{"service_users", "server,k+1"},
		{"service_users", "a/b"},
		{"service_users", "#"},
		{"service_users", " "},
		{"bridge_topics", "a/#/b"},
		{"bridge_topics", "a+/b"},
		{"bridge_topics", "a/b#"},
		{"bridge_topics", "a/+b"},
		{"bridge_topics", "##"},
		{"bridge_topics", ""},
		{"ignored_attributes", "uns/#"},
		{"ignored_attributes", "a/#/b=x"},
		{"ignored_attributes", "=x"},
		{"ignored_attributes", "uns/#="},
		{"ignored_attributes", "uns/#=a..b"},
		{"ignored_attributes", "uns/#=.a"},
		{"ignored_attributes", "uns/#=a."},
		{"ignored_attributes", "uns/#=a,,b"},
		{"ignored_attributes", "uns/#=a,"},
		{"kafka_topic_raw", ""},
		{"spool_dir", ""},
		{"timestamp_attribute", ""},
		{"kafka_brokers", ""},
	};
	struct kg_config c;
	char err[256], want[128];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		if(parse1(&c, cases[i].key, cases[i].value, err, sizeof(err)) != -1){
			kg_config__free(&c);
			fail_msg("%s \"%s\" was accepted", cases[i].key, cases[i].value);
		}
		snprintf(want, sizeof(want), "option %s ", cases[i].key);
		if(!strstr(err, want)) fail_msg("error for %s does not name it: %s", cases[i].key, err);
		snprintf(want, sizeof(want), "\"%s\"", cases[i].value);
		if(!strstr(err, want)) fail_msg("error for %s does not quote the value: %s", cases[i].key, err);
		/* cfg is left freed */
		assert_null(c.database_url);
		assert_null(c.bridge_topics);
		assert_int_equal(c.nignored, 0);
	}
}

static void test_exact_error_text(void **state)
{
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(parse1(&c, "queue_limit", "abc", err, sizeof(err)), -1);
	assert_string_equal(err, "kitgate: invalid value \"abc\" for option queue_limit (expected an integer 1..)");
	assert_int_equal(parse1(&c, "batch_size", "0", err, sizeof(err)), -1);
	assert_string_equal(err, "kitgate: invalid value \"0\" for option batch_size (expected an integer 1..100000)");
	/* a value with a newline still gives one line */
	assert_int_equal(parse1(&c, "sink", "a\nb", err, sizeof(err)), -1);
	/* a tiny buffer is truncated, never overrun */
	assert_int_equal(parse1(&c, "sink", "bad", err, 8), -1);
	assert_int_equal(strlen(err), 7);
	/* NULL err is allowed */
	{
		struct kg_opt o = {"sink", "bad"};
		assert_int_equal(kg_config__parse(&c, &o, 1, NULL, 0), -1);
	}
}

static void test_unknown_key(void **state)
{
	static const char *const keys[] = {"queue_limt", "kafka_broker", "Sink", "kafka", ""};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	for(i = 0; i < N(keys); i++){
		assert_int_equal(parse1(&c, keys[i], "1", err, sizeof(err)), -1);
		if(keys[i][0] && !strstr(err, keys[i])) fail_msg("error does not name %s: %s", keys[i], err);
	}
	/* "kafka." with no property name */
	assert_int_equal(parse1(&c, "kafka.", "x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "kafka."));
}

/* Environment fallbacks, each on its own. */
static void test_env_fallbacks(void **state)
{
	struct kg_config c;
	char err[256];

	(void)state;
	set_env((const char *const[]){"none", "postgres://a:b@h/d", "kh", "19092", "eu", "ep", "WARNING"});
	assert_int_equal(kg_config__parse(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_NONE);
	assert_string_equal(c.database_url, "postgresql://a:b@h/d");
	assert_string_equal(c.kafka_brokers, "kh:19092");
	assert_string_equal(c.kafka_username, "eu");
	assert_string_equal(c.kafka_password, "ep");
	assert_int_equal(c.log_level, KG_LOG_WARNING);
	kg_config__free(&c);

	/* an empty variable counts as unset */
	set_env((const char *const[]){"", "", "", "", "", "", ""});
	assert_int_equal(kg_config__parse(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_POSTGRES);
	assert_string_equal(c.database_url, "postgresql://astroplant:astroplant@localhost/astroplant");
	assert_string_equal(c.kafka_brokers, "localhost:9092");
	assert_null(c.kafka_username);
	assert_null(c.kafka_password);
	assert_int_equal(c.log_level, KG_LOG_INFO);
	kg_config__free(&c);
	clear_env(NULL);
}

/* Options win over the environment. */
static void test_option_overrides_env(void **state)
{
	static const struct kg_opt opts[] = {
		{"sink", "kafka"},
		{"database_url", "postgresql://opt/db"},
		{"kafka_brokers", "ob:1"},
		{"kafka_username", "ou"},
		{"kafka_password", "op"},
		{"log_level", "ERROR"},
	};
	struct kg_config c;
	char err[256];

	(void)state;
	set_env((const char *const[]){"none", "postgresql://env/db", "eh", "2", "eu", "ep", "DEBUG"});
	assert_int_equal(kg_config__parse(&c, opts, N(opts), err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_KAFKA);
	assert_string_equal(c.database_url, "postgresql://opt/db");
	assert_string_equal(c.kafka_brokers, "ob:1");
	assert_string_equal(c.kafka_username, "ou");
	assert_string_equal(c.kafka_password, "op");
	assert_int_equal(c.log_level, KG_LOG_ERROR);
	kg_config__free(&c);

	/* a malformed env value is ignored when the option is given */
	setenv("KITGATE_SINK", "bogus", 1);
	assert_int_equal(parse1(&c, "sink", "postgres", err, sizeof(err)), 0);
	assert_int_equal(c.sink, KG_SINK_POSTGRES);
	kg_config__free(&c);
	clear_env(NULL);
}

/* A malformed environment value names both the option and the variable. */
static void test_malformed_env(void **state)
{
	static const struct {
		const char *env, *value, *option;
	} cases[] = {
		{"KITGATE_SINK", "mysql", "sink"},
		{"DATABASE_URL", "mysql://x", "database_url"},
		{"LOG_LEVEL", "LOUD", "log_level"},
		{"KAFKA_PORT", "x", "kafka_brokers"},
		{"KAFKA_PORT", "0", "kafka_brokers"},
		{"KAFKA_PORT", "65536", "kafka_brokers"},
		{"KAFKA_HOST", "a,,b", "kafka_brokers"},
	};
	struct kg_config c;
	char err[256], want[64];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		clear_env(NULL);
		setenv(cases[i].env, cases[i].value, 1);
		if(kg_config__parse(&c, NULL, 0, err, sizeof(err)) != -1){
			kg_config__free(&c);
			fail_msg("%s=%s was accepted", cases[i].env, cases[i].value);
		}
		assert_null(strchr(err, '\n'));
		snprintf(want, sizeof(want), "option %s ", cases[i].option);
		if(!strstr(err, want) || !strstr(err, cases[i].env)) fail_msg("%s: %s", cases[i].env, err);
	}
	clear_env(NULL);
}

static void test_kafka_env_brokers(void **state)
{
	static const struct {
		const char *host, *port, *want;
	} cases[] = {
		{NULL, NULL, "localhost:9092"},
		{"kafka", NULL, "kafka:9092"},
		{NULL, "9093", "localhost:9093"},
		{"kafka", "9093", "kafka:9093"},
		{"kafka:1234", "9093", "kafka:1234"},
		{"a, b:2 ,c", "7", "a:7,b:2,c:7"},
		{"[::1]", NULL, "[::1]:9092"},
		{"[::1]:5", NULL, "[::1]:5"},
	};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		clear_env(NULL);
		if(cases[i].host) setenv("KAFKA_HOST", cases[i].host, 1);
		if(cases[i].port) setenv("KAFKA_PORT", cases[i].port, 1);
		if(kg_config__parse(&c, NULL, 0, err, sizeof(err))) fail_msg("%s", err);
		assert_string_equal(c.kafka_brokers, cases[i].want);
		kg_config__free(&c);
	}
	clear_env(NULL);
}

static void test_db_url_normalisation(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"postgresql://u:p@h:5432/d", "postgresql://u:p@h:5432/d"},
		{"postgres://u:p@h/d", "postgresql://u:p@h/d"},
		{"postgresql+psycopg2://u:p@h/d", "postgresql://u:p@h/d"},
		{"postgres+psycopg2://u:p@h/d", "postgresql://u:p@h/d"},
		{"postgresql+asyncpg://h/d?sslmode=require", "postgresql://h/d?sslmode=require"},
		{"POSTGRESQL://h/d", "postgresql://h/d"},
		{"postgresql://", "postgresql://"},
		{"postgresql+://h/d", NULL},
		{"postgre://h/d", NULL},
		{"postgresqlx://h/d", NULL},
		{"mysql://h/d", NULL},
		{"mysql+postgresql://h/d", NULL},
		{"host=h dbname=d", NULL},
		{"", NULL},
		{NULL, NULL},
	};
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		char *got = kg_config__normalize_db_url(cases[i].in);

		if(cases[i].want){
			if(!got) fail_msg("%s -> NULL", cases[i].in);
			assert_string_equal(got, cases[i].want);
		}else if(got){
			fail_msg("%s -> %s, want NULL", cases[i].in ? cases[i].in : "(null)", got);
		}
		free(got);
	}
}

static void test_repeatable(void **state)
{
	static const struct kg_opt opts[] = {
		{"bridge_topics", "uns/#"},
		{"ignored_attributes", "uns/+/x = meta.debug, raw"},
		{"bridge_topics", "factory/+/temp"},
		{"bridge_topics", "#"},
		{"ignored_attributes", "a=b/#=c.d.e"},
		{"bridge_topics", "+"},
		{"bridge_topics", "a//b"},
	};
	struct kg_config c;
	char err[256];

	(void)state;
	if(kg_config__parse(&c, opts, N(opts), err, sizeof(err))) fail_msg("%s", err);
	assert_int_equal(c.nbridge_topics, 5);
	assert_string_equal(c.bridge_topics[0], "uns/#");
	assert_string_equal(c.bridge_topics[1], "factory/+/temp");
	assert_string_equal(c.bridge_topics[2], "#");
	assert_string_equal(c.bridge_topics[3], "+");
	assert_string_equal(c.bridge_topics[4], "a//b");
	assert_int_equal(c.nignored, 2);
	assert_string_equal(c.ignored[0].filter, "uns/+/x");
	assert_int_equal(c.ignored[0].npaths, 2);
	assert_string_equal(c.ignored[0].paths[0], "meta.debug");
	assert_string_equal(c.ignored[0].paths[1], "raw");
	/* the filter ends at the last '=' */
	assert_string_equal(c.ignored[1].filter, "a=b/#");
	assert_int_equal(c.ignored[1].npaths, 1);
	assert_string_equal(c.ignored[1].paths[0], "c.d.e");
	kg_config__free(&c);
}

static void test_last_wins(void **state)
{
	static const struct kg_opt opts[] = {
		{"queue_limit", "5"},
		{"sink", "kafka"},
		{"queue_limit", "6"},
		{"sink", "none"},
		{"service_users", "a"},
		{"service_users", "b"},
	};
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, opts, N(opts), err, sizeof(err)), 0);
	assert_int_equal(c.queue_limit, 6);
	assert_int_equal(c.sink, KG_SINK_NONE);
	assert_int_equal(c.nservice_users, 1);
	assert_string_equal(c.service_users[0], "b");
	kg_config__free(&c);
}

static void test_separator(void **state)
{
	static const char *const good[] = {"_", ".", "-", "a", "Z", "0"};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	for(i = 0; i < N(good); i++){
		if(parse1(&c, "kafka_topic_separator", good[i], err, sizeof(err))) fail_msg("%s", err);
		assert_string_equal(c.kafka_topic_separator, good[i]);
		kg_config__free(&c);
	}
}

static void test_service_users_trim(void **state)
{
	static const struct {
		const char *value;
		int n;
		const char *u[3];
	} cases[] = {
		{"server", 1, {"server"}},
		{" server , admin ", 2, {"server", "admin"}},
		{"a,b,c", 3, {"a", "b", "c"}},
		{"\tx\t,y", 2, {"x", "y"}},
		{"with space", 1, {"with space"}},
	};
	struct kg_config c;
	char err[256];
	int i, j;

	(void)state;
	for(i = 0; i < N(cases); i++){
		if(parse1(&c, "service_users", cases[i].value, err, sizeof(err))) fail_msg("%s", err);
		assert_int_equal(c.nservice_users, cases[i].n);
		for(j = 0; j < cases[i].n; j++){
			assert_string_equal(c.service_users[j], cases[i].u[j]);
			assert_true(kg_config__is_service(&c, cases[i].u[j]));
		}
		assert_false(kg_config__is_service(&c, " server"));
		kg_config__free(&c);
	}
}

/* A failure after lists and strings were allocated frees all of it (ASan checks for leaks). */
static void test_free_after_failure(void **state)
{
	static const struct kg_opt late_fail[] = {
		{"bridge_topics", "a/#"},
		{"ignored_attributes", "a/#=x,y"},
		{"kafka.acks", "all"},
		{"service_users", "s1,s2"},
		{"kafka_username", "u"},
		{"stats_interval_s", "-1"}, /* resolved last */
	};
	static const struct kg_opt early_fail[] = {
		{"kafka.acks", "all"},
		{"bridge_topics", "a/#"},
		{"ignored_attributes", "a/#=x,y"},
		{"bridge_topics", "a/#/b"},
	};
	struct kg_config c, zero;
	char err[256];

	(void)state;
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(kg_config__parse(&c, late_fail, N(late_fail), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "stats_interval_s"));
	assert_memory_equal(&c, &zero, sizeof(c));
	assert_int_equal(kg_config__parse(&c, early_fail, N(early_fail), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bridge_topics"));
	assert_memory_equal(&c, &zero, sizeof(c));
	kg_config__free(&c);
}

/* bridge_sparkplug: decode by default, decode|raw (any case), anything else refused by name. */
static void test_bridge_sparkplug(void **state)
{
	struct kg_config c;
	char err[256];

	(void)state;
	assert_int_equal(kg_config__parse(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.bridge_sparkplug, KG_SPARKPLUG_DECODE);
	kg_config__free(&c);
	assert_int_equal(parse1(&c, "bridge_sparkplug", "raw", err, sizeof(err)), 0);
	assert_int_equal(c.bridge_sparkplug, KG_SPARKPLUG_RAW);
	kg_config__free(&c);
	assert_int_equal(parse1(&c, "bridge_sparkplug", "DECODE", err, sizeof(err)), 0);
	assert_int_equal(c.bridge_sparkplug, KG_SPARKPLUG_DECODE);
	kg_config__free(&c);
	assert_int_equal(parse1(&c, "bridge_sparkplug", "json", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "option bridge_sparkplug "));
	assert_non_null(strstr(err, "\"json\""));
	assert_non_null(strstr(err, "decode|raw"));
}

/* kafka.<property> options are validated by librdkafka while parsing (issue 9): an unknown
 * property or a value librdkafka refuses fails with one line naming the option; good ones pass.
 * kg_rdkconf__validate alone gives the same answer. */
static void test_kafka_props_validated(void **state)
{
	static const struct {
		const char *key, *value;
		int ok;
	} cases[] = {
		{"kafka.acks", "all", 1},
		{"kafka.acks", "1", 1},
		{"kafka.linger.ms", "20", 1},
		{"kafka.security.protocol", "SASL_SSL", 1},
		{"kafka.acks", "banana", 0},
		{"kafka.linger.ms", "soon", 0},
		{"kafka.linger.ms", "-5", 0},
		{"kafka.security.protocol", "carrier_pigeon", 0},
		{"kafka.no.such.property", "1", 0},
	};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	for(i = 0; i < N(cases); i++){
		int rc = parse1(&c, cases[i].key, cases[i].value, err, sizeof(err));

		if(rc != (cases[i].ok ? 0 : -1)) fail_msg("%s %s: rc %d (%s)", cases[i].key, cases[i].value, rc, err);
		if(!cases[i].ok){
			/* the line names the option as written */
			assert_non_null(strstr(err, cases[i].key));
			continue;
		}
		assert_int_equal(kg_rdkconf__validate(&c, err, sizeof(err)), 0);
		kg_config__free(&c);
	}
	/* the builder itself: a good configuration yields a conf, a bad one NULL and the reason */
	assert_int_equal(parse1(&c, "kafka.acks", "all", err, sizeof(err)), 0);
	c.kafka_props[0].value[0] = 'x'; /* "xll" */
	assert_int_equal(kg_rdkconf__validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "option kafka.acks"));
	assert_null(kg_rdkconf__new(&c, NULL, 0, err, sizeof(err)));
	c.kafka_props[0].value[0] = 'a';
	{
		rd_kafka_conf_t *conf = kg_rdkconf__new(&c, kg_rdkconf__producer_defaults,
				kg_rdkconf__nproducer_defaults, err, sizeof(err));
		char val[64];
		size_t vlen = sizeof(val);

		assert_non_null(conf);
		assert_int_equal(rd_kafka_conf_get(conf, "bootstrap.servers", val, &vlen), RD_KAFKA_CONF_OK);
		assert_string_equal(val, "localhost:9092");
		vlen = sizeof(val);
		assert_int_equal(rd_kafka_conf_get(conf, "enable.idempotence", val, &vlen), RD_KAFKA_CONF_OK);
		assert_string_equal(val, "true");
		rd_kafka_conf_destroy(conf);
	}
	kg_config__free(&c);
}

/* payload_format: default auto, the three values in any case, anything else is an error. */
static void test_payload_format(void **state)
{
	static const struct {
		const char *value;
		int want; /* -1: refused */
	} cases[] = {
		{"auto", KG_PAYLOAD_AUTO}, {"json", KG_PAYLOAD_JSON}, {"capnp", KG_PAYLOAD_CAPNP},
		{"CAPNP", KG_PAYLOAD_CAPNP}, {"Json", KG_PAYLOAD_JSON},
		{"", -1}, {"avro", -1}, {"capnp ", -1}, {"packed", -1},
	};
	struct kg_config c;
	char err[256];
	int i;

	(void)state;
	assert_int_equal(kg_config__parse(&c, NULL, 0, err, sizeof(err)), 0);
	assert_int_equal(c.payload_format, KG_PAYLOAD_AUTO);
	kg_config__free(&c);
	for(i = 0; i < N(cases); i++){
		int rc = parse1(&c, "payload_format", cases[i].value, err, sizeof(err));
		if(cases[i].want < 0){
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err, "payload_format"));
			assert_non_null(strstr(err, "auto|json|capnp"));
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal((int)c.payload_format, cases[i].want);
		kg_config__free(&c);
	}
}

/* The option table drives parsing: every row's bounds and words are what kg_config__parse accepts
 * and stores, names are unique, and every INT/ENUM row points at a field of a size it can store. */
static void test_option_table(void **state)
{
	const struct kg_option *opts;
	struct kg_config c;
	char err[256], num[32];
	size_t n, i, j;

	(void)state;
	opts = kg_config__options(&n);
	assert_true(n > 30);
	for(i = 0; i < n; i++){
		const struct kg_option *o = &opts[i];

		assert_non_null(o->name);
		assert_non_null(o->help);
		for(j = 0; j < i; j++) if(!strcmp(o->name, opts[j].name)) fail_msg("option %s twice", o->name);
		if(o->type == KG_OPT_INT){
			long long stored = 0;
			int small;
			int64_t big;

			assert_true(o->size == sizeof(int) || o->size == sizeof(int64_t));
			snprintf(num, sizeof(num), "%lld", o->max == LLONG_MAX ? o->min + 1 : o->max);
			if(parse1(&c, o->name, num, err, sizeof(err))) fail_msg("%s %s: %s", o->name, num, err);
			if(o->size == sizeof(int)){
				memcpy(&small, (char *)&c + o->offset, sizeof(small));
				stored = small;
			}else{
				memcpy(&big, (char *)&c + o->offset, sizeof(big));
				stored = big;
			}
			assert_true(stored == strtoll(num, NULL, 10) * (o->scale ? o->scale : 1));
			kg_config__free(&c);
			snprintf(num, sizeof(num), "%lld", o->min - 1);
			assert_int_equal(parse1(&c, o->name, num, err, sizeof(err)), -1);
			assert_non_null(strstr(err, o->name));
			if(o->max != LLONG_MAX){
				snprintf(num, sizeof(num), "%lld", o->max + 1);
				assert_int_equal(parse1(&c, o->name, num, err, sizeof(err)), -1);
			}
		}else if(o->type == KG_OPT_ENUM){
			const struct kg_opt_enum *e;

			assert_int_equal(o->size, sizeof(int));
			for(e = o->values; e->name; e++){
				int stored;

				if(parse1(&c, o->name, e->name, err, sizeof(err))) fail_msg("%s %s: %s", o->name, e->name, err);
				memcpy(&stored, (char *)&c + o->offset, sizeof(stored));
				assert_int_equal(stored, e->value);
				kg_config__free(&c);
			}
			assert_int_equal(parse1(&c, o->name, "no-such-word", err, sizeof(err)), -1);
			assert_non_null(strstr(err, o->name));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, clear_env),
		cmocka_unit_test_setup(test_option_table, clear_env),
		cmocka_unit_test_setup(test_live_options, clear_env),
		cmocka_unit_test_setup(test_kit_rate_limit, clear_env),
		cmocka_unit_test_setup(test_every_option, clear_env),
		cmocka_unit_test_setup(test_enum_values, clear_env),
		cmocka_unit_test_setup(test_numeric_bounds, clear_env),
		cmocka_unit_test_setup(test_malformed_options, clear_env),
		cmocka_unit_test_setup(test_exact_error_text, clear_env),
		cmocka_unit_test_setup(test_unknown_key, clear_env),
		cmocka_unit_test_setup(test_env_fallbacks, clear_env),
		cmocka_unit_test_setup(test_option_overrides_env, clear_env),
		cmocka_unit_test_setup(test_malformed_env, clear_env),
		cmocka_unit_test_setup(test_kafka_env_brokers, clear_env),
		cmocka_unit_test_setup(test_db_url_normalisation, clear_env),
		cmocka_unit_test_setup(test_repeatable, clear_env),
		cmocka_unit_test_setup(test_last_wins, clear_env),
		cmocka_unit_test_setup(test_separator, clear_env),
		cmocka_unit_test_setup(test_service_users_trim, clear_env),
		cmocka_unit_test_setup(test_free_after_failure, clear_env),
		cmocka_unit_test_setup(test_bridge_sparkplug, clear_env),
		cmocka_unit_test_setup(test_kafka_props_validated, clear_env),
		cmocka_unit_test_setup(test_payload_format, clear_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
