/* test_stats.c -- rolling window statistics: hand-computed windows, both ends inclusive, empty
 * windows, out-of-order samples, the per-stream sample cap, stream eviction, JSON and parsing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/stats.h"

#define NOW 1700000000000LL

struct grab {
	int calls;
	struct kg_stats_view v;
	char json[256];
};

static void grab_cb(const struct kg_stats_view *v, void *arg)
{
	struct grab *g = arg;

	g->calls++;
	g->v = *v;
	kg_stats__format_json(v, g->json, sizeof(g->json));
}

static void test_exercise_cases(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 100);
	struct grab g = {0};

	(void)state;
	assert_int_equal(kg_stats__add(st, "a", NOW - 1000, 57, NOW), 0);
	assert_int_equal(kg_stats__add(st, "a", NOW, 43, NOW), 0);
	assert_int_equal(kg_stats__flush(st, NOW, 1000, grab_cb, &g), 1);
	assert_string_equal(g.json, "{\"avg_1min\":50,\"avg_5min\":50,\"avg_30min\":50,\"count_1min\":2,"
			"\"count_5min\":2,\"count_30min\":2,\"latest\":43,\"latest_at\":1700000000000}");
	kg_stats__free(st);
}

static void test_window_edges(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 100);
	struct grab g = {0};

	(void)state;
	/* exactly 60 s old: in the 1-minute window; 61 s old: not */
	kg_stats__add(st, "edge", NOW - 60000, 10, NOW);
	kg_stats__add(st, "edge", NOW - 61000, 20, NOW);
	kg_stats__flush(st, NOW, 0, grab_cb, &g);
	assert_int_equal(g.v.count[0], 1);
	assert_true(g.v.avg[0] == 10);
	assert_int_equal(g.v.count[1], 2);
	assert_true(g.v.avg[1] == 15);
	/* latest is by measurement time, not arrival */
	assert_true(g.v.latest == 10);
	assert_int_equal(g.v.latest_at, NOW - 60000);

	/* one second later the 1-minute window is empty: null, and republished */
	g.calls = 0;
	assert_int_equal(kg_stats__flush(st, NOW + 1000, 1000, grab_cb, &g), 1);
	assert_int_equal(g.v.count[0], 0);
	assert_non_null(strstr(g.json, "\"avg_1min\":null"));
	assert_non_null(strstr(g.json, "\"avg_5min\":15"));
	/* nothing changed: not republished */
	assert_int_equal(kg_stats__flush(st, NOW + 2500, 1000, grab_cb, &g), 0);
	/* 5 minutes: sample at NOW-61000 leaves at NOW+239001 */
	assert_int_equal(kg_stats__flush(st, NOW + 239000, 1000, grab_cb, &g), 0);
	assert_int_equal(kg_stats__flush(st, NOW + 239001, 1000, grab_cb, &g), 1);
	assert_int_equal(g.v.count[1], 1);
	assert_true(g.v.avg[1] == 10);
	/* all windows empty after 30 minutes */
	kg_stats__flush(st, NOW + 1800000 - 60000 + 1, 1000, grab_cb, &g);
	assert_non_null(strstr(g.json, "\"avg_1min\":null,\"avg_5min\":null,\"avg_30min\":null,"
				"\"count_1min\":0,\"count_5min\":0,\"count_30min\":0,\"latest\":10"));
	kg_stats__free(st);
}

static void test_rate_limit(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 100);
	struct grab g = {0};

	(void)state;
	kg_stats__add(st, "r", NOW, 1, NOW);
	assert_int_equal(kg_stats__flush(st, NOW, 1000, grab_cb, &g), 1);
	kg_stats__add(st, "r", NOW + 10, 2, NOW + 10);
	assert_int_equal(kg_stats__flush(st, NOW + 999, 1000, grab_cb, &g), 0); /* under a second */
	assert_int_equal(kg_stats__flush(st, NOW + 1000, 1000, grab_cb, &g), 1);
	assert_true(g.v.avg[0] == 1.5);
	kg_stats__free(st);
}

static void test_out_of_order_and_too_old(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 100);
	struct grab g = {0};

	(void)state;
	kg_stats__add(st, "o", NOW - 10000, 4, NOW);
	kg_stats__add(st, "o", NOW - 200000, 100, NOW); /* 5-min window only, inserted before */
	kg_stats__add(st, "o", NOW - 5000, 6, NOW);
	assert_int_equal(kg_stats__add(st, "o", NOW - 1800001, 1e9, NOW), 1); /* too old */
	kg_stats__flush(st, NOW, 0, grab_cb, &g);
	assert_int_equal(g.v.count[0], 2);
	assert_true(g.v.avg[0] == 5);
	assert_int_equal(g.v.count[1], 3);
	assert_true(fabs(g.v.avg[1] - 110.0 / 3) < 1e-12);
	assert_int_equal(g.v.count[2], 3);
	assert_true(g.v.latest == 6);
	/* expiry of the out-of-order sample from the 5-min window */
	kg_stats__flush(st, NOW + 100001, 0, grab_cb, &g);
	assert_int_equal(g.v.count[1], 2);
	assert_true(g.v.avg[1] == 5);
	assert_int_equal(g.v.count[0], 0);
	kg_stats__free(st);
}

static void test_sample_cap(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 4);
	struct kg_stats_counters c;
	struct grab g = {0};
	int i;

	(void)state;
	for(i = 0; i < 10; i++) kg_stats__add(st, "cap", NOW - 10 + i, i, NOW);
	kg_stats__flush(st, NOW, 0, grab_cb, &g);
	assert_int_equal(g.v.count[2], 4);
	assert_true(g.v.avg[0] == 7.5); /* 6,7,8,9 */
	kg_stats__counters(st, &c);
	assert_int_equal(c.samples_dropped, 6);
	assert_int_equal(c.samples, 4);
	kg_stats__free(st);
}

static void test_eviction(void **state)
{
	struct kg_stats *st = kg_stats__new(2, 8);
	struct kg_stats_counters c;
	struct grab g = {0};

	(void)state;
	kg_stats__add(st, "s1", NOW, 1, NOW);
	kg_stats__add(st, "s2", NOW, 2, NOW);
	kg_stats__add(st, "s1", NOW + 1, 1, NOW + 1); /* s2 is now the least recently updated */
	kg_stats__add(st, "s3", NOW + 2, 3, NOW + 2);
	kg_stats__counters(st, &c);
	assert_int_equal(c.streams, 2);
	assert_int_equal(c.evicted, 1);
	assert_int_equal(c.samples, 3);
	g.calls = 0;
	kg_stats__flush(st, NOW + 2, 0, grab_cb, &g);
	assert_int_equal(g.calls, 2);
	assert_string_equal(g.v.key, "s1"); /* oldest last */
	kg_stats__free(st);
}

struct cleared {
	int n;
	char keys[16][64];
};

static void clear_cb(const char *key, void *arg)
{
	struct cleared *c = arg;

	if(c->n < 16) snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", key);
	c->n++;
}

/* An evicted stream's key is handed out once for clearing its retained message; not when the
 * stream is live again by then. */
static void test_evicted_keys_drained(void **state)
{
	struct kg_stats *st = kg_stats__new(3, 8);
	struct kg_stats_counters c;
	struct cleared cl = {0};

	(void)state;
	kg_stats__add(st, "s1", NOW, 1, NOW);
	kg_stats__add(st, "s2", NOW, 2, NOW);
	kg_stats__add(st, "s3", NOW, 3, NOW);
	kg_stats__add(st, "s4", NOW, 4, NOW);         /* evicts s1 */
	kg_stats__add(st, "s5", NOW, 5, NOW);         /* evicts s2 */
	kg_stats__add(st, "s2", NOW, 2, NOW);         /* evicts s3; s2 is live again */
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 2);
	assert_int_equal(cl.n, 2);
	assert_string_equal(cl.keys[0], "s1");
	assert_string_equal(cl.keys[1], "s3");
	cl.n = 0;
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 0); /* each once */
	kg_stats__counters(st, &c);
	assert_int_equal(c.evicted, 3);
	assert_int_equal(c.clear_dropped, 0);
	/* more evictions than max_streams between two drains: the oldest keys are forgotten */
	kg_stats__add(st, "a", NOW, 1, NOW);          /* evicts s4 */
	kg_stats__add(st, "b", NOW, 1, NOW);          /* s5 */
	kg_stats__add(st, "c", NOW, 1, NOW);          /* s2 */
	kg_stats__add(st, "d", NOW, 1, NOW);          /* a */
	kg_stats__add(st, "e", NOW, 1, NOW);          /* b */
	kg_stats__counters(st, &c);
	assert_int_equal(c.clear_dropped, 2);
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 3);
	assert_string_equal(cl.keys[0], "s2");
	assert_string_equal(cl.keys[1], "a");
	assert_string_equal(cl.keys[2], "b");
	kg_stats__add(st, "f", NOW, 1, NOW);
	kg_stats__free(st); /* frees the waiting keys too (ASan/valgrind) */
}

/* One kit cycling peripheral ids evicts only its own streams (per-kit cap); other kits keep
 * theirs. */
static void test_per_kit_cap(void **state)
{
	struct kg_stats *st = kg_stats__new(100, 8);
	struct kg_stats_counters c;
	struct cleared cl = {0};
	struct grab g = {0};
	char key[64];
	int i;

	(void)state;
	kg_stats__set_group_limit(st, 4);
	kg_stats__add_grouped(st, "kit/good/stats/1/1", 9, NOW, 20, NOW);
	kg_stats__add_grouped(st, "kit/good/stats/2/1", 9, NOW, 21, NOW);
	for(i = 0; i < 1000; i++){
		snprintf(key, sizeof(key), "kit/evil/stats/%d/1", i);
		kg_stats__add_grouped(st, key, 9, NOW + i, 1, NOW + i);
		if(i == 1) kg_stats__add_grouped(st, "kit/good/stats/1/1", 9, NOW + i, 22, NOW + i);
	}
	kg_stats__counters(st, &c);
	assert_int_equal(c.streams, 2 + 4);
	assert_int_equal(c.evicted, 0);
	assert_int_equal(c.group_evicted, 996);
	g.calls = 0;
	kg_stats__flush(st, NOW + 1000, 0, grab_cb, &g);
	assert_int_equal(g.calls, 6);
	assert_string_equal(g.v.key, "kit/good/stats/2/1"); /* the least recently updated, handed out last */
	/* the evil kit's newest 4 are live; its first 996 keys wait for clearing */
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 100); /* max_streams bounds the wait list */
	assert_string_equal(cl.keys[0], "kit/evil/stats/896/1");
	kg_stats__counters(st, &c);
	assert_int_equal(c.clear_dropped, 896);
	/* a stream updated again moves to its group's newest: evicted last */
	kg_stats__add_grouped(st, "kit/evil/stats/996/1", 9, NOW + 1001, 1, NOW + 1001);
	kg_stats__add_grouped(st, "kit/evil/stats/new/1", 9, NOW + 1002, 1, NOW + 1002);
	cl.n = 0;
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 1);
	assert_string_equal(cl.keys[0], "kit/evil/stats/997/1");
	/* cap 1: the group is freed and made again on every new stream */
	kg_stats__set_group_limit(st, 1);
	kg_stats__add_grouped(st, "kit/one/stats/1/1", 8, NOW + 1003, 1, NOW + 1003);
	kg_stats__add_grouped(st, "kit/one/stats/2/1", 8, NOW + 1004, 1, NOW + 1004);
	kg_stats__add_grouped(st, "kit/one/stats/3/1", 8, NOW + 1005, 1, NOW + 1005);
	cl.n = 0;
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 2);
	assert_string_equal(cl.keys[1], "kit/one/stats/2/1");
	kg_stats__free(st);
}

static void test_many_samples_stay_exact(void **state)
{
	struct kg_stats *st = kg_stats__new(1, 4096);
	struct grab g = {0};
	int64_t t;

	(void)state;
	/* 1 Hz for an hour of 0.1 steps: the compensated sums must not drift */
	for(t = 0; t < 3600; t++) kg_stats__add(st, "x", NOW + t * 1000, 0.1 * (double)(t % 10), NOW + t * 1000);
	kg_stats__flush(st, NOW + 3599 * 1000, 0, grab_cb, &g);
	assert_int_equal(g.v.count[0], 61);
	assert_int_equal(g.v.count[2], 1801);
	assert_true(fabs(g.v.avg[2] - (0.45 * 1800 + 0.9) / 1801) < 1e-12);
	kg_stats__free(st);
}

/* Fleet scale (issue 20): a stream of one sample every 10 s holds its 181 samples of the 30-minute
 * window in 12-byte slots of a ring at most a quarter larger (it was 256 slots of 16 bytes), and
 * gives the ring back when the stream goes quiet. */
static void test_ring_sized_to_window(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 1024);
	struct kg_stats_counters c;
	struct grab g = {0};
	int64_t t;

	(void)state;
	for(t = 0; t <= 7200; t += 10) assert_int_equal(kg_stats__add(st, "s", NOW + t * 1000, (double)t, NOW + t * 1000), 0);
	kg_stats__flush(st, NOW + 7200 * 1000, 0, grab_cb, &g);
	assert_int_equal(g.v.count[0], 7);
	assert_int_equal(g.v.count[1], 31);
	assert_int_equal(g.v.count[2], 181);
	assert_true(fabs(g.v.avg[2] - (7200 - 900)) < 1e-9);
	kg_stats__counters(st, &c);
	assert_int_equal(c.samples, 181);
	assert_int_equal(c.ring_bytes % 12, 0);             /* narrow: 12 bytes a slot */
	assert_true(c.ring_bytes >= 181 * 12);
	assert_true(c.ring_bytes <= 181 * 12 * 5 / 4 + 12); /* at most a quarter spare */
	/* quiet: the samples leave the windows and the ring goes */
	kg_stats__flush(st, NOW + (7200 + 1801) * 1000, 0, grab_cb, &g);
	assert_int_equal(g.v.count[2], 0);
	kg_stats__counters(st, &c);
	assert_int_equal(c.samples, 0);
	assert_int_equal(c.ring_bytes, 0);
	/* and comes back */
	assert_int_equal(kg_stats__add(st, "s", NOW + 9100 * 1000, 5, NOW + 9100 * 1000), 0);
	kg_stats__counters(st, &c);
	assert_int_equal(c.ring_bytes, 8 * 12);
	kg_stats__free(st);
}

/* The compact ring against a brute-force reference: random times in and out of order, samples
 * stamped far in the future (their span needs 64-bit times: the ring widens, and narrows again
 * once they are gone), the clock jumping past the longest window. Counts are exact, averages
 * within rounding. Seeded: the same sequence every run. */
struct ref_sample { int64_t t; double v; };

static void check_reference(struct kg_stats *st, const struct ref_sample *ref, size_t nref, int64_t now)
{
	struct grab g = {0};
	int w;

	kg_stats__foreach(st, grab_cb, &g);
	if(g.calls == 0){
		for(size_t i = 0; i < nref; i++) assert_true(ref[i].t < now - kg_stats_window_ms[2]);
		return;
	}
	assert_int_equal(g.calls, 1);
	for(w = 0; w < KG_STATS_WINDOWS; w++){
		uint64_t cnt = 0;
		double sum = 0;

		for(size_t i = 0; i < nref; i++){
			if(ref[i].t >= now - kg_stats_window_ms[w]){
				cnt++;
				sum += ref[i].v;
			}
		}
		assert_int_equal(g.v.count[w], cnt);
		if(cnt) assert_true(fabs(g.v.avg[w] - sum / (double)cnt) <= 1e-9 * (1 + fabs(sum / (double)cnt)));
	}
}

static void test_ring_against_reference(void **state)
{
	static struct ref_sample ref[20000];
	struct kg_stats *st = kg_stats__new(4, 100000);
	struct kg_stats_counters c;
	uint64_t seed = 0x2545F4914F6CDD1DULL, wide_seen = 0;
	int64_t now = NOW;
	size_t nref = 0;
	int i;

	(void)state;
	for(i = 0; i < 20000; i++){
		uint64_t r;
		int64_t t;
		double v;
		int rc;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		r = seed >> 33;
		if(r % 1000 == 0) now += 1900 * 1000;     /* past every window */
		else now += (int64_t)(r % 20000);
		if(r % 97 == 0) t = now + 30LL * 86400 * 1000 + (int64_t)(r % 5000); /* 30 days ahead */
		else t = now - 2100 * 1000 + (int64_t)(r % (2400 * 1000));          /* -35 .. +5 min */
		v = (double)(int64_t)(r % 20001) / 100.0 - 100.0;
		rc = kg_stats__add(st, "x", t, v, now);
		if(rc == 0){
			ref[nref].t = t;
			ref[nref].v = v;
			nref++;
		}else{
			assert_int_equal(rc, 1);
			assert_true(t < now - kg_stats_window_ms[2]);
		}
		/* forget what left the longest window, as the table did */
		{
			size_t k = 0;

			for(size_t j = 0; j < nref; j++) if(ref[j].t >= now - kg_stats_window_ms[2]) ref[k++] = ref[j];
			nref = k;
		}
		kg_stats__counters(st, &c);
		assert_int_equal(c.samples, nref);
		if(c.ring_bytes % 12 != 0) wide_seen++;
		check_reference(st, ref, nref, now);
	}
	assert_true(wide_seen > 0);
	/* the far-future samples gone: the ring is narrow again (12-byte slots) after its next resize */
	now += 40LL * 86400 * 1000;
	kg_stats__flush(st, now, 0, NULL, NULL);
	kg_stats__counters(st, &c);
	assert_int_equal(c.samples, 0);
	assert_int_equal(c.ring_bytes, 0);
	kg_stats__free(st);
}

static void test_parse_value(void **state)
{
	double d = 0;

	(void)state;
	assert_int_equal(kg_stats__parse_value("21.5", 4, 0, "value", &d), 0);
	assert_true(d == 21.5);
	assert_int_equal(kg_stats__parse_value(" -3 \n", 5, 0, "value", &d), 0);
	assert_true(d == -3);
	assert_int_equal(kg_stats__parse_value("{\"value\":7,\"x\":1}", 17, 0, "value", &d), 0);
	assert_true(d == 7);
	assert_int_equal(kg_stats__parse_value("{\"t\":7}", 7, 0, "t", &d), 0);
	assert_int_equal(kg_stats__parse_value("{\"value\":\"7\"}", 13, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("hello", 5, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("nan", 3, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("1e999", 5, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("12abc", 5, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("", 0, 0, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value("{\"value\":", 9, 0, "value", &d), -1);
	/* over max_len (the plugin's max_payload): ignored without parsing */
	assert_int_equal(kg_stats__parse_value("{\"value\":7}", 11, 11, "value", &d), 0);
	assert_int_equal(kg_stats__parse_value("{\"value\":7}", 11, 10, "value", &d), -1);
	assert_int_equal(kg_stats__parse_value(" 21.5", 5, 4, "value", &d), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exercise_cases),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_out_of_order_and_too_old),
		cmocka_unit_test(test_sample_cap),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_evicted_keys_drained),
		cmocka_unit_test(test_per_kit_cap),
		cmocka_unit_test(test_many_samples_stay_exact),
		cmocka_unit_test(test_ring_sized_to_window),
		cmocka_unit_test(test_ring_against_reference),
		cmocka_unit_test(test_parse_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
