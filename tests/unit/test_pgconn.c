/* test_pgconn.c -- unit tests for pgconn.c's options merge (the URI's options add to kitgate's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kitgate/pgconn.h"

#define OURS "-c statement_timeout=30000 -c lock_timeout=10000"

static void expect_options(const char *conninfo, const char *want)
{
	char *got = kg_pgconn__options(conninfo);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_no_options_gives_ours(void **state)
{
	(void)state;
	unsetenv("PGOPTIONS");
	expect_options(NULL, OURS);
	expect_options("", OURS);
	expect_options("postgresql://u@127.0.0.1:5432/db", OURS);
	expect_options("host=/tmp dbname=x", OURS);
	expect_options("postgresql://u@h/db?options=", OURS); /* empty: nothing to add */
}

static void test_uri_options_are_appended(void **state)
{
	(void)state;
	unsetenv("PGOPTIONS");
	expect_options("postgresql://u@h/db?options=-c%20statement_timeout%3D5000",
			OURS " -c statement_timeout=5000");
	expect_options("host=h dbname=d options='-c search_path=ap -c work_mem=8MB'",
			OURS " -c search_path=ap -c work_mem=8MB");
}

static void test_pgoptions_only_without_uri_options(void **state)
{
	(void)state;
	setenv("PGOPTIONS", "-c geqo=off", 1);
	expect_options("postgresql://u@h/db", OURS " -c geqo=off");
	expect_options("postgresql://u@h/db?options=-c%20jit%3Doff", OURS " -c jit=off");
	unsetenv("PGOPTIONS");
}

static void test_unparsable_conninfo_gives_ours(void **state)
{
	(void)state;
	unsetenv("PGOPTIONS");
	expect_options("host=h 'unterminated", OURS);
	expect_options("postgresql://[::1", OURS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_options_gives_ours),
		cmocka_unit_test(test_uri_options_are_appended),
		cmocka_unit_test(test_pgoptions_only_without_uri_options),
		cmocka_unit_test(test_unparsable_conninfo_gives_ours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
