/* test_backoff.c -- plugin/backoff.c: the per-serial login failure windows (1 s doubling to 30 s,
 * cleared by a success, restarted after a quiet spell) and the bounded table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "kitgate/backoff.h"

static void test_window_doubles_and_caps(void **state)
{
	struct kg_backoff *b = kg_backoff__new(16, 1000, 30000);
	int64_t t = 1000000, want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	size_t i;

	(void)state;
	assert_non_null(b);
	assert_int_equal(kg_backoff__remaining(b, "k-1", t), 0);
	for(i = 0; i < sizeof(want) / sizeof(want[0]); i++){
		assert_int_equal(kg_backoff__fail(b, "k-1", t), want[i]);
		assert_int_equal(kg_backoff__remaining(b, "k-1", t), want[i]);
		assert_int_equal(kg_backoff__remaining(b, "k-1", t + want[i] - 1), 1);
		assert_int_equal(kg_backoff__remaining(b, "k-2", t), 0);     /* other serials unaffected */
		t += want[i];                                                  /* the next check after the window */
		assert_int_equal(kg_backoff__remaining(b, "k-1", t), 0);
	}
	assert_int_equal(kg_backoff__count(b), 1);
	assert_true(kg_backoff__has(b, "k-1"));          /* on record after its window ended */
	assert_false(kg_backoff__has(b, "k-2"));
	/* a success forgets it: the next failure starts at 1 s again */
	kg_backoff__clear(b, "k-1");
	assert_int_equal(kg_backoff__count(b), 0);
	assert_false(kg_backoff__has(b, "k-1"));
	assert_int_equal(kg_backoff__remaining(b, "k-1", t - 1), 0);
	assert_int_equal(kg_backoff__fail(b, "k-1", t), 1000);
	/* quiet for longer than the maximum after the window: start over */
	assert_int_equal(kg_backoff__fail(b, "k-1", t + 1000), 2000);
	assert_int_equal(kg_backoff__fail(b, "k-1", t + 3000 + 30001), 1000);
	kg_backoff__clear(b, "nope");                                      /* unknown serial: no-op */
	assert_int_equal(kg_backoff__count(b), 1);
	kg_backoff__free(b);
}

/* More serials than slots: memory stays bounded, running windows outlive expired ones. */
static void test_bounded(void **state)
{
	struct kg_backoff *b = kg_backoff__new(4, 1000, 30000);   /* one set of 4 ways */
	char s[16];
	int i, blocked = 0;

	(void)state;
	assert_non_null(b);
	for(i = 0; i < 1000; i++){
		snprintf(s, sizeof(s), "k-%d", i);
		kg_backoff__fail(b, s, 0);
	}
	assert_int_equal(kg_backoff__count(b), 4);
	for(i = 0; i < 1000; i++){
		snprintf(s, sizeof(s), "k-%d", i);
		blocked += kg_backoff__remaining(b, s, 1) > 0;
	}
	assert_int_equal(blocked, 4);
	/* the long window of a hammered serial survives a stream of new ones whose windows end sooner */
	kg_backoff__fail(b, "victim", 100);
	kg_backoff__fail(b, "victim", 1100);
	kg_backoff__fail(b, "victim", 3100);      /* 4 s: until 7100 */
	for(i = 0; i < 3; i++){
		snprintf(s, sizeof(s), "new-%d", i);
		kg_backoff__fail(b, s, 3200);       /* until 4200 */
	}
	assert_true(kg_backoff__remaining(b, "victim", 5000) > 0);
	assert_int_equal(kg_backoff__count(b), 4);
	/* bad arguments */
	assert_null(kg_backoff__new(4, 0, 1000));
	assert_null(kg_backoff__new(4, 2000, 1000));
	assert_int_equal(kg_backoff__fail(b, "", 0), 0);
	assert_int_equal(kg_backoff__remaining(b, NULL, 0), 0);
	assert_false(kg_backoff__has(b, NULL));
	assert_false(kg_backoff__has(b, ""));
	kg_backoff__free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_doubles_and_caps),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
