/* test_clientids.c -- unit tests for plugin/auth/clientids.c: who owns a client id, clean and persistent
 * sessions, takeovers by the same owner, LRU eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "kitgate/clientids.h"

static int c1, c2, c3; /* connection tokens: only their addresses matter */

static void test_owner(void **state)
{
	struct kg_clientids *m = kg_clientids__new(8);

	(void)state;
	assert_non_null(m);
	assert_true(kg_clientids__may_use(m, "kit-a", "k-1"));      /* unknown: free */
	assert_true(kg_clientids__may_use(m, "kit-a", NULL));
	assert_int_equal(kg_clientids__record(m, "kit-a", "k-1", &c1), 0);
	assert_true(kg_clientids__may_use(m, "kit-a", "k-1"));      /* the owner again */
	assert_false(kg_clientids__may_use(m, "kit-a", "k-2"));     /* another kit */
	assert_false(kg_clientids__may_use(m, "kit-a", NULL));      /* anonymous */
	assert_false(kg_clientids__may_use(m, "kit-a", "server"));  /* a service user too */
	assert_false(kg_clientids__may_use(m, "kit-a", "k-"));      /* prefix */
	assert_false(kg_clientids__may_use(m, "kit-a", "k-11"));
	assert_true(kg_clientids__may_use(m, "kit-b", "k-2"));
	assert_true(kg_clientids__may_use(m, "kit-", "k-2"));
	assert_int_equal(kg_clientids__count(m), 1);
	kg_clientids__free(m);
	kg_clientids__free(NULL);
}

static void test_sessions(void **state)
{
	struct kg_clientids *m = kg_clientids__new(8);

	(void)state;
	/* persistent session: stays owned while offline */
	assert_int_equal(kg_clientids__record(m, "a", "k-1", &c1), 0);
	kg_clientids__disconnected(m, "a", &c1, false);
	assert_false(kg_clientids__may_use(m, "a", "k-2"));
	/* the owner reconnects (new connection), then the old connection of a takeover by the same
	 * owner goes away: the id stays owned by the new connection */
	assert_int_equal(kg_clientids__record(m, "a", "k-1", &c2), 0);
	assert_int_equal(kg_clientids__record(m, "a", "k-1", &c3), 0);
	kg_clientids__disconnected(m, "a", &c2, true);
	assert_false(kg_clientids__may_use(m, "a", "k-2"));
	/* the current connection of a clean session goes away: forgotten */
	kg_clientids__disconnected(m, "a", &c3, true);
	assert_true(kg_clientids__may_use(m, "a", "k-2"));
	assert_int_equal(kg_clientids__count(m), 0);
	/* unknown ids, NULL ids: nothing happens */
	kg_clientids__disconnected(m, "zz", &c1, true);
	kg_clientids__disconnected(m, NULL, &c1, true);
	assert_true(kg_clientids__may_use(m, NULL, "k-1"));
	kg_clientids__free(m);
}

static void test_lru_eviction(void **state)
{
	struct kg_clientids *m = kg_clientids__new(3);
	char id[16];

	(void)state;
	assert_int_equal(kg_clientids__record(m, "a", "k-a", &c1), 0);
	assert_int_equal(kg_clientids__record(m, "b", "k-b", &c1), 0);
	assert_int_equal(kg_clientids__record(m, "c", "k-c", &c1), 0);
	assert_int_equal(kg_clientids__record(m, "a", "k-a", &c2), 0); /* a is now the most recent */
	assert_int_equal(kg_clientids__record(m, "d", "k-d", &c1), 0); /* evicts b */
	assert_int_equal(kg_clientids__count(m), 3);
	assert_int_equal(kg_clientids__evicted(m), 1);
	assert_true(kg_clientids__may_use(m, "b", "k-x"));   /* evicted: unprotected */
	assert_false(kg_clientids__may_use(m, "a", "k-x"));
	assert_false(kg_clientids__may_use(m, "c", "k-x"));
	assert_false(kg_clientids__may_use(m, "d", "k-x"));
	/* many ids through a small map: bounded, every eviction counted, the table stays consistent */
	for(int i = 0; i < 10000; i++){
		snprintf(id, sizeof(id), "r%d", i);
		assert_int_equal(kg_clientids__record(m, id, "k-r", &c1), 0);
		assert_false(kg_clientids__may_use(m, id, "k-x"));
	}
	assert_int_equal(kg_clientids__count(m), 3);
	assert_int_equal(kg_clientids__evicted(m), 1 + 10000);
	kg_clientids__disconnected(m, "r9999", &c1, true);
	assert_int_equal(kg_clientids__count(m), 2);
	kg_clientids__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_lru_eviction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
