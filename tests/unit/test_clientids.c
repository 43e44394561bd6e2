/* test_clientids.c -- unit tests for plugin/auth/clientids.c: who owns a client id, clean and persistent
 * sessions, takeovers by the same owner, the per-username bound, a full table, and the eviction
 * attack of issue 19 (one kit churning fresh ids must not push out another kit's). */
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
	struct kg_clientids *m = kg_clientids__new(8, 4);

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
	struct kg_clientids *m = kg_clientids__new(8, 4);

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

/* Issue 19 item 1, replayed on the module: the victim's MQTT v5 persistent session is offline; the
 * attacker kit makes 70,000 CONNECT/DISCONNECT cycles with fresh ids (v5: each stays owned after its
 * disconnect), then presents the victim's id. Same table size as the plugin had (65,536). */
static void test_churn_attack(void **state)
{
	struct kg_clientids *m = kg_clientids__new(65536, 16);
	char id[32];
	int conn[1];

	(void)state;
	assert_int_equal(kg_clientids__record(m, "victim-id", "k-victim", &c1), 0);
	kg_clientids__disconnected(m, "victim-id", &c1, false);       /* offline, session persists */
	for(int i = 0; i < 70000; i++){
		snprintf(id, sizeof(id), "churn-%d", i);
		assert_true(kg_clientids__may_use(m, id, "k-attacker"));
		assert_true(kg_clientids__has_room(m, id, "k-attacker"));
		assert_int_equal(kg_clientids__record(m, id, "k-attacker", conn), 0);
		kg_clientids__disconnected(m, id, conn, false);            /* v5: stays owned */
	}
	assert_false(kg_clientids__may_use(m, "victim-id", "k-attacker")); /* takeover refused */
	assert_true(kg_clientids__may_use(m, "victim-id", "k-victim"));    /* the victim is not blocked */
	assert_true(kg_clientids__has_room(m, "victim-id", "k-victim"));
	assert_int_equal(kg_clientids__owned(m, "k-attacker"), 16);        /* bounded per username */
	assert_int_equal(kg_clientids__owned(m, "k-victim"), 1);
	assert_int_equal(kg_clientids__count(m), 17);
	assert_int_equal(kg_clientids__evicted(m), 70000 - 16);            /* all the attacker's own */
	assert_false(kg_clientids__may_use(m, "churn-69999", "k-victim")); /* its newest still owned */
	assert_true(kg_clientids__may_use(m, "churn-0", "k-victim"));      /* its oldest forgotten */
	kg_clientids__free(m);
}

/* A username at its bound forgets its own least recently used *offline* id, never an online one,
 * never another username's; with every id online it may exceed the bound (as many as connections). */
static void test_per_user_bound(void **state)
{
	struct kg_clientids *m = kg_clientids__new(100, 3);
	int on[5];

	(void)state;
	assert_int_equal(kg_clientids__record(m, "o", "k-other", &c3), 0);
	kg_clientids__disconnected(m, "o", &c3, false);
	assert_int_equal(kg_clientids__record(m, "a", "k-1", &on[0]), 0);
	assert_int_equal(kg_clientids__record(m, "b", "k-1", &on[1]), 0);
	assert_int_equal(kg_clientids__record(m, "c", "k-1", &on[2]), 0);
	kg_clientids__disconnected(m, "b", &on[1], false);
	kg_clientids__disconnected(m, "a", &on[0], false);
	assert_int_equal(kg_clientids__record(m, "a", "k-1", &on[0]), 0); /* a online again, most recent */
	assert_int_equal(kg_clientids__record(m, "d", "k-1", &on[3]), 0); /* forgets b: its only offline id */
	assert_int_equal(kg_clientids__evicted(m), 1);
	assert_true(kg_clientids__may_use(m, "b", "k-2"));
	assert_false(kg_clientids__may_use(m, "a", "k-2"));
	assert_false(kg_clientids__may_use(m, "c", "k-2"));
	assert_false(kg_clientids__may_use(m, "d", "k-2"));
	assert_false(kg_clientids__may_use(m, "o", "k-1"));               /* never another user's */
	/* all three online: a fourth exceeds the bound rather than unprotect a live session */
	assert_int_equal(kg_clientids__record(m, "e", "k-1", &on[4]), 0);
	assert_int_equal(kg_clientids__owned(m, "k-1"), 4);
	assert_int_equal(kg_clientids__evicted(m), 1);
	/* a bound of 1: the owner's only id is replaced (the owner survives the swap) */
	kg_clientids__free(m);
	m = kg_clientids__new(10, 1);
	assert_int_equal(kg_clientids__record(m, "x", "k-1", &c1), 0);
	kg_clientids__disconnected(m, "x", &c1, false);
	assert_int_equal(kg_clientids__record(m, "y", "k-1", &c1), 0);
	assert_int_equal(kg_clientids__owned(m, "k-1"), 1);
	assert_true(kg_clientids__may_use(m, "x", "k-2"));
	assert_false(kg_clientids__may_use(m, "y", "k-2"));
	kg_clientids__disconnected(m, "y", &c1, true);
	assert_int_equal(kg_clientids__count(m), 0);
	assert_int_equal(kg_clientids__owned(m, "k-1"), 0);
	kg_clientids__free(m);
}

/* A full table refuses new ids (has_room false, record -2) instead of evicting anybody's; an owner's
 * known id, or a new one for an owner at its bound with an offline id to forget, still fits. */
static void test_full_table(void **state)
{
	struct kg_clientids *m = kg_clientids__new(4, 2);
	int on;

	(void)state;
	assert_int_equal(kg_clientids__record(m, "a1", "k-a", &c1), 0);
	assert_int_equal(kg_clientids__record(m, "a2", "k-a", &c2), 0);
	kg_clientids__disconnected(m, "a1", &c1, false);
	assert_int_equal(kg_clientids__record(m, "b1", "k-b", &c3), 0);
	assert_int_equal(kg_clientids__record(m, "c1", "k-c", &on), 0);
	assert_int_equal(kg_clientids__count(m), 4);
	assert_false(kg_clientids__has_room(m, "d1", "k-d"));
	assert_int_equal(kg_clientids__record(m, "d1", "k-d", &on), -2);
	assert_false(kg_clientids__has_room(m, "b2", "k-b"));              /* k-b is below its bound */
	assert_true(kg_clientids__has_room(m, "b1", "k-b"));               /* its own id */
	assert_true(kg_clientids__has_room(m, "a3", "k-a"));               /* forgets its offline a1 */
	assert_int_equal(kg_clientids__record(m, "a3", "k-a", &c1), 0);
	assert_true(kg_clientids__may_use(m, "a1", "k-d"));
	assert_int_equal(kg_clientids__count(m), 4);
	assert_false(kg_clientids__has_room(m, "a4", "k-a"));              /* a2, a3 online */
	assert_true(kg_clientids__has_room(m, "x", NULL));                 /* anonymous records nothing */
	for(int i = 0; i < 4; i++){
		assert_false(kg_clientids__may_use(m, (const char *[]){"a2", "a3", "b1", "c1"}[i], "k-d"));
	}
	kg_clientids__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_sessions),
		cmocka_unit_test(test_churn_attack),
		cmocka_unit_test(test_per_user_bound),
		cmocka_unit_test(test_full_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
