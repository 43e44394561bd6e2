/* test_kafka.c -- the Kafka producer against librdkafka's in-process mock cluster: delivery
 * reports, and the difference between a refused message (-1) and a broken producer (-2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kitgate/config.h"
#include "kitgate/kafka.h"

void kg_kafka__test_fatal(struct kg_kafka *k); /* test-only, in plugin/sinks/kafka.c */

struct reports {
	int ok, failed;
};

static void on_dr(void *opaque, int err, const char *errstr, void *ud)
{
	struct reports *r = ud;
	(void)opaque;
	(void)errstr;
	if(err == 0) r->ok++;
	else r->failed++;
}

struct fixture {
	rd_kafka_t *mock_rk;
	rd_kafka_mock_cluster_t *mock;
	struct kg_config cfg;
	struct kg_kafka *k;
	struct reports reports;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct kg_opt opts[2] = { {"sink", "kafka"}, {"kafka_brokers", NULL} };

	assert_non_null(f);
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(f->mock_rk);
	f->mock = rd_kafka_mock_cluster_new(f->mock_rk, 1);
	assert_non_null(f->mock);
	opts[1].value = (char *)rd_kafka_mock_cluster_bootstraps(f->mock);
	assert_int_equal(kg_config__parse(&f->cfg, opts, 2, err, sizeof(err)), 0);
	f->k = kg_kafka__new(&f->cfg, on_dr, &f->reports, err, sizeof(err));
	assert_non_null(f->k);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kg_kafka__free(f->k);
	kg_config__free(&f->cfg);
	rd_kafka_mock_cluster_destroy(f->mock);
	rd_kafka_destroy(f->mock_rk);
	free(f);
	return 0;
}

static void test_delivered(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(kg_kafka__produce(f->k, "raw", "k-1", 3, "{}", 2, 0, "kit/k-1/measurement/raw", NULL), 0);
	for(int i = 0; i < 100 && f->reports.ok == 0; i++) kg_kafka__poll(f->k, 100);
	assert_int_equal(f->reports.ok, 1);
	assert_int_equal(f->reports.failed, 0);
	assert_false(kg_kafka__fatal(f->k));
}

/* A message librdkafka can never accept is refused on its own: the producer stays usable. */
static void test_refused_message(void **state)
{
	struct fixture *f = *state;
	size_t big = 2u * 1024 * 1024; /* over the default message.max.bytes (1 MB) */
	char *value = calloc(1, big);

	assert_non_null(value);
	assert_int_equal(kg_kafka__produce(f->k, "raw", "k-1", 3, value, big, 0, NULL, NULL), -1);
	assert_false(kg_kafka__fatal(f->k));
	assert_int_equal(kg_kafka__produce(f->k, "raw", "k-1", 3, "{}", 2, 0, NULL, NULL), 0);
	free(value);
	assert_int_equal(kg_kafka__flush(f->k, 10000), 0);
}

/* After a fatal error nothing more can be produced: the caller must replace the producer. */
static void test_fatal_producer(void **state)
{
	struct fixture *f = *state;

	kg_kafka__test_fatal(f->k);
	assert_true(kg_kafka__fatal(f->k));
	assert_int_equal(kg_kafka__produce(f->k, "raw", "k-1", 3, "{}", 2, 0, NULL, NULL), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal_producer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
