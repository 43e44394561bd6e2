/* test_ingest.c -- the MESSAGE path without mosquitto (ingest.c): what each topic and payload
 * becomes, which stream it enters, and no acknowledgement when the spool append fails. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kitgate/config.h"
#include "kitgate/handoff.h"
#include "kitgate/ingest.h"
#include "kitgate/record.h"
#include "kitgate/spool.h"

#define NOW 1700000000000LL
#define RAW "{\"id\":\"9b2f0000-0000-4000-8000-000000000001\",\"kitSerial\":\"\",\"datetime\":1700000000000," \
	"\"peripheral\":11,\"quantityType\":1,\"value\":21.5}"

struct fx {
	struct kg_config cfg;
	struct kg_handoff *m, *b;
	struct kg_ingest ig;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct kg_opt opts[] = { { "bridge_topics", "plant/#" } };
	char err[256];

	assert_non_null(f);
	assert_int_equal(kg_config__parse(&f->cfg, opts, 1, err, sizeof(err)), 0);
	f->m = kg_handoff__new(2, NULL);
	f->b = kg_handoff__new(2, NULL);
	assert_non_null(f->m);
	assert_non_null(f->b);
	kg_ingest__init(&f->ig, &f->cfg, f->m, f->b);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	kg_handoff__free(f->m);
	kg_handoff__free(f->b);
	kg_config__free(&f->cfg);
	free(f);
	return 0;
}

static enum kg_ingest_result in(struct fx *f, const char *topic, const char *payload, struct kg_ingest_out *out)
{
	return kg_ingest__message(&f->ig, topic, payload, payload ? strlen(payload) : 0, NOW, out);
}

/* Each record lands in its own stream; other topics pass untouched. */
static void test_routes_to_streams(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	struct kg_item *items[4];
	struct kg_record rec;

	assert_int_equal(in(f, "kit/k-test-0001/measurement/raw", RAW, &out), KG_INGEST_ACCEPTED);
	assert_int_equal(out.serial_len, 11);
	assert_int_equal(in(f, "plant/p1/status", "{\"ok\":1}", &out), KG_INGEST_BRIDGED);
	assert_int_equal(in(f, "office/temp", "{}", &out), KG_INGEST_PASS);       /* not bridged */
	assert_int_equal(in(f, "kit/k-test-0001/rpc", "x", &out), KG_INGEST_PASS); /* other kit topic */
	assert_int_equal(kg_handoff__depth(f->m, NULL, NULL), 1);
	assert_int_equal(kg_handoff__depth(f->b, NULL, NULL), 1);
	assert_int_equal(kg_handoff__take(f->m, items, 4, 1, 0), 1);
	assert_int_equal(kg_record__decode(items[0]->body, items[0]->len, &rec), 0);
	assert_int_equal(rec.kind, KG_KIND_RAW);
	assert_string_equal(rec.serial, "k-test-0001");
	free(items[0]);
	assert_int_equal(kg_handoff__take(f->b, items, 4, 1, 0), 1);
	assert_int_equal(kg_record__decode(items[0]->body, items[0]->len, &rec), 0);
	assert_int_equal(rec.kind, KG_KIND_BRIDGE);
	assert_int_equal(rec.topic_len, strlen("plant/p1/status"));
	assert_memory_equal(rec.topic, "plant/p1/status", rec.topic_len);
	free(items[0]);
}

static void test_rejects_and_refuses(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	char topic[400];

	assert_int_equal(in(f, "kit/k-test-0002/measurement/raw", RAW, &out), KG_INGEST_ACCEPTED); /* "" serial */
	assert_int_equal(in(f, "kit/k-test-0001/measurement/raw", "{", &out), KG_INGEST_REJECTED);
	assert_int_equal(out.reason, KG_MALFORMED);
	snprintf(topic, sizeof(topic), "plant/%0300d", 0); /* no legal Kafka name */
	assert_int_equal(in(f, topic, "{}", &out), KG_INGEST_REFUSED_TOPIC);
	assert_int_equal(kg_handoff__depth(f->b, NULL, NULL), 0);
}

/* A bridged payload the spool could never hold is refused (routed, not forwarded), never treated
 * as a failed append (which would disconnect a QoS 1 publisher that then resends it forever). */
static void test_bridge_payload_over_spool_limit(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	size_t big = KG_SPOOL_MAX_BODY;
	char *payload = malloc(big);

	assert_non_null(payload);
	memset(payload, 'x', big);
	memset(&out, 0, sizeof(out));
	assert_int_equal(kg_ingest__message(&f->ig, "plant/p1/video", payload, big, NOW, &out), KG_INGEST_REFUSED_TOPIC);
	assert_non_null(out.detail);
	assert_int_equal(kg_handoff__depth(f->b, NULL, NULL), 0);
	/* just under the limit still goes to the stream */
	assert_int_equal(kg_ingest__message(&f->ig, "plant/p1/video", payload, 1024 * 1024, NOW, &out), KG_INGEST_BRIDGED);
	assert_int_equal(kg_handoff__depth(f->b, NULL, NULL), 1);
	free(payload);
}

/* The ACL WRITE half and the MESSAGE half: check validates and encodes without pushing; push hands
 * the memo's record over once; an empty retained publish on a measurement topic is no measurement. */
static void test_check_then_push(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	static struct kg_ingest_memo memo;
	struct kg_item *items[4];
	struct kg_record rec;

	assert_int_equal(kg_ingest__check(&f->ig, "kit/k-test-0001/measurement/raw", RAW, strlen(RAW), false,
			NOW, &memo, &out), KG_INGEST_ACCEPTED);
	assert_true(memo.n > 0);
	assert_int_equal(kg_handoff__depth(f->m, NULL, NULL), 0); /* nothing pushed by the check */
	assert_int_equal(kg_ingest__push(&f->ig, &memo, &out), KG_INGEST_ACCEPTED);
	assert_int_equal(memo.n, 0);
	assert_int_equal(out.serial_len, 11);
	assert_int_equal(kg_handoff__take(f->m, items, 4, 1, 0), 1);
	assert_int_equal(kg_record__decode(items[0]->body, items[0]->len, &rec), 0);
	assert_string_equal(rec.serial, "k-test-0001");
	assert_int_equal(rec.peripheral, 11);
	free(items[0]);

	/* invalid: rejected with its reason, memo empty */
	assert_int_equal(kg_ingest__check(&f->ig, "kit/k-test-0001/measurement/raw", "{\"value\":1,\"value\":2}",
			strlen("{\"value\":1,\"value\":2}"), true, NOW, &memo, &out), KG_INGEST_REJECTED);
	assert_int_equal(out.reason, KG_MALFORMED);
	assert_int_equal(memo.n, 0);
	/* empty retained publish: clears, not a measurement; empty not retained: malformed */
	assert_int_equal(kg_ingest__check(&f->ig, "kit/k-test-0001/measurement/aggregate", NULL, 0, true,
			NOW, &memo, &out), KG_INGEST_PASS);
	assert_int_equal(memo.n, 0);
	assert_int_equal(kg_ingest__check(&f->ig, "kit/k-test-0001/measurement/raw", NULL, 0, false,
			NOW, &memo, &out), KG_INGEST_REJECTED);
	assert_int_equal(out.reason, KG_MALFORMED);
	/* other topics: pass, serial set only for kit topics */
	assert_int_equal(kg_ingest__check(&f->ig, "kit/k-test-0001/rpc", "x", 1, false, NOW, &memo, &out),
			KG_INGEST_PASS);
	assert_non_null(out.serial);
	assert_int_equal(kg_ingest__check(&f->ig, "plant/p1/status", "x", 1, false, NOW, &memo, &out),
			KG_INGEST_PASS);
	assert_null(out.serial);
	assert_int_equal(kg_handoff__depth(f->m, NULL, NULL), 0);
}

/* Memory only: a full queue is an overload (the message is dropped, counted). */
static void test_memory_only_overload(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;

	assert_int_equal(in(f, "plant/a", "1", &out), KG_INGEST_BRIDGED);
	assert_int_equal(in(f, "plant/a", "2", &out), KG_INGEST_BRIDGED);
	assert_int_equal(in(f, "plant/a", "3", &out), KG_INGEST_OVERLOAD);
	assert_int_equal(out.reason, KG_OVERLOAD);
}

static enum kg_reason refuse_peripheral_11(void *ud, const char *serial, size_t serial_len,
		const struct kg_record *rec, const char **detail)
{
	int *calls = ud;
	(*calls)++;
	assert_int_equal(serial_len, 11);
	assert_memory_equal(serial, "k-test-0001", 11);
	if(rec->peripheral != 11) return KG_OK;
	*detail = "test hook";
	return KG_SERIAL_MISMATCH;
}

/* The check hook (auth postgres' kits snapshot) rejects after validation; nothing is queued. */
static void test_check_hook(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	int calls = 0;

	f->ig.check = refuse_peripheral_11;
	f->ig.check_ud = &calls;
	assert_int_equal(in(f, "kit/k-test-0001/measurement/raw", RAW, &out), KG_INGEST_REJECTED);
	assert_int_equal(out.reason, KG_SERIAL_MISMATCH);
	assert_string_equal(out.detail, "test hook");
	assert_int_equal(kg_handoff__depth(f->m, NULL, NULL), 0);
	assert_int_equal(in(f, "kit/k-test-0001/measurement/raw", "{", &out), KG_INGEST_REJECTED);
	assert_int_equal(out.reason, KG_MALFORMED); /* invalid payloads never reach the hook */
	assert_int_equal(calls, 1);
}

/* sink none: measurements are validated and accepted without a stream. */
static void test_sink_none(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;

	kg_ingest__init(&f->ig, &f->cfg, NULL, NULL);
	assert_int_equal(in(f, "kit/k-test-0001/measurement/raw", RAW, &out), KG_INGEST_ACCEPTED);
	assert_int_equal(in(f, "plant/p1/status", "{}", &out), KG_INGEST_PASS); /* no bridge stream */
}

/* With a spool, an append that fails (the directory is gone when a new segment is needed) is
 * UNDURABLE with the spool's error, and the record is not queued: it must not be acknowledged. */
static void test_spool_failure_is_undurable(void **state)
{
	struct fx *f = *state;
	struct kg_ingest_out out;
	struct kg_spool *sp;
	struct kg_handoff *h;
	char tmpl[] = "/tmp/kg-ingest-XXXXXX", cmd[128];
	char *dir = mkdtemp(tmpl);
	enum kg_ingest_result r = KG_INGEST_ACCEPTED;
	int i;

	assert_non_null(dir);
	assert_int_equal(kg_spool__open(&sp, dir, 4096), 0);
	h = kg_handoff__new(100000, sp);
	assert_non_null(h);
	kg_ingest__init(&f->ig, &f->cfg, h, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	for(i = 0; i < 1000 && r == KG_INGEST_ACCEPTED; i++){
		r = in(f, "kit/k-test-0001/measurement/raw", RAW, &out);
	}
	assert_int_equal(r, KG_INGEST_UNDURABLE);
	assert_true(out.err < 0);
	assert_int_equal(kg_handoff__depth(h, NULL, NULL), (size_t)(i - 1)); /* the failed one is not queued */
	kg_handoff__free(h);
	kg_spool__close(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes_to_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_and_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_payload_over_spool_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_then_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_only_overload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_failure_is_undurable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
