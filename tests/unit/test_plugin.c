/* test_plugin.c -- the plugin's broker-facing code (the files in plugin/broker/) against a fake
 * broker API (fakebroker.h): init and cleanup on a fake mosquitto 2.0 and 2.1, the access matrix
 * through ACL_CHECK and BASIC_AUTH, measurements through ACL WRITE + MESSAGE (accepted, handed to a
 * spool, denied and counted), wills, the per-kit rate limit's answer, the outbox, the $SYS status
 * and the live view's statistics in TICK, bridge routes to librdkafka's mock cluster. Driven only
 * through the plugin's entry points and registered callbacks, never its internal functions. In
 * build-asan it runs under ASan+UBSan with assert() on (the leak check at exit covers cleanup), in
 * build-pkg (Release) also under valgrind. auth postgres: the kits snapshot comes from a test source
 * instead of PostgreSQL (kg_snapshot__test_source): logins on 2.0 (on the broker thread: ok,
 * cached, wrong secret, backoff, no password, unknown user), delayed logins on 2.1 (completed in
 * TICK with mosquitto_complete_basic_auth), kicks after a snapshot change, the snapshot's
 * ownership check in the measurement path; the loader's SQL, LISTEN/NOTIFY and outages stay with
 * tests/integration/test_auth*.sh. Timing: two checks need two calls less than a second apart (the
 * wrong-secret window, the 1/s rate limit); the rate limit is not judged after a longer stall. */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "fakebroker.h"
#include "kitgate/clock.h"
#include "kitgate/log.h"
#include "kitgate/pbkdf2.h"
#include "kitgate/snapshot.h"

#define K1 "k-test-0001"
#define K2 "k-test-0002"
#define K3 "k-test-0003"
#define STATUS "$SYS/broker/kitgate/status"
#define NO_DB "postgresql://127.0.0.1:1/kitgate?connect_timeout=1"

/* ---- a clock the tests can move forward (kg_clock__inject): the real clocks plus an offset ---- */

static _Atomic int64_t mono_offset_ms;

static int64_t test_mono(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atomic_load(&mono_offset_ms);
}

static int64_t test_wall(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct kg_clock_source test_clock = { test_mono, test_wall, NULL };

static void advance_ms(int64_t ms)
{
	atomic_fetch_add(&mono_offset_ms, ms);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A valid raw measurement, timed now. */
static const char *raw(char *buf, size_t cap, int n)
{
	snprintf(buf, cap, "{\"id\":\"9b2f0000-0000-4000-8000-%012d\",\"kitSerial\":\"\",\"datetime\":%lld,"
			"\"peripheral\":11,\"quantityType\":1,\"value\":21.5}", n, (long long)test_wall(NULL));
	return buf;
}

static void expect_start(int api, const char *const *opts)
{
	int rc = fb_start(api, opts);

	if(rc != MOSQ_ERR_SUCCESS) fb_dump_logs();
	assert_int_equal(rc, MOSQ_ERR_SUCCESS);
}

static void expect_stop(void)
{
	assert_int_equal(fb_stop(), 0);
}

/* The last $SYS status, parsed (the caller deletes it). */
static cJSON *status(void)
{
	const struct fb_pub *p = fb_pub_last(STATUS);
	cJSON *j;

	assert_non_null(p);
	assert_true(p->retain);
	j = cJSON_Parse(p->payload);
	assert_non_null(j);
	return j;
}

static double num(const cJSON *o, const char *path)
{
	char key[64];
	const char *dot;

	while((dot = strchr(path, '.'))){
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = cJSON_GetObjectItemCaseSensitive(o, key);
		path = dot + 1;
	}
	o = cJSON_GetObjectItemCaseSensitive(o, path);
	if(!cJSON_IsNumber(o)){
		fprintf(stderr, "status has no number at %s\n", path);
		fail();
	}
	return o->valuedouble;
}

static double rejected_total(const cJSON *st)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "rejected"), *it;
	double n = 0;

	cJSON_ArrayForEach(it, r){
		if(strcmp(it->string, "spool_unavailable")) n += it->valuedouble;
	}
	return n;
}

/* A fresh status: the status is published every stats_interval_s (1 s in these tests). */
static cJSON *status_now(void)
{
	advance_ms(1100);
	fb_tick();
	return status();
}

static size_t count_pubs(const char *topic)
{
	size_t i, n = 0;

	for(i = 0; i < fb_npubs(); i++){
		if(!strcmp(fb_pub_at(i)->topic, topic)) n++;
	}
	return n;
}

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kg-test-plugin-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static void rm_tree(const char *path)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* ---- init ------------------------------------------------------------------------------- */

static void expect_init_fails(const char *const *opts, const char *needle)
{
	int rc = fb_start(FB_API20, opts);

	if(rc != MOSQ_ERR_INVAL || fb_nlogs() != 1 || !fb_log_find(needle)) fb_dump_logs();
	assert_int_equal(rc, MOSQ_ERR_INVAL);
	assert_int_equal(fb_nlogs(), 1);                  /* one clear line ... */
	assert_int_equal(fb_log_at(0)->level, MOSQ_LOG_ERR);
	assert_non_null(fb_log_find(needle));             /* ... naming the option */
	assert_int_equal(fb_stop(), 0);                   /* nothing left registered */
}

static void test_init_bad_options(void **state)
{
	const char *bad_sink[] = { "sink", "mysql", NULL };
	const char *bad_range[] = { "sink", "none", "queue_limit", "0", NULL };
	const char *unknown[] = { "sink", "none", "no_such_option", "1", NULL };
	const char *bad_rate[] = { "sink", "none", "kit_rate_limit", "fast", NULL };
	char file[128];
	FILE *f;

	(void)state;
	expect_init_fails(bad_sink, "sink");
	expect_init_fails(bad_range, "queue_limit");
	expect_init_fails(unknown, "no_such_option");
	expect_init_fails(bad_rate, "kit_rate_limit");

	/* an unusable spool_dir (a regular file) stops the broker with one line naming it */
	make_tmpdir();
	snprintf(file, sizeof(file), "%s/file", tmpdir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	{
		const char *opts[] = { "sink", "postgres", "database_url", NO_DB, "spool_dir", file, NULL };
		expect_init_fails(opts, "spool_dir");
	}
	rm_tree(tmpdir);
}

static void test_init_20(void **state)
{
	const char *opts[] = { "sink", "none", NULL };
	const char *line;

	(void)state;
	expect_start(FB_API20, opts);
	line = fb_log_find("broker: mosquitto");
	assert_non_null(line);
	assert_non_null(strstr(line, "2.0 plugin functions"));
	assert_non_null(strstr(line, "delayed basic auth not available"));
	assert_non_null(strstr(line, "connect/offline events not available"));
	assert_non_null(fb_log_find("kitgate 0.2.0 loaded: sink none"));
	assert_int_equal(fb_log_count("kitgate: "), fb_nlogs());  /* every line says whose it is */
	/* one callback per event (the events module decides what each means, events.h); none of
	 * 2.1's events (2.0 would refuse them) */
	assert_int_equal(fb_callbacks(MOSQ_EVT_BASIC_AUTH), 1);
	assert_int_equal(fb_callbacks(MOSQ_EVT_ACL_CHECK), 1);
	assert_int_equal(fb_callbacks(MOSQ_EVT_MESSAGE), 1);
	assert_int_equal(fb_callbacks(MOSQ_EVT_TICK), 1);
	assert_int_equal(fb_callbacks(MOSQ_EVT_RELOAD), 1);
	assert_int_equal(fb_callbacks(MOSQ_EVT_DISCONNECT), 1);
	assert_int_equal(fb_callbacks(KG_MOSQ_EVT_CLIENT_OFFLINE), 0);
	assert_int_equal(fb_callbacks(KG_MOSQ_EVT_CONNECT), 0);
	/* options are not reloadable: RELOAD defers (anything else would stop the chain) */
	assert_int_equal(fb_reload(), MOSQ_ERR_PLUGIN_DEFER);
	/* the tick wish: 100 ms, written as 2.1 reads it (broker_api.h) */
	assert_int_equal(fb_tick(), 100);
	expect_stop();
}

static void test_init_21(void **state)
{
	const char *opts[] = { "sink", "none", NULL };
	const char *line;

	(void)state;
	assert_null(dlsym(RTLD_DEFAULT, "mosquitto_complete_basic_auth"));
	expect_start(FB_API21, opts);
	line = fb_log_find("broker: mosquitto");
	assert_non_null(line);
	assert_non_null(strstr(line, "2.1 plugin functions"));
	assert_non_null(strstr(line, "delayed basic auth available, not needed (auth none)"));
	assert_non_null(strstr(line, "CLIENT_OFFLINE handled like DISCONNECT"));
	assert_non_null(strstr(line, "CONNECT brings kits online"));
	assert_int_equal(fb_callbacks(KG_MOSQ_EVT_CLIENT_OFFLINE), 1);
	assert_int_equal(fb_callbacks(KG_MOSQ_EVT_CONNECT), 1);   /* on every 2.1, delayed logins or not */
	assert_int_equal(fb_tick(), 100);
	expect_stop();
}

/* issue 18: an option that needs 2.1 on 2.0 gets a clear line naming the version and what to do,
 * and the plugin does not start. On 2.1 the same options start the delayed-login threads. */
static void test_auth_threads_20(void **state)
{
	const char *opts[] = { "sink", "none", "auth", "postgres", "database_url", NO_DB, "auth_threads", "2", NULL };
	const char *line;
	int rc;

	(void)state;
	rc = fb_start(FB_API20, opts);
	if(rc != MOSQ_ERR_INVAL || fb_nlogs() != 1) fb_dump_logs();
	assert_int_equal(rc, MOSQ_ERR_INVAL);
	assert_int_equal(fb_nlogs(), 1);
	line = fb_log_find("auth_threads 2 needs mosquitto 2.1");
	assert_non_null(line);
	assert_non_null(strstr(line, "remove plugin_opt_auth_threads"));
	assert_non_null(strstr(line, "not starting"));
	assert_int_equal(fb_stop(), 0);
}

static void test_auth_threads_21(void **state)
{
	const char *opts[] = { "sink", "none", "auth", "postgres", "database_url", NO_DB, "auth_threads", "2", NULL };
	const char *line;

	(void)state;
	expect_start(FB_API21, opts);
	line = fb_log_find("broker: mosquitto");
	assert_non_null(line);
	assert_non_null(strstr(line, "used: PBKDF2 on 2 auth thread(s)"));
	assert_non_null(strstr(line, "CONNECT brings kits online"));
	assert_int_equal(fb_callbacks(KG_MOSQ_EVT_CONNECT), 1);
	expect_stop();   /* joins the snapshot loader and the auth threads */
}

/* auth postgres without a database: fail closed for kits, everyone else is left to password_file. */
static void test_auth_no_snapshot(void **state)
{
	const char *opts[] = { "sink", "none", "auth", "postgres", "database_url", NO_DB, NULL };
	struct mosquitto *kit = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.2", 4, true);
	struct mosquitto *anon = fb_client_new("anon", NULL, "10.0.0.3", 4, true);

	(void)state;
	expect_start(FB_API20, opts);
	assert_int_equal(fb_basic_auth(kit, "pw"), MOSQ_ERR_AUTH);
	assert_non_null(fb_log_find("refused " K1 " from 10.0.0.1: no kits snapshot loaded yet"));
	assert_int_equal(fb_basic_auth(srv, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	assert_int_equal(fb_basic_auth(anon, NULL), MOSQ_ERR_PLUGIN_DEFER);
	fb_disconnect(kit, MOSQ_ERR_AUTH);
	expect_stop();
	fb_client_free(kit);
	fb_client_free(srv);
	fb_client_free(anon);
}

/* ---- access ------------------------------------------------------------------------------ */

static void test_acl(void **state)
{
	const char *opts[] = { "sink", "none", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.2", 4, true);
	struct mosquitto *anon = fb_client_new("anon", NULL, "10.0.0.3", 4, true);

	(void)state;
	expect_start(FB_API20, opts);
	/* a kit: its own topics */
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "kit/" K1 "/#", NULL, 0, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_READ, "kit/" K1 "/config", "{}", 2, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "kit/" K1 "/log", "x", 1, 0, false), MOSQ_ERR_SUCCESS);
	/* ... not another kit's, not all kits', not its statistics */
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "kit/" K2 "/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "kit/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "kit/+/measurement/raw", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_READ, "kit/" K2 "/measurement/raw", "{}", 2, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "kit/" K2 "/log", "x", 1, 0, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "kit/" K1 "/stats/x", "1", 1, 0, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_UNSUBSCRIBE, "kit/#", NULL, 0, 0, false), MOSQ_ERR_SUCCESS);
	/* shared subscriptions are judged by their filter */
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "$share/g/kit/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "$share/g/kit/" K2 "/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(k1, MOSQ_ACL_SUBSCRIBE, "$share/g/kit/" K1 "/#", NULL, 0, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(srv, MOSQ_ACL_SUBSCRIBE, "$share/g/kit/#", NULL, 0, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(srv, MOSQ_ACL_SUBSCRIBE, "$share//kit/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	/* the service user owns kit/# */
	assert_int_equal(fb_acl(srv, MOSQ_ACL_SUBSCRIBE, "kit/#", NULL, 0, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(srv, MOSQ_ACL_READ, "kit/" K2 "/measurement/raw", "{}", 2, 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(srv, MOSQ_ACL_WRITE, "kit/" K2 "/config", "{}", 2, 1, false), MOSQ_ERR_SUCCESS);
	/* anonymous: no kit topic */
	assert_int_equal(fb_acl(anon, MOSQ_ACL_READ, "kit/" K1 "/config", "{}", 2, 1, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_acl(anon, MOSQ_ACL_SUBSCRIBE, "kit/" K1 "/#", NULL, 0, 1, false), MOSQ_ERR_ACL_DENIED);
	/* other topics follow other_topics (default defer: password_file's acl_file decides) */
	assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "office/temp", "1", 1, 0, false), MOSQ_ERR_PLUGIN_DEFER);
	assert_int_equal(fb_acl(anon, MOSQ_ACL_SUBSCRIBE, "office/#", NULL, 0, 0, false), MOSQ_ERR_PLUGIN_DEFER);
	expect_stop();

	{
		const char *allow[] = { "sink", "none", "other_topics", "allow", NULL };
		expect_start(FB_API20, allow);
		assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "office/temp", "1", 1, 0, false), MOSQ_ERR_SUCCESS);
		assert_int_equal(fb_acl(k1, MOSQ_ACL_WRITE, "kit/" K2 "/log", "x", 1, 0, false), MOSQ_ERR_ACL_DENIED);
		expect_stop();
	}
	fb_client_free(k1);
	fb_client_free(srv);
	fb_client_free(anon);
}

static void test_basic_auth(void **state)
{
	const char *opts[] = { "sink", "none", NULL };
	const char *bad[] = { "k+1", "k#1", "kit/k-1" };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *thief = fb_client_new("c1", K2, "10.0.0.9", 4, true);
	struct mosquitto *srv = fb_client_new("c1", "server", "10.0.0.2", 4, true);
	size_t i;

	(void)state;
	expect_start(FB_API20, opts);
	/* usernames that could not be a serial are refused at CONNECT */
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		struct mosquitto *c = fb_client_new("x", bad[i], "10.0.0.5", 5, true);
		assert_int_equal(fb_basic_auth(c, "pw"), MOSQ_ERR_AUTH);
		fb_disconnect(c, MOSQ_ERR_AUTH);
		fb_client_free(c);
	}
	assert_non_null(fb_log_find("refused CONNECT from 10.0.0.5: username \"k+1\" contains '+', '#' or '/'"));
	/* a kit's login is left to password_file (auth none) and its client id becomes its own ... */
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_tick();
	/* ... so another user presenting it is refused, a service user is not */
	assert_int_equal(fb_basic_auth(thief, "pw"), MOSQ_ERR_AUTH);
	assert_non_null(fb_log_find("refused CONNECT of " K2 " from 10.0.0.9: client id \"c1\" belongs to another user"));
	fb_disconnect(thief, MOSQ_ERR_AUTH);
	assert_int_equal(fb_basic_auth(srv, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_disconnect(srv, 0);
	fb_disconnect(k1, 0);
	expect_stop();
	fb_client_free(k1);
	fb_client_free(thief);
	fb_client_free(srv);
}

/* ---- measurements -------------------------------------------------------------------------- */

static void test_measurements_sink_none(void **state)
{
	const char *opts[] = { "sink", "none", "stats_interval_s", "1", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	char buf[512];
	cJSON *st;
	int acl_rc;

	(void)state;
	expect_start(FB_API20, opts);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_tick();
	/* valid: allowed by the ACL WRITE check, accepted by MESSAGE */
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 1), 1, false, &acl_rc),
			MOSQ_ERR_SUCCESS);
	assert_int_equal(acl_rc, MOSQ_ERR_SUCCESS);
	/* invalid: denied in the ACL WRITE check (0x87; never routed, never reaches MESSAGE), counted */
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", "{", 1, false, &acl_rc), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(acl_rc, MOSQ_ERR_ACL_DENIED);
	assert_non_null(fb_log_find("rejected measurement from kit " K1 " on kit/" K1 "/measurement/raw: malformed"));
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", "{\"value\":1}", 1, false, &acl_rc),
			MOSQ_ERR_ACL_DENIED);
	/* a MESSAGE the plugin never ACL-checked (a bridge connection) is validated there */
	assert_int_equal(fb_message(k1, "kit/" K1 "/measurement/raw", "[]", 0, false), MOSQ_ERR_ACL_DENIED);
	assert_int_equal(fb_message(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 2), 0, false), MOSQ_ERR_SUCCESS);
	/* not a measurement: passes untouched */
	assert_int_equal(fb_publish(k1, "kit/" K1 "/log", "hello", 0, false, &acl_rc), MOSQ_ERR_SUCCESS);

	st = status_now();
	assert_int_equal((int)num(st, "accepted"), 2);
	assert_int_equal((int)num(st, "rejected.malformed"), 2);        /* "{" and "[]" */
	assert_int_equal((int)rejected_total(st), 3);
	cJSON_Delete(st);
	/* the kit's retained status */
	assert_non_null(fb_pub_last("$SYS/broker/kitgate/kits/" K1));
	fb_disconnect(k1, 0);
	expect_stop();
	fb_client_free(k1);
}

/* A real stream: sink postgres (its database unreachable, so records stay in the spool) with a
 * spool in a scratch directory; a will is validated at its ACL WRITE and pushed by the next event. */
static void test_handoff_and_will(void **state)
{
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *k2 = fb_client_new("c2", K2, "10.0.0.2", 4, true);
	struct mosquitto *k3 = fb_client_new("c3", K3, "10.0.0.3", 4, true);
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.4", 4, true);
	char buf[512];
	size_t npubs;
	cJSON *st;

	(void)state;
	make_tmpdir();
	{
		const char *opts[] = { "sink", "postgres", "database_url", NO_DB, "spool_dir", tmpdir,
			"stats_interval_s", "1", "shutdown_timeout_ms", "100", "pg_connections", "1", NULL };
		expect_start(FB_API20, opts);
	}
	assert_non_null(fb_log_find("loaded: sink postgres"));
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	assert_int_equal(fb_basic_auth(k2, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	assert_int_equal(fb_basic_auth(k3, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_tick();
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 1), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	st = status_now();
	assert_int_equal((int)num(st, "accepted"), 1);
	assert_int_equal((int)num(st, "streams.measurements.spool.appended"), 1);
	assert_int_equal((int)num(st, "wills.accepted"), 0);
	cJSON_Delete(st);
	npubs = fb_npubs();

	/* k2 goes away as mosquitto does it (src/context.c): DISCONNECT, then its will's ACL WRITE
	 * (validated: allowed), then the will is freed; no MESSAGE follows: the next event (here its
	 * delivery to a subscriber, a READ check) pushes it */
	fb_disconnect(k2, 0);
	assert_int_equal(fb_will(k2, "kit/" K2 "/measurement/raw", raw(buf, sizeof(buf), 2), 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_acl(srv, MOSQ_ACL_READ, "kit/" K2 "/measurement/raw", buf, strlen(buf), 1, false), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_npubs(), npubs);        /* no TICK since */
	st = status_now();
	assert_int_equal((int)num(st, "accepted"), 2);
	assert_int_equal((int)num(st, "wills.accepted"), 1);
	cJSON_Delete(st);
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 3), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	/* an invalid will is denied (not sent) and not counted as a will */
	fb_disconnect(k3, 0);
	assert_int_equal(fb_will(k3, "kit/" K3 "/measurement/raw", "{\"value\":\"x\"}", 1, false), MOSQ_ERR_ACL_DENIED);
	/* a will followed by nothing but TICK */
	fb_disconnect(k1, 0);
	assert_int_equal(fb_will(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 4), 1, false), MOSQ_ERR_SUCCESS);
	st = status_now();
	assert_int_equal((int)num(st, "accepted"), 4);
	assert_int_equal((int)num(st, "wills.accepted"), 2);
	assert_int_equal((int)num(st, "wills.unsaved"), 0);
	assert_int_equal((int)num(st, "streams.measurements.spool.appended"), 4);
	assert_int_equal((int)rejected_total(st), 1);
	cJSON_Delete(st);
	expect_stop();
	fb_client_free(k1);
	fb_client_free(k2);
	fb_client_free(k3);
	fb_client_free(srv);
	rm_tree(tmpdir);
}

/* kit_rate_limit: over the limit a kit's publish is dropped, never a disconnect: 2.1's quota code
 * (v5 0x97), 2.0's ACL_DENIED (0x87; any other code would disconnect there). */
static void rate_limit_on(int api, int want)
{
	const char *opts[] = { "sink", "none", "kit_rate_limit", "1:1", "stats_interval_s", "1", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 5, true);
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.2", 5, true);
	char buf[512];
	struct timespec a, b;
	bool limited;
	cJSON *st;
	int rc;

	expect_start(api, opts);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_tick();
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 1), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	rc = fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 2), 1, false, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* the bucket (1/s, burst 1) refills only if the two publishes were a second apart (a stalled
	 * machine): then there is nothing to check */
	limited = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000;
	if(limited) assert_int_equal(rc, want);
	else fprintf(stderr, "rate_limit_on: the publishes were a second apart; the limit is not checked\n");
	/* service users are not limited */
	assert_int_equal(fb_publish(srv, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 3), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	st = status_now();
	assert_int_equal((int)num(st, "rejected.rate_limited"), limited ? 1 : 0);
	assert_int_equal((int)num(st, "accepted"), limited ? 2 : 3);
	cJSON_Delete(st);
	fb_disconnect(k1, 0);
	expect_stop();
	fb_client_free(k1);
	fb_client_free(srv);
}

static void test_rate_limit_20(void **state)
{
	(void)state;
	rate_limit_on(FB_API20, MOSQ_ERR_ACL_DENIED);
}

static void test_rate_limit_21(void **state)
{
	(void)state;
	rate_limit_on(FB_API21, KG_MOSQ_ERR_QUOTA_EXCEEDED);
}

/* ---- TICK: the outbox and the $SYS status -------------------------------------------------- */

static void *worker_logs(void *arg)
{
	(void)arg;
	kg_log(KG_LOG_WARNING, "a line from another thread");
	return NULL;
}

static void test_tick_outbox_and_status(void **state)
{
	const char *opts[] = { "sink", "none", "stats_interval_s", "1", NULL };
	const struct fb_pub *p;
	pthread_t t;
	size_t n;
	cJSON *st;

	(void)state;
	expect_start(FB_API20, opts);
	/* another thread's line waits in the outbox until TICK (mosquitto_log_printf is not
	 * thread-safe); the fake counts any mosquitto_* call off the broker thread (fb_stop) */
	assert_int_equal(pthread_create(&t, NULL, worker_logs, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(fb_log_count("a line from another thread"), 0);
	n = fb_npubs();
	fb_tick();
	assert_int_equal(fb_log_count("kitgate: a line from another thread"), 1);
	assert_int_equal(fb_log_at(fb_nlogs() - 1)->level, MOSQ_LOG_WARNING);
	/* the first TICK publishes the status, retained, QoS 0 ... */
	assert_true(fb_npubs() > n);
	p = fb_pub_last(STATUS);
	assert_non_null(p);
	assert_int_equal(p->qos, 0);
	st = status();
	assert_int_equal((int)num(st, "accepted"), 0);
	assert_int_equal((int)num(st, "streams.measurements.queue_depth"), 0);
	cJSON_Delete(st);
	/* ... then every stats_interval_s on the monotonic clock */
	assert_int_equal(count_pubs(STATUS), 1);
	fb_tick();
	assert_int_equal(count_pubs(STATUS), 1);
	advance_ms(1100);
	fb_tick();
	assert_int_equal(count_pubs(STATUS), 2);
	expect_stop();
}

/* ---- the live view: rolling statistics published on MQTT in TICK ------------------------------ */

static void test_live_statistics(void **state)
{
	const char *opts[] = { "sink", "none", "other_topics", "allow", "stats_topics", "office/#", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	const struct fb_pub *p;
	char buf[512];
	cJSON *j;

	(void)state;
	expect_start(FB_API20, opts);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_tick();
	assert_int_equal(fb_publish(k1, "office/temp", "{\"value\":20}", 0, false, NULL), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_publish(k1, "office/temp", "{\"value\":22}", 0, false, NULL), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_publish(k1, "office/door", "open", 0, false, NULL), MOSQ_ERR_SUCCESS);  /* no number */
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 1), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	assert_null(fb_pub_last("office/temp/stats"));   /* published in TICK, not in the callback */
	advance_ms(1100);
	fb_tick();
	p = fb_pub_last("office/temp/stats");
	assert_non_null(p);
	assert_true(p->retain);
	j = cJSON_Parse(p->payload);
	assert_non_null(j);
	assert_int_equal((int)num(j, "count_1min"), 2);
	assert_true(num(j, "avg_1min") == 21.0);
	assert_true(num(j, "latest") == 22.0);
	cJSON_Delete(j);
	assert_null(fb_pub_last("office/door/stats"));
	/* a kit's measurement: its stream kit/<serial>/stats/<peripheral>/<quantity type> */
	p = fb_pub_last("kit/" K1 "/stats/11/1");
	assert_non_null(p);
	j = cJSON_Parse(p->payload);
	assert_non_null(j);
	assert_int_equal((int)num(j, "count_1min"), 1);
	assert_true(num(j, "latest") == 21.5);
	cJSON_Delete(j);
	fb_disconnect(k1, 0);
	expect_stop();
	fb_client_free(k1);
}

/* ---- bridge routes: a Kafka stream of its own (librdkafka's in-process mock cluster) ----------- */

static void test_bridge(void **state)
{
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.4", 4, true);
	char err[256], longtopic[300];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *mock_rk;
	rd_kafka_mock_cluster_t *mock;
	int waited, delivered = 0;
	cJSON *st;

	(void)state;
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(mock_rk);
	mock = rd_kafka_mock_cluster_new(mock_rk, 1);
	assert_non_null(mock);
	{
		const char *opts[] = { "sink", "none", "other_topics", "allow", "bridge_topics", "plant/#",
			"kafka_brokers", rd_kafka_mock_cluster_bootstraps(mock), "spool_dir", "off",
			"stats_interval_s", "1", "shutdown_timeout_ms", "2000", NULL };
		expect_start(FB_API20, opts);
	}
	assert_non_null(fb_log_find("bridge routes 1"));
	assert_int_equal(fb_publish(srv, "plant/p1/status", "{\"ok\":1}", 1, false, NULL), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_publish(srv, "office/temp", "1", 1, false, NULL), MOSQ_ERR_SUCCESS);   /* not a route */
	/* a topic Kafka cannot be named after: routed to MQTT subscribers, not forwarded, counted */
	snprintf(longtopic, sizeof(longtopic), "plant/%0280d", 0);
	assert_int_equal(fb_publish(srv, longtopic, "{}", 1, false, NULL), MOSQ_ERR_SUCCESS);
	assert_non_null(fb_log_find("bridge: topic"));
	for(waited = 0; waited < 10000 && !delivered; waited += 20){
		st = status_now();
		delivered = (int)num(st, "bridge.delivered");
		if(!delivered){
			cJSON_Delete(st);
			sleep_ms(20);
		}
	}
	assert_int_equal(delivered, 1);
	assert_int_equal((int)num(st, "bridge.forwarded"), 1);
	assert_int_equal((int)num(st, "bridge.refused_topic"), 1);
	assert_int_equal((int)num(st, "accepted"), 0);
	cJSON_Delete(st);
	expect_stop();
	fb_client_free(srv);
	rd_kafka_mock_cluster_destroy(mock);
	rd_kafka_destroy(mock_rk);
}

/* ---- 2.1's events: CLIENT_OFFLINE closes a kit's session like DISCONNECT --------------------- */

static bool kit_online(const char *serial)
{
	char topic[128];
	const struct fb_pub *p;
	cJSON *j, *o;
	bool on;

	snprintf(topic, sizeof(topic), "$SYS/broker/kitgate/kits/%s", serial);
	p = fb_pub_last(topic);
	assert_non_null(p);
	j = cJSON_Parse(p->payload);
	assert_non_null(j);
	o = cJSON_GetObjectItemCaseSensitive(j, "online");
	assert_true(cJSON_IsBool(o));
	on = cJSON_IsTrue(o);
	cJSON_Delete(j);
	return on;
}

static void test_client_offline_21(void **state)
{
	const char *opts[] = { "sink", "none", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, false);   /* a persistent session */

	(void)state;
	expect_start(FB_API21, opts);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	fb_connect(k1);   /* 2.1 raises CONNECT after the CONNACK: online (events.h) */
	advance_ms(1100);
	fb_tick();
	assert_true(kit_online(K1));
	fb_client_offline(k1, 0);
	advance_ms(1100);
	fb_tick();
	assert_false(kit_online(K1));
	expect_stop();
	fb_client_free(k1);
}

/* ---- auth postgres against a kits snapshot from a test source -------------------------------- */

static char hash_pw[256], hash_pw2[256], hash_k2[256];
static _Atomic int source_variant;      /* 1: K1's secret changed */

static struct kg_snapshot *test_source(void *arg)
{
	struct kg_snapshot *s = kg_snapshot__new();
	int q;

	(void)arg;
	if(!s) return NULL;
	if(kg_snapshot__add_kit(s, 1, K1, atomic_load(&source_variant) ? hash_pw2 : hash_pw)
			|| kg_snapshot__add_kit(s, 2, K2, hash_k2)
			|| kg_snapshot__add_peripheral(s, 11, 1, "{}") || kg_snapshot__add_peripheral(s, 21, 2, "{}")){
		kg_snapshot__unref(s);
		return NULL;
	}
	for(q = 1; q <= 5; q++){
		if(kg_snapshot__add_quantity_type(s, q)){
			kg_snapshot__unref(s);
			return NULL;
		}
	}
	if(kg_snapshot__seal(s)){
		kg_snapshot__unref(s);
		return NULL;
	}
	return s;
}

static void hashes(void)
{
	/* AstroPlant's format with few iterations: the checks are about paths, not cost */
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 1000, "saltsaltsaltsaltsalt", "pw", 32, hash_pw, sizeof(hash_pw)), 0);
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 1000, "saltsaltsaltsaltsalt", "pw2", 32, hash_pw2, sizeof(hash_pw2)), 0);
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 1000, "tlastlastlastlastlas", "secret2", 32, hash_k2, sizeof(hash_k2)), 0);
	atomic_store(&source_variant, 0);
	kg_snapshot__test_source(test_source, NULL);
}

/* TICK every 5 ms until cond() holds; false after timeout_ms. */
static bool tick_until(bool (*cond)(void), int timeout_ms)
{
	int waited;

	for(waited = 0; waited <= timeout_ms; waited += 5){
		fb_tick();
		if(cond()) return true;
		sleep_ms(5);
	}
	return false;
}

static bool snapshot_taken(void) { return fb_log_find("first kits snapshot") != NULL; }
static bool kicked(void) { return fb_nkicks() > 0; }
static bool one_completion(void) { return fb_ncompletions() >= 1; }
static bool two_completions(void) { return fb_ncompletions() >= 2; }

static void test_auth_postgres_20(void **state)
{
	/* the whole cold-login budget (1 s of checks per second): the paths, not the budget, are
	 * under test here (test_authbudget), and valgrind makes each check slow */
	const char *opts[] = { "sink", "none", "auth", "postgres", "database_url", NO_DB, "auth_refresh_s", "1",
		"stats_interval_s", "1", "auth_cold_budget_ms", "1000", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *k2 = fb_client_new("c2", K2, "10.0.0.2", 4, true);
	struct mosquitto *other = fb_client_new("o", "someone", "10.0.0.3", 4, true);
	struct mosquitto *srv = fb_client_new("ingest", "server", "10.0.0.4", 4, true);
	char buf[512];
	bool in_window;
	int64_t t0;
	cJSON *st;

	(void)state;
	hashes();
	expect_start(FB_API20, opts);
	kg_snapshot__test_source(NULL, NULL);   /* the loader has its copy */
	assert_true(tick_until(snapshot_taken, 10000));
	assert_non_null(fb_log_find("first kits snapshot: 2 kits; kits may log in"));
	/* the right secret (PBKDF2 on the broker thread), then from the login cache */
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_SUCCESS);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_SUCCESS);
	/* a wrong secret, then the same source is refused unchecked for a while */
	t0 = test_mono(NULL);
	assert_int_equal(fb_basic_auth(k2, "nope"), MOSQ_ERR_AUTH);
	assert_non_null(fb_log_find("auth: refused kit " K2 " from 10.0.0.2: wrong secret"));
	assert_int_equal(fb_basic_auth(k2, "nope2"), MOSQ_ERR_AUTH);
	in_window = test_mono(NULL) - t0 < 1000;   /* the first window is 1 s: unless the machine stalled */
	if(in_window) assert_non_null(fb_log_find("auth: refused kit " K2 " from 10.0.0.2 unchecked: recent failed logins"));
	assert_int_equal(fb_basic_auth(k2, NULL), MOSQ_ERR_AUTH);
	assert_non_null(fb_log_find("auth: refused kit " K2 " from 10.0.0.2: no password"));
	fb_disconnect(k2, MOSQ_ERR_AUTH);
	/* a service user is left to password_file */
	assert_int_equal(fb_basic_auth(srv, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	/* the snapshot's ownership rules in the measurement path: peripheral 21 is K2's */
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", raw(buf, sizeof(buf), 1), 1, false, NULL),
			MOSQ_ERR_SUCCESS);
	snprintf(buf, sizeof(buf), "{\"id\":\"9b2f0000-0000-4000-8000-000000000002\",\"kitSerial\":\"\",\"datetime\":%lld,"
			"\"peripheral\":21,\"quantityType\":1,\"value\":1}", (long long)test_wall(NULL));
	assert_int_equal(fb_publish(k1, "kit/" K1 "/measurement/raw", buf, 1, false, NULL), MOSQ_ERR_ACL_DENIED);
	st = status_now();
	assert_int_equal((int)num(st, "auth.ok"), 1);
	assert_int_equal((int)num(st, "auth.cached"), 1);
	assert_int_equal((int)num(st, "auth.refused"), 3);
	assert_int_equal((int)num(st, "auth.backoff_refused"), in_window ? 1 : 0);
	assert_int_equal((int)num(st, "auth.no_password"), 1);
	assert_true(num(st, "auth_snapshot.loads") >= 1);
	assert_int_equal((int)num(st, "accepted"), 1);
	assert_int_equal((int)num(st, "rejected.foreign_peripheral"), 1);
	cJSON_Delete(st);
	/* K1's secret changes: the next snapshot disconnects it; the new secret works, the old not */
	atomic_store(&source_variant, 1);
	assert_true(tick_until(kicked, 10000));
	assert_int_equal(fb_nkicks(), 1);
	assert_string_equal(fb_kick_at(0), K1);
	assert_non_null(fb_log_find("auth: disconnecting kit " K1 ": its secret changed or it was deleted"));
	fb_disconnect(k1, 0);
	assert_int_equal(fb_basic_auth(k1, "pw2"), MOSQ_ERR_SUCCESS);
	fb_disconnect(k1, 0);
	assert_int_equal(fb_basic_auth(k1, "pw"), MOSQ_ERR_AUTH);
	fb_disconnect(k1, MOSQ_ERR_AUTH);
	/* not a kit: left to password_file and other plugins (after a dummy PBKDF2 with AstroPlant's
	 * 15,000 iterations, last: under valgrind it spends the cold-login budget for a second) */
	assert_int_equal(fb_basic_auth(other, "pw"), MOSQ_ERR_PLUGIN_DEFER);
	expect_stop();
	fb_client_free(k1);
	fb_client_free(k2);
	fb_client_free(other);
	fb_client_free(srv);
}

/* 2.1: a login that needs PBKDF2 is delayed, hashed on an auth thread and completed in TICK with
 * mosquitto_complete_basic_auth (success raises CONNECT, refusal disconnects inside the call). */
static void test_auth_delayed_21(void **state)
{
	const char *opts[] = { "sink", "none", "auth", "postgres", "database_url", NO_DB, "auth_threads", "1",
		"stats_interval_s", "1", NULL };
	struct mosquitto *k1 = fb_client_new("c1", K1, "10.0.0.1", 4, true);
	struct mosquitto *k1b = fb_client_new("c1b", K1, "10.0.0.1", 4, true);
	struct mosquitto *k2 = fb_client_new("c2", K2, "10.0.0.2", 4, true);
	cJSON *st;

	(void)state;
	hashes();
	expect_start(FB_API21, opts);
	kg_snapshot__test_source(NULL, NULL);
	assert_true(tick_until(snapshot_taken, 10000));
	assert_int_equal(fb_basic_auth(k1, "pw"), KG_MOSQ_ERR_AUTH_DELAYED);
	assert_true(tick_until(one_completion, 10000));
	assert_string_equal(fb_completion_at(0)->client_id, "c1");
	assert_int_equal(fb_completion_at(0)->result, MOSQ_ERR_SUCCESS);
	/* the CONNECT that the completion raised put the kit online */
	advance_ms(1100);
	fb_tick();
	assert_true(kit_online(K1));
	/* the login cache answers at once */
	assert_int_equal(fb_basic_auth(k1b, "pw"), MOSQ_ERR_SUCCESS);
	/* a wrong secret is refused when its check comes back */
	assert_int_equal(fb_basic_auth(k2, "nope"), KG_MOSQ_ERR_AUTH_DELAYED);
	assert_true(tick_until(two_completions, 10000));
	assert_string_equal(fb_completion_at(1)->client_id, "c2");
	assert_int_equal(fb_completion_at(1)->result, MOSQ_ERR_AUTH);
	assert_non_null(fb_log_find("auth: refused kit " K2 " from 10.0.0.2 (client c2): wrong secret"));
	st = status_now();
	assert_int_equal((int)num(st, "auth.delayed"), 2);
	assert_int_equal((int)num(st, "auth.ok"), 1);
	assert_int_equal((int)num(st, "auth.cached"), 1);
	assert_int_equal((int)num(st, "auth.refused"), 1);
	assert_int_equal((int)num(st, "auth.threads"), 1);
	cJSON_Delete(st);
	fb_disconnect(k1, 0);
	fb_disconnect(k1b, 0);
	expect_stop();
	fb_client_free(k1);
	fb_client_free(k1b);
	fb_client_free(k2);
}

/* After a failed assertion: unload the plugin, so the leak check reports only real leaks. */
static int teardown(void **state)
{
	(void)state;
	(void)fb_stop();
	kg_snapshot__test_source(NULL, NULL);
	return 0;
}
#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* 2.0 first: once the plugin looked a 2.1 function up, glibc keeps its object loaded
		 * (fakebroker.h) */
		T(test_init_bad_options),
		T(test_init_20),
		T(test_auth_threads_20),
		T(test_auth_no_snapshot),
		T(test_acl),
		T(test_basic_auth),
		T(test_measurements_sink_none),
		T(test_handoff_and_will),
		T(test_rate_limit_20),
		T(test_tick_outbox_and_status),
		T(test_live_statistics),
		T(test_bridge),
		T(test_auth_postgres_20),
		T(test_init_21),
		T(test_auth_threads_21),
		T(test_rate_limit_21),
		T(test_client_offline_21),
		T(test_auth_delayed_21),
	};
	static const char *env[] = { "KITGATE_SINK", "DATABASE_URL", "LOG_LEVEL", "KAFKA_HOST", "KAFKA_PORT",
		"KAFKA_USERNAME", "KAFKA_PASSWORD", NULL };
	int rc, i;

	for(i = 0; env[i]; i++) unsetenv(env[i]);   /* the options' environment fallbacks */
	kg_clock__inject(&test_clock);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	kg_clock__inject(NULL);
	fb_clear();
	return rc;
}
