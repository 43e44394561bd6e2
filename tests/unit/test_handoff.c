/* test_handoff.c -- the broker->worker hand-off: bounds, spilling to the spool, order, replay. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>

#include "kitgate/handoff.h"
#include "kitgate/spool.h"

static char *make_dir(void)
{
	char tmpl[] = "/tmp/kg-handoff-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void remove_dir(char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static void push_n(struct kg_handoff *h, uint32_t from, uint32_t n, int expect)
{
	for(uint32_t i = from; i < from + n; i++){
		assert_int_equal(kg_handoff__push(h, (const uint8_t *)&i, sizeof(i)), expect);
	}
}

/* Take everything available and check it is exactly from..from+n-1, in order. */
static void take_expect(struct kg_handoff *h, uint32_t from, uint32_t n)
{
	struct kg_item *items[64];
	uint32_t next = from;

	while(next < from + n){
		size_t got = kg_handoff__take(h, items, 64, 1, 50);
		assert_true(got > 0);
		for(size_t i = 0; i < got; i++){
			uint32_t v;
			assert_int_equal(items[i]->len, sizeof(v));
			memcpy(&v, items[i]->body, sizeof(v));
			assert_int_equal(v, next);
			next++;
			free(items[i]);
		}
	}
	assert_true(kg_handoff__empty(h));
}

static void test_memory_only_bounded(void **state)
{
	struct kg_handoff *h;
	struct kg_item *items[8];
	(void)state;

	assert_non_null(h = kg_handoff__new(10, NULL));
	push_n(h, 0, 10, 0);
	push_n(h, 10, 1, -ENOBUFS);    /* full, no spool: refused */
	assert_int_equal(kg_handoff__depth(h, NULL, NULL), 10);
	take_expect(h, 0, 10);
	push_n(h, 10, 3, 0);           /* room again */
	take_expect(h, 10, 3);
	assert_int_equal(kg_handoff__take(h, items, 8, 1, 10), 0); /* timeout, nothing */
	kg_handoff__free(h);
}

static void test_spill_keeps_order(void **state)
{
	struct kg_handoff *h;
	struct kg_spool *sp;
	char *dir = make_dir();
	bool spilling;
	(void)state;

	assert_int_equal(kg_spool__open(&sp, dir, 1 << 20), 0);
	assert_non_null(h = kg_handoff__new(5, sp));
	push_n(h, 0, 1000, 0);         /* 5 in memory, 995 on disk only */
	assert_int_equal(kg_handoff__depth(h, &spilling, NULL), 5);
	assert_true(spilling);
	take_expect(h, 0, 1000);       /* memory first, then the spool, in order */
	kg_handoff__depth(h, &spilling, NULL);
	assert_false(spilling);          /* caught up */
	push_n(h, 1000, 3, 0);
	assert_int_equal(kg_handoff__depth(h, NULL, NULL), 3); /* back in memory */
	take_expect(h, 1000, 3);
	kg_handoff__free(h);
	kg_spool__close(sp);
	remove_dir(dir);
}

static void test_replay_after_restart(void **state)
{
	struct kg_handoff *h;
	struct kg_spool *sp;
	struct kg_item *items[4];
	char *dir = make_dir();
	uint64_t committed;
	(void)state;

	assert_int_equal(kg_spool__open(&sp, dir, 1 << 20), 0);
	assert_non_null(h = kg_handoff__new(100, sp));
	push_n(h, 0, 10, 0);
	/* The worker settles the first 4 and commits; the rest are lost from memory (a crash). */
	assert_int_equal(kg_handoff__take(h, items, 4, 1, 10), 4);
	committed = items[3]->end;
	for(int i = 0; i < 4; i++) free(items[i]);
	assert_int_equal(kg_spool__commit(sp, committed), 0);
	kg_handoff__free(h);
	kg_spool__close(sp);

	assert_int_equal(kg_spool__open(&sp, dir, 1 << 20), 0);
	assert_non_null(h = kg_handoff__new(100, sp));
	push_n(h, 10, 5, 0);           /* new records wait behind the replay */
	take_expect(h, 4, 11);         /* 4..9 replayed, then 10..14 */
	kg_handoff__free(h);
	kg_spool__close(sp);
	remove_dir(dir);
}

static void test_rewind(void **state)
{
	struct kg_handoff *h;
	struct kg_spool *sp;
	struct kg_item *items[16];
	char *dir = make_dir();
	uint64_t pos;
	size_t n;
	(void)state;

	assert_int_equal(kg_spool__open(&sp, dir, 1 << 20), 0);
	assert_non_null(h = kg_handoff__new(100, sp));
	push_n(h, 0, 10, 0);
	n = kg_handoff__take(h, items, 3, 1, 10);
	assert_int_equal(n, 3);
	pos = items[1]->end;            /* 0 and 1 are done; 2 failed */
	for(size_t i = 0; i < n; i++) free(items[i]);
	kg_handoff__rewind(h, pos);
	take_expect(h, 2, 8);          /* 2..9 again, from the spool */
	kg_handoff__free(h);
	kg_spool__close(sp);
	remove_dir(dir);
}

static void test_stop_wakes_taker(void **state)
{
	struct kg_handoff *h;
	struct kg_item *items[4];
	(void)state;

	assert_non_null(h = kg_handoff__new(4, NULL));
	assert_false(kg_handoff__stopping(h));
	kg_handoff__stop(h);
	assert_true(kg_handoff__stopping(h));
	assert_int_equal(kg_handoff__take(h, items, 4, 1, 10000), 0); /* returns at once */
	kg_handoff__free(h);
}

struct producer {
	struct kg_handoff *h;
	uint32_t n;
};

static void *produce_slowly(void *arg)
{
	struct producer *pr = arg;
	for(uint32_t i = 0; i < pr->n; i++){
		struct timespec ts = { 0, 2000000L }; /* 2 ms */
		nanosleep(&ts, NULL);
		kg_handoff__push(pr->h, (const uint8_t *)&i, sizeof(i));
	}
	return NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A lingering take returns once min records are queued, or what there is at its deadline. */
static void test_linger_threshold(void **state)
{
	struct kg_handoff *h;
	struct kg_item *items[32];
	struct producer pr;
	pthread_t th;
	int64_t t0;
	size_t n;
	(void)state;

	assert_non_null(h = kg_handoff__new(100, NULL));
	push_n(h, 0, 3, 0);
	t0 = mono_ms();
	n = kg_handoff__take(h, items, 32, 5, 100);  /* only 3 there: waits out the 100 ms */
	assert_int_equal(n, 3);
	assert_true(mono_ms() - t0 >= 90);
	for(size_t i = 0; i < n; i++) free(items[i]);

	pr.h = h;
	pr.n = 10;
	assert_int_equal(pthread_create(&th, NULL, produce_slowly, &pr), 0);
	t0 = mono_ms();
	n = kg_handoff__take(h, items, 32, 10, 5000); /* woken when the 10th arrives, not at 5 s */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(n, 10);
	assert_true(mono_ms() - t0 < 2000);
	for(size_t i = 0; i < n; i++) free(items[i]);
	kg_handoff__free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_only_bounded),
		cmocka_unit_test(test_spill_keeps_order),
		cmocka_unit_test(test_replay_after_restart),
		cmocka_unit_test(test_rewind),
		cmocka_unit_test(test_stop_wakes_taker),
		cmocka_unit_test(test_linger_threshold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
