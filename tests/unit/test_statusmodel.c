/* test_statusmodel.c -- unit tests for plugin/live/statusmodel.c: one stream table feeding the
 * $SYS status JSON, the HTTP API status and the Prometheus text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/statusmodel.h"

static void sample(struct kg_stream_status *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = "kafka";
	s->spool_enabled = true;
	s->depth = 7;
	s->spilling = true;
	s->spilled = 3;
	s->handed = 100;
	s->spool.bytes = 4096;
	s->spool.checkpoint = 1000;
	s->spool.end = 1500;
	s->spool.append_errors = 2;
	s->worker.settled = 90;
	s->worker.sink.connected = true;
	s->worker.sink.written = 88;
	s->worker.reasons[0].reason = "refused_topic";
	s->worker.reasons[0].n = 4;
	s->worker.nreasons = 1;
	snprintf(s->worker.sink.last_error, sizeof(s->worker.sink.last_error), "bad \"quote\"\n");
}

static double num(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

	if(b) x = cJSON_GetObjectItemCaseSensitive(x, b);
	if(!cJSON_IsNumber(x)) fail_msg("%s.%s is not a number", a, b ? b : "");
	return x->valuedouble;
}

static void test_sys_document(void **state)
{
	static const char *const spool_keys[] = {"enabled", "bytes", "appended", "append_errors", "corrupt_skipped",
		"torn_tails", "checkpoint", "end", "missing_bytes", "refused_segments"};
	static const char *const sink_keys[] = {"kind", "running", "connected", "in_flight", "taken", "settled", "ok",
		"inserted", "delivered", "duplicates", "rejected", "errors", "reconnects", "rewinds", "lost",
		"corrupt_records", "foreign_records", "last_error"};
	struct kg_stream_status s;
	cJSON *o = cJSON_CreateObject(), *spool, *sink;
	size_t i;

	(void)state;
	sample(&s);
	assert_int_equal(kg_statusmodel__json(o, &s, KG_STATUS_SYS), 0);
	assert_true(num(o, "queue_depth", NULL) == 7);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "spilling")));
	assert_true(num(o, "spilled", NULL) == 3);
	spool = cJSON_GetObjectItemCaseSensitive(o, "spool");
	sink = cJSON_GetObjectItemCaseSensitive(o, "sink");
	assert_int_equal(cJSON_GetArraySize(spool), sizeof(spool_keys) / sizeof(spool_keys[0]));
	assert_int_equal(cJSON_GetArraySize(sink), sizeof(sink_keys) / sizeof(sink_keys[0]));
	for(i = 0; i < sizeof(spool_keys) / sizeof(spool_keys[0]); i++) assert_non_null(cJSON_GetObjectItemCaseSensitive(spool, spool_keys[i]));
	for(i = 0; i < sizeof(sink_keys) / sizeof(sink_keys[0]); i++) assert_non_null(cJSON_GetObjectItemCaseSensitive(sink, sink_keys[i]));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(sink, "kind")->valuestring, "kafka");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(sink, "last_error")->valuestring, "bad \"quote\"\n");
	assert_true(num(sink, "inserted", NULL) == 88 && num(sink, "delivered", NULL) == 88);
	assert_true(num(sink, "rejected", "refused_topic") == 4);
	assert_null(cJSON_GetObjectItemCaseSensitive(sink, "lag_records"));  /* API only */
	assert_null(cJSON_GetObjectItemCaseSensitive(spool, "backlog_bytes"));
	cJSON_Delete(o);
}

static void test_api_document(void **state)
{
	struct kg_stream_status s;
	cJSON *o = cJSON_CreateObject();

	(void)state;
	sample(&s);
	assert_int_equal(kg_statusmodel__json(o, &s, KG_STATUS_API), 0);
	assert_true(num(o, "sink", "lag_records") == 10);
	assert_true(num(o, "spool", "backlog_bytes") == 500);
	assert_true(num(o, "spool", "bytes") == 4096);
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "spilled"));
	assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "sink"), "last_error"));
	cJSON_Delete(o);
}

struct text {
	char buf[16384];
	size_t len;
};

static void put(void *arg, const char *s)
{
	struct text *t = arg;
	size_t n = strlen(s);

	assert_true(t->len + n < sizeof(t->buf));
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n;
}

static void test_metrics(void **state)
{
	struct kg_stream_status s;
	struct text t = {.len = 0};
	char *line, *save = NULL;
	int types = 0;

	(void)state;
	sample(&s);
	kg_statusmodel__metrics(&s, "kitgate_bridge_", put, &t);
	assert_non_null(strstr(t.buf, "# HELP kitgate_bridge_sink_connected Whether the sink (kafka) is connected.\n"));
	assert_non_null(strstr(t.buf, "\nkitgate_bridge_sink_connected 1\n"));
	assert_non_null(strstr(t.buf, "\nkitgate_bridge_sink_lag_records 10\n"));
	assert_non_null(strstr(t.buf, "\nkitgate_bridge_queue_depth 7\n"));
	assert_non_null(strstr(t.buf, "# TYPE kitgate_bridge_spool_append_errors_total counter\n"));
	for(line = strtok_r(t.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)){
		char name[128], type[16];

		if(sscanf(line, "# TYPE %127s %15s", name, type) != 2) continue;
		types++;
		/* Prometheus naming: counters and only counters end in _total */
		assert_int_equal(!strcmp(type, "counter"), strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
	}
	assert_true(types >= 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sys_document),
		cmocka_unit_test(test_api_document),
		cmocka_unit_test(test_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
