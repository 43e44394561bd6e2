/* test_logincache.c -- verified-login cache (plugin/auth/logincache.c): hits, binding to the stored
 * hash, no confusion between fields, bounded size with eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/logincache.h"

#define H1 "PBKDF2$sha256$15000$saltsaltsaltsaltsalt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define H2 "PBKDF2$sha256$15000$saltsaltsaltsaltsalt$BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static void test_hit_after_add(void **state)
{
	struct kg_logincache *c = kg_logincache__new(64);
	(void)state;

	assert_non_null(c);
	assert_int_equal(kg_logincache__hit(c, "k-1", "secret", 6, H1), 0);
	kg_logincache__add(c, "k-1", "secret", 6, H1);
	assert_int_equal(kg_logincache__count(c), 1);
	assert_int_equal(kg_logincache__hit(c, "k-1", "secret", 6, H1), 1);
	kg_logincache__add(c, "k-1", "secret", 6, H1);        /* no duplicate */
	assert_int_equal(kg_logincache__count(c), 1);
	/* wrong password, other serial, a prefix of the password, another stored hash: all misses */
	assert_int_equal(kg_logincache__hit(c, "k-1", "secreT", 6, H1), 0);
	assert_int_equal(kg_logincache__hit(c, "k-2", "secret", 6, H1), 0);
	assert_int_equal(kg_logincache__hit(c, "k-1", "secret", 5, H1), 0);
	assert_int_equal(kg_logincache__hit(c, "k-1", "secret", 6, H2), 0);   /* rotated: useless */
	/* field boundaries are part of the digest */
	kg_logincache__add(c, "ab", "c", 1, H1);
	assert_int_equal(kg_logincache__hit(c, "a", "bc", 2, H1), 0);
	assert_int_equal(kg_logincache__hit(c, "ab", "c", 1, H1), 1);
	/* a password with a NUL inside is compared by length */
	kg_logincache__add(c, "k-3", "a\0b", 3, H1);
	assert_int_equal(kg_logincache__hit(c, "k-3", "a\0c", 3, H1), 0);
	assert_int_equal(kg_logincache__hit(c, "k-3", "a\0b", 3, H1), 1);
	assert_int_equal(kg_logincache__hit(c, "k-3", NULL, 0, H1), 0);
	kg_logincache__free(c);
}

/* Two caches have different keys: nothing learnt in one is a hit in the other. */
static void test_per_cache_key(void **state)
{
	struct kg_logincache *a = kg_logincache__new(16), *b = kg_logincache__new(16);
	(void)state;

	kg_logincache__add(a, "k-1", "pw", 2, H1);
	assert_int_equal(kg_logincache__hit(a, "k-1", "pw", 2, H1), 1);
	assert_int_equal(kg_logincache__hit(b, "k-1", "pw", 2, H1), 0);
	kg_logincache__free(a);
	kg_logincache__free(b);
}

static void test_bounded_with_lru_eviction(void **state)
{
	struct kg_logincache *c = kg_logincache__new(256);
	char serial[32];
	int i, hits = 0;
	(void)state;

	for(i = 0; i < 5000; i++){
		snprintf(serial, sizeof(serial), "k-%d", i);
		kg_logincache__add(c, serial, "pw", 2, H1);
		/* k-0 is used all the time: LRU keeps it */
		assert_int_equal(kg_logincache__hit(c, "k-0", "pw", 2, H1), 1);
	}
	assert_true(kg_logincache__count(c) <= 256);
	assert_true(kg_logincache__count(c) >= 200);        /* the table fills up */
	for(i = 1; i < 5000; i++){
		snprintf(serial, sizeof(serial), "k-%d", i);
		hits += kg_logincache__hit(c, serial, "pw", 2, H1);
	}
	assert_true(hits < 256);                               /* most were evicted ... */
	snprintf(serial, sizeof(serial), "k-%d", 4999);
	assert_int_equal(kg_logincache__hit(c, serial, "pw", 2, H1), 1);  /* ... the newest was not */
	kg_logincache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_after_add),
		cmocka_unit_test(test_per_cache_key),
		cmocka_unit_test(test_bounded_with_lru_eviction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
