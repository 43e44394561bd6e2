/* test_statusdoc.c -- unit tests for plugin/live/statusdoc.c and the broker-wide table of
 * plugin/live/statusmodel.c: the $SYS status JSON, the HTTP API snapshot and the /metrics text,
 * all written from one struct kg_broker_status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/statusdoc.h"

static void sample(struct kg_broker_status *s)
{
	memset(s, 0, sizeof(*s));
	s->accepted = 11;
	s->rejected[KG_MALFORMED] = 3;
	s->rejected[KG_RATE_LIMITED] = 2;
	s->spool_unavailable = 4;
	s->broker_ns = 1234567;
	s->broker_msgs = 1000;       /* 1234.567 ns per message */
	s->bridge_forwarded = 9;
	s->bridge_refused = 1;
	s->auth.ok = 5;
	s->auth.pbkdf2_ns = 2500000; /* 2 ms (whole milliseconds) */
	s->auth.stale = 6;
	s->version = "9.9.9";
	s->kits_known = 8;
	s->kits_online = 2;
	s->stats.group_evicted = 12;
	s->snapshot_ns = 3000000000u;
	s->http_responses[1] = 13;
	s->streams[0].kind = "postgres";
	s->streams[0].depth = 7;
	s->streams[1].kind = "kafka";
	s->streams[1].worker.sink.written = 14;
	s->streams[1].worker.reasons[0].reason = "refused_topic";
	s->streams[1].worker.reasons[0].n = 5;
	s->streams[1].worker.nreasons = 1;
}

static double num(const cJSON *o, const char *path)
{
	char buf[128], *save = NULL, *k;

	snprintf(buf, sizeof(buf), "%s", path);
	for(k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) o = cJSON_GetObjectItemCaseSensitive(o, k);
	if(!cJSON_IsNumber(o)) fail_msg("%s is not a number", path);
	return o->valuedouble;
}

static void test_sys(void **state)
{
	struct kg_broker_status s;
	char *text;
	cJSON *o;

	(void)state;
	sample(&s);
	text = kg_statusdoc__sys(&s);
	assert_non_null(text);
	/* the order the status always had: counters, the measurement stream's fields, bridge, streams, auth */
	assert_true(strncmp(text, "{\"accepted\":11,\"rejected\":{\"too_large\":0,\"malformed\":3,", 52) == 0);
	assert_true(strstr(text, "\"rate_limited\":2,\"spool_unavailable\":4},\"unacked_spool_unavailable\":0,\"queue_depth\":7,")
			!= NULL);
	assert_true(strstr(text, "\"queue_depth\"") < strstr(text, "\"bridge\"") && strstr(text, "\"bridge\"") < strstr(text, "\"streams\"")
			&& strstr(text, "\"streams\"") < strstr(text, "\"auth\""));
	o = cJSON_Parse(text);
	cJSON_free(text);
	assert_non_null(o);
	assert_true(num(o, "bridge.refused_topic") == 6); /* the broker thread's and the bridge worker's */
	assert_true(num(o, "bridge.delivered") == 14);
	assert_true(num(o, "streams.measurements.queue_depth") == 7);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "streams"), "bridge"), "sink"), "kind")->valuestring,
			"kafka");
	assert_true(num(o, "auth.pbkdf2_ms") == 2);
	assert_true(num(o, "auth.superseded") == 6);
	assert_true(num(o, "broker_thread_ns_per_msg") == 1234.6);
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "auth_snapshot")); /* no auth postgres */
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "kits"));          /* the API's, not $SYS's */
	cJSON_Delete(o);

	s.snapshot_loader = true;
	s.snapshot_loads = 3;
	text = kg_statusdoc__sys(&s);
	o = cJSON_Parse(text);
	cJSON_free(text);
	assert_true(num(o, "auth_snapshot.loads") == 3);
	assert_true(num(o, "auth_snapshot.unknown_passed") == 0);
	cJSON_Delete(o);
}

static void test_api(void **state)
{
	struct kg_broker_status s;
	struct kg_kits *kits = kg_kits__new(4);
	cJSON *o, *st, *rej;

	(void)state;
	sample(&s);
	assert_non_null(kits);
	kg_kits__reject(kits, 42, KG_BAD_TIME, "k-1", 3, "kit/k-1/measurement/raw", "in the \"future\"");
	o = kg_statusdoc__api(&s, kits, 777);
	assert_non_null(o);
	assert_true(num(o, "now") == 777);
	st = cJSON_GetObjectItemCaseSensitive(o, "status");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(st, "version")->valuestring, "9.9.9");
	assert_true(num(st, "rejected.malformed") == 3);
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "rejected"), "spool_unavailable"));
	assert_true(num(st, "queue_depth") == 7);
	assert_true(num(st, "kits.known") == 8);
	assert_true(num(st, "stats.kit_evicted") == 12);
	assert_null(cJSON_GetObjectItemCaseSensitive(st, "auth"));   /* $SYS only */
	assert_null(cJSON_GetObjectItemCaseSensitive(st, "streams"));
	rej = cJSON_GetObjectItemCaseSensitive(o, "rejections");
	assert_int_equal(cJSON_GetArraySize(rej), 1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rej, 0), "detail")->valuestring, "in the \"future\"");
	cJSON_Delete(o);
	kg_kits__free(kits);
}

static void test_metrics(void **state)
{
	struct kg_broker_status s;
	char *t, *line, *save = NULL, last[128] = "";
	int families = 0;

	(void)state;
	sample(&s);
	t = kg_statusdoc__metrics(&s);
	assert_non_null(t);
	assert_non_null(strstr(t, "# TYPE kitgate_measurements_rejected_total counter\n"
			"kitgate_measurements_rejected_total{reason=\"too_large\"} 0\n"
			"kitgate_measurements_rejected_total{reason=\"malformed\"} 3\n"));
	assert_non_null(strstr(t, "\nkitgate_measurements_rejected_total{reason=\"rate_limited\"} 2\n"));
	assert_non_null(strstr(t, "\nkitgate_broker_thread_seconds_per_message 1.23456"));
	assert_non_null(strstr(t, "\nkitgate_http_snapshot_seconds_total 3\n"));
	assert_non_null(strstr(t, "\nkitgate_http_responses_total{code=\"4xx\"} 13\n"));
	assert_non_null(strstr(t, "\nkitgate_queue_depth 7\n"));                 /* the measurement stream */
	assert_non_null(strstr(t, "# HELP kitgate_bridge_sink_connected Whether the sink (kafka) is connected.\n"));
	assert_null(strstr(t, "kitgate_http_sse_events_total"));             /* no HTTP server */
	for(line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)){
		char name[128], type[16];

		if(sscanf(line, "# TYPE %127s %15s", name, type) != 2) continue;
		families++;
		assert_true(strcmp(name, last) != 0);
		snprintf(last, sizeof(last), "%s", name);
		assert_int_equal(!strcmp(type, "counter"), strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
	}
	assert_true(families >= 40);
	free(t);

	s.http = true;
	s.sse_events = 5;
	t = kg_statusdoc__metrics(&s);
	assert_non_null(strstr(t, "\nkitgate_http_sse_events_total 5\n"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sys),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
