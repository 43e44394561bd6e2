/* test_sinks.c -- the sinks through the sink.h interface: Kafka (librdkafka's in-process mock
 * cluster) reports every record once, refuses an unnameable bridge topic, reports nothing after a
 * rewind; PostgreSQL with the server down keeps retrying (nothing reported, errors counted) and
 * rewinds and frees promptly; none reports everything OK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kitgate/config.h"
#include "kitgate/record.h"
#include "kitgate/sink.h"

struct seen {
	int ok, rejected, failed;
	const char *last_reason;
	int by_item[16];
};

static void on_report(void *item, enum kg_settle how, const char *reason, void *ud)
{
	struct seen *s = ud;
	int idx = (int)(intptr_t)item;

	assert_true(idx >= 0 && idx < 16);
	s->by_item[idx]++;
	if(how == KG_SETTLE_OK) s->ok++;
	else if(how == KG_SETTLE_REJECTED) s->rejected++;
	else s->failed++;
	s->last_reason = reason;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void raw(struct kg_record *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->kind = KG_KIND_RAW;
	r->id[0] = (uint8_t)i;
	r->id[6] = 0x40;
	r->id[8] = 0x80;
	strcpy(r->serial, "k-test-0001");
	r->peripheral = 11;
	r->quantity_type = 1;
	r->datetime_ms = 1700000000000LL;
	r->value = i;
}

static void bridge(struct kg_record *r, const char *topic, const char *payload)
{
	memset(r, 0, sizeof(*r));
	r->kind = KG_KIND_BRIDGE;
	r->topic = topic;
	r->topic_len = (uint16_t)strlen(topic);
	r->payload = (const uint8_t *)payload;
	r->payload_len = (uint32_t)strlen(payload);
}

/* Poll until want reports arrived or timeout_ms passed. */
static void poll_for(struct kg_sink *s, struct seen *seen, int want, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	while(seen->ok + seen->rejected + seen->failed < want && mono_ms() < until){
		s->ops->poll(s->state, 50, on_report, seen);
	}
}

struct kfx {
	rd_kafka_t *mock_rk;
	rd_kafka_mock_cluster_t *mock;
	struct kg_config cfg;
};

static int kafka_setup(void **state)
{
	struct kfx *f = calloc(1, sizeof(*f));
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct kg_opt opts[3] = { {"sink", "kafka"}, {"kafka_brokers", NULL}, {"bridge_topics", "plant/#"} };

	assert_non_null(f);
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(f->mock_rk);
	f->mock = rd_kafka_mock_cluster_new(f->mock_rk, 1);
	assert_non_null(f->mock);
	opts[1].value = (char *)rd_kafka_mock_cluster_bootstraps(f->mock);
	assert_int_equal(kg_config__parse(&f->cfg, opts, 3, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int kafka_teardown(void **state)
{
	struct kfx *f = *state;
	kg_config__free(&f->cfg);
	rd_kafka_mock_cluster_destroy(f->mock);
	rd_kafka_destroy(f->mock_rk);
	free(f);
	return 0;
}

static void test_kafka_reports_each_once(void **state)
{
	struct kfx *f = *state;
	struct kg_sink s;
	struct kg_record recs[5];
	void *items[5];
	struct kg_sink_health h;
	struct seen seen = { 0 };
	char err[256], longtopic[300];

	assert_int_equal(kg_sink_kafka__new(&s, &f->cfg, err, sizeof(err)), 0);
	assert_string_equal(s.ops->name, "kafka");
	snprintf(longtopic, sizeof(longtopic), "plant/%0280d", 0);
	raw(&recs[0], 0);
	raw(&recs[1], 1);
	bridge(&recs[2], "plant/p1/status", "{\"ok\":true}");
	bridge(&recs[3], longtopic, "{}");           /* no legal Kafka name */
	raw(&recs[4], 4);
	for(int i = 0; i < 5; i++) items[i] = (void *)(intptr_t)i;
	assert_int_equal(s.ops->submit(s.state, recs, items, 5), 5);
	poll_for(&s, &seen, 5, 10000);
	assert_int_equal(seen.ok, 4);
	assert_int_equal(seen.rejected, 1);
	assert_int_equal(seen.by_item[3], 1);
	for(int i = 0; i < 5; i++) assert_int_equal(seen.by_item[i], 1);
	s.ops->health(s.state, &h);
	assert_true(h.connected);
	assert_int_equal(h.in_flight, 0);
	assert_int_equal(h.written, 4);
	s.ops->poll(s.state, 100, on_report, &seen);  /* nothing twice */
	assert_int_equal(seen.ok + seen.rejected, 5);
	kg_sink__free(&s);
	assert_null(s.ops);
}

/* Brokers down: nothing is delivered; after rewind nothing submitted before is ever reported. */
static void test_kafka_rewind_reports_nothing(void **state)
{
	struct kfx *f = *state;
	struct kg_sink s;
	struct kg_record recs[3];
	void *items[3];
	struct seen seen = { 0 };
	char err[256];

	assert_int_equal(kg_sink_kafka__new(&s, &f->cfg, err, sizeof(err)), 0);
	rd_kafka_mock_broker_set_down(f->mock, 1);
	for(int i = 0; i < 3; i++){
		raw(&recs[i], i);
		items[i] = (void *)(intptr_t)i;
	}
	assert_int_equal(s.ops->submit(s.state, recs, items, 3), 3);
	s.ops->poll(s.state, 300, on_report, &seen);
	assert_int_equal(seen.ok + seen.rejected + seen.failed, 0);
	s.ops->rewind(s.state);
	rd_kafka_mock_broker_set_up(f->mock, 1);
	poll_for(&s, &seen, 1, 1500);
	assert_int_equal(seen.ok + seen.rejected + seen.failed, 0);
	/* and the sink works again */
	raw(&recs[0], 7);
	items[0] = (void *)(intptr_t)7;
	assert_int_equal(s.ops->submit(s.state, recs, items, 1), 1);
	poll_for(&s, &seen, 1, 10000);
	assert_int_equal(seen.ok, 1);
	assert_int_equal(seen.by_item[7], 1);
	kg_sink__free(&s);
}

/* PostgreSQL unreachable: batches are retried by their connections (never reported), errors are
 * counted, rewind drops them, free returns promptly. */
static void test_pg_down_retries_and_rewinds(void **state)
{
	struct kg_config cfg;
	struct kg_opt opts[2] = { {"database_url", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"},
			{"pg_connections", "3"} };
	struct kg_sink s;
	struct kg_record recs[10];
	void *items[10];
	struct kg_sink_health h;
	struct seen seen = { 0 };
	char err[256];
	int64_t t0;
	size_t n;
	(void)state;

	assert_int_equal(kg_config__parse(&cfg, opts, 2, err, sizeof(err)), 0);
	cfg.batch_size = 2;
	assert_int_equal(kg_sink_pg__new(&s, &cfg, err, sizeof(err)), 0);
	assert_string_equal(s.ops->name, "postgres");
	for(int i = 0; i < 10; i++){
		raw(&recs[i], i);
		items[i] = (void *)(intptr_t)i;
	}
	/* 3 connections, batches of 2: at most 3 waiting batches beside the 3 being written */
	n = s.ops->submit(s.state, recs, items, 10);
	assert_true(n >= 6 && n <= 10);
	t0 = mono_ms();
	/* 600 ms, and until each connection failed once however slowly the threads run (valgrind at
	 * nice 19 beside a busy ctest ran fewer in 600 ms) */
	do{
		s.ops->poll(s.state, 50, on_report, &seen);
		s.ops->health(s.state, &h);
	}while((mono_ms() - t0 < 600 || h.errors < 3) && mono_ms() - t0 < 30000);
	assert_int_equal(seen.ok + seen.rejected + seen.failed, 0);
	s.ops->health(s.state, &h);
	assert_false(h.connected);
	assert_true(h.errors >= 3);
	assert_int_equal(h.in_flight, n);
	assert_true(h.last_error[0] != 0);
	s.ops->rewind(s.state);
	s.ops->health(s.state, &h);
	assert_int_equal(h.in_flight, 0);
	s.ops->poll(s.state, 200, on_report, &seen);
	assert_int_equal(seen.ok + seen.rejected + seen.failed, 0);
	t0 = mono_ms();
	kg_sink__free(&s);
	assert_true(mono_ms() - t0 < 3000);
	kg_config__free(&cfg);
}

static void test_none_reports_ok(void **state)
{
	struct kg_sink s;
	struct kg_record recs[3];
	void *items[3];
	struct seen seen = { 0 };
	char err[64];
	(void)state;

	assert_int_equal(kg_sink_none__new(&s, err, sizeof(err)), 0);
	for(int i = 0; i < 3; i++){
		raw(&recs[i], i);
		items[i] = (void *)(intptr_t)i;
	}
	assert_int_equal(s.ops->submit(s.state, recs, items, 3), 3);
	s.ops->rewind(s.state);                       /* dropped: never reported */
	assert_int_equal(s.ops->poll(s.state, 0, on_report, &seen), 0);
	assert_int_equal(s.ops->submit(s.state, recs, items, 2), 2);
	assert_int_equal(s.ops->poll(s.state, 0, on_report, &seen), 2);
	assert_int_equal(seen.ok, 2);
	kg_sink__free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kafka_reports_each_once, kafka_setup, kafka_teardown),
		cmocka_unit_test_setup_teardown(test_kafka_rewind_reports_nothing, kafka_setup, kafka_teardown),
		cmocka_unit_test(test_pg_down_retries_and_rewinds),
		cmocka_unit_test(test_none_reports_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
