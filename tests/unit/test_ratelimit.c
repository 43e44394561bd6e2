/* test_ratelimit.c -- the log-line rate limiter shared by the plugin and the PostgreSQL writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "kitgate/log.h"
#include "kitgate/ratelimit.h"

static void test_one_line_per_second(void **state)
{
	struct kg_ratelimit rl = {0};
	struct timespec pause = { 1, 50000000L }; /* 1.05 s */
	uint64_t suppressed = 99;
	(void)state;

	assert_true(kg_ratelimit__allow(&rl, &suppressed)); /* the first line always passes */
	assert_int_equal(suppressed, 0);
	for(int i = 0; i < 5; i++) assert_false(kg_ratelimit__allow(&rl, &suppressed));
	nanosleep(&pause, NULL);
	assert_true(kg_ratelimit__allow(&rl, &suppressed));
	assert_int_equal(suppressed, 5);                      /* and it reports what was held back */
	assert_false(kg_ratelimit__allow(&rl, &suppressed));
}

/* A cause that lasts (a full disk asks for 4 lines a second for ten minutes): one line a second
 * in its first minute, then one a minute, each reporting what it held back; after a quiet minute
 * the limiter is fast again. Injected clock. */
static void test_busy_backs_off_to_one_a_minute(void **state)
{
	struct kg_ratelimit rl = {0};
	uint64_t suppressed, held = 0, asked = 0, lines = 0, per_min[10] = {0};
	int64_t t0 = 5000, t;
	(void)state;

	for(t = t0; t < t0 + 600000; t += 250){
		asked++;
		if(kg_ratelimit__allow_at(&rl, t, &suppressed)){
			lines++;
			held += suppressed;
			per_min[(t - t0) / 60000]++;
		}
	}
	assert_in_range(per_min[0], 59, 61);   /* the first minute: one a second */
	for(int m = 1; m < 10; m++) assert_int_equal(per_min[m], 1); /* then one a minute */
	assert_int_equal(held + rl.suppressed + lines, asked);   /* nothing held back goes uncounted */
	/* quiet for a minute: fast again */
	t += 60000;
	assert_true(kg_ratelimit__allow_at(&rl, t, &suppressed));
	assert_false(kg_ratelimit__allow_at(&rl, t + 500, &suppressed));
	assert_true(kg_ratelimit__allow_at(&rl, t + 1000, &suppressed));
	assert_int_equal(suppressed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_second),
		cmocka_unit_test(test_busy_backs_off_to_one_a_minute),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
