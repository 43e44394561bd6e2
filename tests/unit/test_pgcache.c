/* test_pgcache.c -- the PostgreSQL writer's id cache: put/find, growth, colliding ids, clear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/pgcache.h"

static void test_put_find(void **state)
{
	struct kg_pgcache *c = kg_pgcache__new();
	struct kg_pgcache_entry *e;
	(void)state;

	assert_non_null(c);
	assert_null(kg_pgcache__find(c, 7));                  /* empty, nothing allocated yet */
	e = kg_pgcache__put(c, 7);
	assert_non_null(e);
	assert_int_equal(e->id, 7);
	assert_int_equal(e->state, KG_PGCACHE_PENDING);       /* never EMPTY once put */
	e->state = KG_PGCACHE_KNOWN;
	e->kit_id = 3;
	strcpy(e->serial, "k-test-0003");
	assert_ptr_equal(kg_pgcache__put(c, 7), e);           /* put of a present id finds it */
	assert_int_equal(kg_pgcache__find(c, 7)->kit_id, 3);
	assert_null(kg_pgcache__find(c, 8));
	assert_int_equal(kg_pgcache__used(c), 1);
	kg_pgcache__free(c);
}

/* Many ids, negative ones and ids that hash alike (multiples of a power of two), across
 * several growths: every one is found with its own data. */
static void test_growth_and_collisions(void **state)
{
	struct kg_pgcache *c = kg_pgcache__new();
	int32_t i;
	(void)state;

	for(i = 0; i < 5000; i++){
		int32_t id = i % 2 ? -i * 4096 : i * 4096;
		struct kg_pgcache_entry *e = kg_pgcache__put(c, id);

		assert_non_null(e);
		e->state = KG_PGCACHE_KNOWN;
		e->cfg_id = i;
	}
	assert_int_equal(kg_pgcache__used(c), 5000);
	for(i = 0; i < 5000; i++){
		struct kg_pgcache_entry *e = kg_pgcache__find(c, i % 2 ? -i * 4096 : i * 4096);

		assert_non_null(e);
		assert_int_equal(e->cfg_id, i);
	}
	assert_null(kg_pgcache__find(c, 4095));
	kg_pgcache__clear(c);
	assert_int_equal(kg_pgcache__used(c), 0);
	assert_null(kg_pgcache__find(c, 4096));
	assert_non_null(kg_pgcache__put(c, 4096));            /* usable after a clear */
	assert_int_equal(kg_pgcache__used(c), 1);
	kg_pgcache__free(c);
	kg_pgcache__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_find),
		cmocka_unit_test(test_growth_and_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
