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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_line_per_second),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
