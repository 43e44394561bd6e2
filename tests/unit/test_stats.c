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

/* Issue 20: a flush visits only the streams that are due, not every stream. */
static uint64_t visits(struct kg_stats *st)
{
	struct kg_stats_counters c;

	kg_stats__counters(st, &c);
	return c.flush_visits;
}

static void test_flush_visits_only_due(void **state)
{
	enum { N = 50000, K = 100 };
	struct kg_stats *st = kg_stats__new(N, 16);
	struct grab g = {0};
	char key[64];
	uint64_t before;
	int64_t t;
	int i;

	(void)state;
	assert_non_null(st);
	for(i = 0; i < N; i++){
		snprintf(key, sizeof(key), "kit/k%d/stats/1/1", i);
		assert_int_equal(kg_stats__add(st, key, NOW, i, NOW), 0);
	}
	/* all changed: each is visited once and handed out */
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, NOW, 0, 1000, NULL, NULL), N);
	assert_int_equal(visits(st) - before, N);
	/* idle: nothing changed, the 1-minute window's sample leaves at NOW + 60001; 4 flushes a
	 * second for 59 s visit no stream at all (the full scan visited 50,000 each time) */
	before = visits(st);
	for(t = 250; t <= 59000; t += 250) assert_int_equal(kg_stats__flush_at(st, NOW + t, t, 1000, NULL, NULL), 0);
	assert_int_equal(visits(st) - before, 0);
	/* K streams change: the flush visits those K */
	for(i = 0; i < K; i++){
		snprintf(key, sizeof(key), "kit/k%d/stats/1/1", i * 7);
		assert_int_equal(kg_stats__add(st, key, NOW + 59000, 1, NOW + 59000), 0);
	}
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, NOW + 59100, 59100, 1000, NULL, NULL), K);
	assert_int_equal(visits(st) - before, K);
	/* changed again within min_interval: visited each flush until handed out a second later */
	for(i = 0; i < K; i++){
		snprintf(key, sizeof(key), "kit/k%d/stats/1/1", i * 7);
		assert_int_equal(kg_stats__add(st, key, NOW + 59200, 2, NOW + 59200), 0);
	}
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, NOW + 59350, 59350, 1000, NULL, NULL), 0);
	assert_int_equal(kg_stats__flush_at(st, NOW + 59600, 59600, 1000, NULL, NULL), 0);
	assert_int_equal(kg_stats__flush_at(st, NOW + 59850, 59850, 1000, NULL, NULL), 0);
	assert_int_equal(visits(st) - before, 3 * K);
	/* at NOW + 60001 every first sample has left the 1-minute window: all due, all visited once
	 * (the K changed ones, dirty, are handed out now too: 1 s after their last publish) */
	before = visits(st);
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, NOW + 60001, 60101, 1000, grab_cb, &g), N);
	assert_int_equal(visits(st) - before, N);
	assert_int_equal(g.v.count[0], 0); /* the least recently updated, handed out last: its minute is empty */
	assert_int_equal(g.v.count[1], 1);
	/* idle again until the K streams' samples at NOW + 59000 leave the minute */
	before = visits(st);
	for(t = 60250; t <= 118000; t += 250) assert_int_equal(kg_stats__flush_at(st, NOW + t, t + 100, 1000, NULL, NULL), 0);
	assert_int_equal(visits(st) - before, 0);
	assert_int_equal(kg_stats__flush_at(st, NOW + 119201, 119301, 1000, NULL, NULL), K);
	kg_stats__free(st);
}

/* The wall clock (now_ms) stepping forward: everything due by then is expired, the next flush is
 * idle again; stepping back: nothing is due (as with the full scan), nothing is lost: what was
 * filed comes when the clock reaches it, and streams added meanwhile expire on the new time line. */
static void test_flush_wall_steps(void **state)
{
	struct kg_stats *st = kg_stats__new(100, 64);
	struct grab g = {0};
	char key[32];
	uint64_t before;
	int64_t mono = 0, back = NOW - 3600 * 1000;
	int i;

	(void)state;
	for(i = 0; i < 10; i++){
		snprintf(key, sizeof(key), "s%d", i);
		kg_stats__add(st, key, NOW - 1000 * i, i, NOW);
	}
	assert_int_equal(kg_stats__flush_at(st, NOW, mono += 250, 1000, NULL, NULL), 10);
	/* forward 3 hours (past the wheel's 35 minutes): every window of every stream empties */
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, NOW + 3 * 3600 * 1000, mono += 1000, 1000, grab_cb, &g), 10);
	assert_int_equal(g.v.count[2], 0);
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, NOW + 3 * 3600 * 1000 + 250, mono += 1000, 0, NULL, NULL), 0);
	assert_int_equal(visits(st) - before, 0); /* empty windows: in no queue */
	/* samples again at NOW; then the clock steps back an hour */
	for(i = 0; i < 10; i++){
		snprintf(key, sizeof(key), "s%d", i);
		kg_stats__add(st, key, NOW, i, NOW);
	}
	assert_int_equal(kg_stats__flush_at(st, NOW, mono += 1000, 1000, NULL, NULL), 10);
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, back, mono += 1000, 1000, NULL, NULL), 0);
	assert_int_equal(visits(st) - before, 0);
	/* a new stream on the new time line expires on it */
	kg_stats__add(st, "new", back, 1, back);
	assert_int_equal(kg_stats__flush_at(st, back + 250, mono += 1000, 1000, grab_cb, &g), 1);
	assert_int_equal(kg_stats__flush_at(st, back + 60000, mono += 1000, 1000, NULL, NULL), 0);
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, back + 60001, mono += 1000, 1000, grab_cb, &g), 1);
	assert_string_equal(g.v.key, "new");
	assert_int_equal(g.v.count[0], 0);
	/* the hour passes: the streams filed before the step are not lost ("new"'s sample, an hour
	 * old by then, has left its 5- and 30-minute windows) */
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, NOW + 60000, mono += 1000, 1000, grab_cb, &g), 1);
	assert_string_equal(g.v.key, "new");
	assert_int_equal(g.v.count[2], 0);
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, NOW + 60001, mono += 1000, 1000, grab_cb, &g), 10);
	assert_int_equal(g.v.count[0], 0);
	assert_int_equal(g.v.count[1], 1);
	kg_stats__free(st);
}

/* After a wall step back, a late sample between the new and the old cutoff of a window lands among
 * samples that already left it: it is not in that window (which keeps what it expired). Before
 * issue 20's fix this failed an assert (the broker aborted). */
static void test_add_after_step_back(void **state)
{
	struct kg_stats *st = kg_stats__new(10, 64);
	struct grab g = {0};

	(void)state;
	kg_stats__add(st, "b", NOW - 120000, 1, NOW);
	kg_stats__add(st, "b", NOW - 90000, 2, NOW);
	kg_stats__add(st, "b", NOW, 3, NOW);
	kg_stats__flush_at(st, NOW, 0, 1000, grab_cb, &g);
	assert_int_equal(g.v.count[0], 1);
	assert_int_equal(g.v.count[1], 3);
	/* the wall clock steps back 100 s: a sample stamped NOW - 130 s is within a minute of it */
	assert_int_equal(kg_stats__add(st, "b", NOW - 130000, 4, NOW - 100000), 0);
	g.calls = 0;
	kg_stats__flush_at(st, NOW - 100000, 2000, 1000, grab_cb, &g);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.v.count[0], 1);
	assert_true(g.v.avg[0] == 3);
	assert_int_equal(g.v.count[1], 4);
	assert_true(g.v.avg[1] == 2.5);
	kg_stats__free(st);
}

/* Eviction takes streams out of the dirty list and the wheel: a flush never meets them again. */
static void test_flush_after_eviction(void **state)
{
	struct kg_stats *st = kg_stats__new(3, 8);
	struct cleared cl = {0};
	struct grab g = {0};
	uint64_t before;

	(void)state;
	kg_stats__set_group_limit(st, 2);
	kg_stats__add_grouped(st, "g/1", 2, NOW, 1, NOW);
	kg_stats__add(st, "s2", NOW, 2, NOW);
	kg_stats__add(st, "s3", NOW, 3, NOW);
	assert_int_equal(kg_stats__flush_at(st, NOW, 0, 1000, NULL, NULL), 3); /* all three in the wheel */
	kg_stats__add(st, "s3", NOW + 10, 3, NOW + 10);                         /* s3 dirty */
	kg_stats__add(st, "s4", NOW + 20, 4, NOW + 20);                         /* evicts g/1 (wheel) */
	kg_stats__add(st, "s5", NOW + 30, 5, NOW + 30);                         /* evicts s2 (wheel) */
	kg_stats__add(st, "s6", NOW + 40, 6, NOW + 40);                         /* evicts s3 (dirty) */
	assert_int_equal(kg_stats__drain_evicted(st, clear_cb, &cl), 3);
	before = visits(st);
	assert_int_equal(kg_stats__flush_at(st, NOW + 50, 2000, 1000, grab_cb, &g), 3);
	assert_int_equal(visits(st) - before, 3);
	assert_string_equal(g.v.key, "s4");
	/* a group's own eviction */
	kg_stats__add_grouped(st, "g/a", 2, NOW + 60, 1, NOW + 60);             /* evicts s4 (wheel) */
	kg_stats__add_grouped(st, "g/b", 2, NOW + 70, 1, NOW + 70);             /* evicts s5 */
	assert_int_equal(kg_stats__flush_at(st, NOW + 80, 4000, 1000, NULL, NULL), 2);
	kg_stats__add_grouped(st, "g/c", 2, NOW + 90, 1, NOW + 90);             /* evicts g/a (its group's) */
	before = visits(st);
	g.calls = 0;
	assert_int_equal(kg_stats__flush_at(st, NOW + 60100, 6000, 1000, grab_cb, &g), 3); /* s6, g/b, g/c due */
	assert_int_equal(visits(st) - before, 3);
	assert_string_equal(g.v.key, "s6");
	kg_stats__free(st);
}

/* The flush against a brute-force model of what it replaced (every stream expired at every flush;
 * dirty streams handed out most recently updated first, at most once per min_interval): random
 * samples in and out of order, too old, far in the future (beyond the wheel's turn), flushes at
 * random times with the wall clock stepping forward (past every window) and back (up to two
 * hours), min_interval 0 or 1000. Every view handed out, and the order, must be the model's. */
#define MK 12
#define MS 4096
struct mstream {
	bool live, dirty, has_latest;
	size_t n;
	int64_t t[MS];
	double v[MS];
	bool in[MS][KG_STATS_WINDOWS];
	int64_t pub_at;
	uint64_t seq;
	double latest;
	int64_t latest_at;
};
static struct mstream model[MK];
static uint64_t model_seq;

static bool m_expire(struct mstream *m, int64_t now)
{
	bool changed = false;
	size_t i, k = 0;
	int w;

	for(i = 0; i < m->n; i++){
		for(w = 0; w < KG_STATS_WINDOWS; w++){
			if(m->in[i][w] && m->t[i] < now - kg_stats_window_ms[w]){
				m->in[i][w] = false;
				changed = true;
			}
		}
	}
	for(i = 0; i < m->n; i++){
		if(!m->in[i][KG_STATS_WINDOWS - 1]) continue;
		m->t[k] = m->t[i];
		m->v[k] = m->v[i];
		memcpy(m->in[k], m->in[i], sizeof(m->in[0]));
		k++;
	}
	m->n = k;
	return changed;
}

static int m_add(int key, int64_t t, double v, int64_t now)
{
	struct mstream *m = &model[key];
	size_t pos, i;
	int w;

	if(!m->live){
		if(t < now - kg_stats_window_ms[KG_STATS_WINDOWS - 1]) return 1;
		memset(m, 0, sizeof(*m));
		m->live = true;
		m->pub_at = INT64_MIN / 2;
	}
	m->seq = ++model_seq;
	if(m_expire(m, now)) m->dirty = true;
	if(t < now - kg_stats_window_ms[KG_STATS_WINDOWS - 1]) return 1;
	assert_true(m->n < MS);
	for(pos = m->n; pos > 0 && m->t[pos - 1] > t; pos--) ;
	memmove(&m->t[pos + 1], &m->t[pos], (m->n - pos) * sizeof(m->t[0]));
	memmove(&m->v[pos + 1], &m->v[pos], (m->n - pos) * sizeof(m->v[0]));
	memmove(&m->in[pos + 1], &m->in[pos], (m->n - pos) * sizeof(m->in[0]));
	m->n++;
	m->t[pos] = t;
	m->v[pos] = v;
	for(w = 0; w < KG_STATS_WINDOWS; w++){
		/* in the window by time, unless a sample that already left it is newer */
		bool in = t >= now - kg_stats_window_ms[w];

		for(i = 0; in && i < m->n; i++) if(i != pos && !m->in[i][w] && m->t[i] > t) in = false;
		m->in[pos][w] = in;
	}
	if(!m->has_latest || t >= m->latest_at){
		m->has_latest = true;
		m->latest = v;
		m->latest_at = t;
	}
	m->dirty = true;
	return 0;
}

struct pubrec {
	int n;
	struct { char key[16]; struct kg_stats_view v; } e[MK];
};

static void rec_cb(const struct kg_stats_view *v, void *arg)
{
	struct pubrec *r = arg;

	assert_true(r->n < MK);
	snprintf(r->e[r->n].key, sizeof(r->e[0].key), "%s", v->key);
	r->e[r->n].v = *v;
	r->n++;
}

static void m_flush(int64_t now, int64_t mono, int64_t min_interval, struct pubrec *r)
{
	int order[MK], n = 0, i, j, w;

	for(i = 0; i < MK; i++){
		struct mstream *m = &model[i];

		if(!m->live) continue;
		if(m_expire(m, now)) m->dirty = true;
		if(!m->dirty || mono - m->pub_at < min_interval) continue;
		m->dirty = false;
		m->pub_at = mono;
		order[n++] = i;
	}
	for(i = 1; i < n; i++){ /* most recently updated first */
		for(j = i; j > 0 && model[order[j]].seq > model[order[j - 1]].seq; j--){
			int x = order[j];

			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	}
	r->n = n;
	for(i = 0; i < n; i++){
		struct mstream *m = &model[order[i]];

		snprintf(r->e[i].key, sizeof(r->e[0].key), "m%d", order[i]);
		for(w = 0; w < KG_STATS_WINDOWS; w++){
			double sum = 0;
			uint64_t cnt = 0;

			for(size_t k = 0; k < m->n; k++) if(m->in[k][w]){ cnt++; sum += m->v[k]; }
			r->e[i].v.count[w] = cnt;
			r->e[i].v.avg[w] = cnt ? sum / (double)cnt : 0;
		}
		r->e[i].v.has_latest = m->has_latest;
		r->e[i].v.latest = m->latest;
		r->e[i].v.latest_at = m->latest_at;
	}
}

static void test_flush_against_full_scan(void **state)
{
	struct kg_stats *st = kg_stats__new(MK, 100000);
	struct pubrec got, want;
	struct kg_stats_counters c;
	uint64_t seed = 0x9E3779B97F4A7C15ULL, published = 0, steps_back = 0, steps_fwd = 0;
	int64_t now = NOW, mono = 1000;
	char key[16];
	int i, k, w;

	(void)state;
	memset(model, 0, sizeof(model));
	model_seq = 0;
	for(i = 0; i < 40000; i++){
		uint64_t r;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		r = seed >> 33;
		if(r % 3 != 0){ /* a sample */
			int64_t t;
			double v = (double)(int64_t)(r % 2001) / 10.0 - 100.0;
			int key_i = (int)((r >> 8) % MK), rc;

			if(r % 53 == 0) t = now + 40LL * 60 * 1000 + (int64_t)(r % 100000); /* beyond the wheel */
			else if(r % 29 == 0) t = now - 1800001 - (int64_t)(r % 1000);         /* too old */
			else t = now - (int64_t)((r >> 4) % (32 * 60 * 1000)) + 5000;
			snprintf(key, sizeof(key), "m%d", key_i);
			rc = kg_stats__add(st, key, t, v, now);
			assert_int_equal(rc, m_add(key_i, t, v, now));
		}else{ /* a flush */
			int64_t min_interval = (r >> 5) % 4 == 0 ? 0 : 1000;

			size_t n;

			got.n = 0;
			n = kg_stats__flush_at(st, now, mono, min_interval, rec_cb, &got);
			m_flush(now, mono, min_interval, &want);
			assert_int_equal(n, (size_t)got.n);
			assert_int_equal(got.n, want.n);
			for(k = 0; k < got.n; k++){
				assert_string_equal(got.e[k].key, want.e[k].key);
				for(w = 0; w < KG_STATS_WINDOWS; w++){
					double a = got.e[k].v.avg[w], b = want.e[k].v.avg[w];

					assert_int_equal(got.e[k].v.count[w], want.e[k].v.count[w]);
					if(want.e[k].v.count[w]) assert_true(fabs(a - b) <= 1e-9 * (1 + fabs(b)));
				}
				assert_int_equal(got.e[k].v.has_latest, want.e[k].v.has_latest);
				assert_true(got.e[k].v.latest == want.e[k].v.latest);
				assert_int_equal(got.e[k].v.latest_at, want.e[k].v.latest_at);
			}
			published += (uint64_t)got.n;
		}
		/* time moves */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		r = seed >> 33;
		mono += (int64_t)(r % 700);
		if(r % 401 == 0){ now += 3LL * 3600 * 1000; steps_fwd++; }
		else if(r % 211 == 0){ now -= (int64_t)(r % (2 * 3600 * 1000)); steps_back++; }
		else now += (int64_t)(r % 700);
	}
	/* the run went through what it is meant to test */
	kg_stats__counters(st, &c);
	print_message("full-scan model: %llu views compared, %llu flushes, %llu visits, %llu steps forward, %llu back\n",
			(unsigned long long)published, (unsigned long long)c.flushes, (unsigned long long)c.flush_visits,
			(unsigned long long)steps_fwd, (unsigned long long)steps_back);
	assert_true(published > 5000);
	assert_true(steps_fwd > 5 && steps_back > 5);
	assert_true(c.flush_visits < c.flushes * MK); /* fewer than the full scan's */
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
		cmocka_unit_test(test_flush_visits_only_due),
		cmocka_unit_test(test_flush_wall_steps),
		cmocka_unit_test(test_add_after_step_back),
		cmocka_unit_test(test_flush_after_eviction),
		cmocka_unit_test(test_flush_against_full_scan),
		cmocka_unit_test(test_parse_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
