/* test_logincache.c -- verified-login cache (plugin/auth/logincache.c): hits, binding to the stored
 * hash, no confusion between fields, bounded size with eviction, growth for a fleet. */
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

static int hits_of(struct kg_logincache *c, int from, int to)
{
	char serial[32];
	int i, hits = 0;

	for(i = from; i < to; i++){
		snprintf(serial, sizeof(serial), "k-fleet-%05d", i);
		hits += kg_logincache__hit(c, serial, "pw", 2, H1);
	}
	return hits;
}

static void add_range(struct kg_logincache *c, int from, int to)
{
	char serial[32];
	int i;

	for(i = from; i < to; i++){
		snprintf(serial, sizeof(serial), "k-fleet-%05d", i);
		kg_logincache__add(c, serial, "pw", 2, H1);
	}
}

/* A fleet of 15,000 kits: once the table is reserved for it, (practically) every kit's login stays
 * cached (no kit is re-hashed with PBKDF2 at its next reconnect because its set's neighbours
 * evicted it). */
static void test_reserve_fits_the_fleet(void **state)
{
	struct kg_logincache *c = kg_logincache__new(16384);
	(void)state;

	assert_non_null(c);
	assert_int_equal(kg_logincache__capacity(c), 16384);
	assert_int_equal(kg_logincache__reserve(c, 15000, 262144), 0);
	assert_int_equal(kg_logincache__capacity(c), 32768);          /* >= 2 x 15,000 */
	add_range(c, 0, 15000);
	/* a lost entry is possible (two full 4-way sets) but rare: a run loses one entry now and then;
	 * the table of 16,384 with one set per entry that served every fleet before lost ~2,400 (16%) */
	assert_true(kg_logincache__count(c) >= 14985);
	assert_int_equal(hits_of(c, 0, 15000), kg_logincache__count(c));
	kg_logincache__free(c);
}

/* Growing keeps what the cache held (the sets come from the digest, not the password). */
static void test_reserve_keeps_entries(void **state)
{
	struct kg_logincache *c = kg_logincache__new(256);
	(void)state;

	add_range(c, 0, 100);
	assert_int_equal(hits_of(c, 0, 100), 100);
	assert_int_equal(kg_logincache__reserve(c, 1000, 262144), 0);
	assert_int_equal(kg_logincache__capacity(c), 2048);
	assert_int_equal(kg_logincache__count(c), 100);
	assert_int_equal(hits_of(c, 0, 100), 100);
	assert_int_equal(kg_logincache__hit(c, "k-fleet-00000", "px", 2, H1), 0);
	kg_logincache__free(c);
}

/* The bound: never beyond max_entries, never shrinking; count never beyond the capacity. */
static void test_reserve_bounded(void **state)
{
	struct kg_logincache *c = kg_logincache__new(64);
	(void)state;

	assert_int_equal(kg_logincache__reserve(c, 10000000, 4096), 0);
	assert_int_equal(kg_logincache__capacity(c), 4096);
	assert_int_equal(kg_logincache__reserve(c, 10000000, 5000), 0);  /* rounded down: stays */
	assert_int_equal(kg_logincache__capacity(c), 4096);
	assert_int_equal(kg_logincache__reserve(c, 10, 4096), 0);        /* never shrinks */
	assert_int_equal(kg_logincache__capacity(c), 4096);
	add_range(c, 0, 20000);
	assert_true(kg_logincache__count(c) <= 4096);
	assert_true(kg_logincache__count(c) >= 4000);
	kg_logincache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_after_add),
		cmocka_unit_test(test_per_cache_key),
		cmocka_unit_test(test_bounded_with_lru_eviction),
		cmocka_unit_test(test_reserve_fits_the_fleet),
		cmocka_unit_test(test_reserve_keeps_entries),
		cmocka_unit_test(test_reserve_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
