/* test_tokenbucket.c -- plugin/util/tokenbucket.c on an injected clock: a full burst at first use,
 * then exactly the rate; fractional refills add up; a long pause refills only up to the burst; a
 * clock going backwards refills nothing; extreme rates and bursts do not overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kitgate/tokenbucket.h"

#define MS 1000000LL
#define S (1000 * MS)

static int take_all(struct kg_tokenbucket *b, int rate, int burst, int64_t t)
{
	int n = 0;
	while(kg_tokenbucket__take(b, rate, burst, t)) n++;
	return n;
}

static void test_burst_then_rate(void **state)
{
	struct kg_tokenbucket b = {0};
	int64_t t = 77 * S;
	int i, n = 0;

	(void)state;
	assert_int_equal(take_all(&b, 10, 50, t), 50);          /* the burst */
	assert_false(kg_tokenbucket__take(&b, 10, 50, t));
	t += 100 * MS;                                            /* 1/10 s: one message */
	assert_int_equal(take_all(&b, 10, 50, t), 1);
	/* a sender 10x over the limit for 10 s gets 10 per second through */
	for(i = 0; i < 1000; i++){
		t += 10 * MS;
		n += kg_tokenbucket__take(&b, 10, 50, t);
	}
	assert_int_equal(n, 100);
}

/* 3 messages/s polled every ms: no rounding loss (333.33 ms per token). */
static void test_fractional(void **state)
{
	struct kg_tokenbucket b = {0};
	int64_t t = 0;
	int i, n = 0;

	(void)state;
	assert_int_equal(take_all(&b, 3, 2, t), 2);
	for(i = 0; i < 3000; i++){
		t += MS;
		n += kg_tokenbucket__take(&b, 3, 2, t);
	}
	assert_int_equal(n, 9);
}

static void test_pause_and_backwards(void **state)
{
	struct kg_tokenbucket b = {0};
	int64_t t = 5 * S;

	(void)state;
	assert_int_equal(take_all(&b, 1, 3, t), 3);
	t += 3600 * S;                                            /* an hour: still only the burst */
	assert_int_equal(take_all(&b, 1, 3, t), 3);
	t -= 10 * S;                                              /* backwards: nothing accrues */
	assert_int_equal(take_all(&b, 1, 3, t), 0);
	t += 10 * S;                                              /* back where it was: nothing either */
	assert_int_equal(take_all(&b, 1, 3, t), 0);
	t += S;
	assert_int_equal(take_all(&b, 1, 3, t), 1);
}

static void test_extremes(void **state)
{
	struct kg_tokenbucket b = {0};
	int64_t t = INT64_MAX / 4;

	(void)state;
	assert_true(kg_tokenbucket__take(&b, 1000000, 1000000, t));
	t += 1000 * S;
	assert_int_equal(take_all(&b, 1000000, 1000000, t), 1000000);
	t += 1;                                                   /* 1 ns at 1e6/s: a thousandth of one */
	assert_false(kg_tokenbucket__take(&b, 1000000, 1000000, t));
	t += 1000;                                                /* 1 us: one */
	assert_true(kg_tokenbucket__take(&b, 1000000, 1000000, t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_fractional),
		cmocka_unit_test(test_pause_and_backwards),
		cmocka_unit_test(test_extremes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
