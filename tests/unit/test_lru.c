/* test_lru.c -- unit tests for plugin/util/lru.c: insert order, touch, remove, find by key bytes,
 * eviction order, bucket collisions, list-only maps, an entry moving between maps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/lru.h"

struct item {
	int tag;
	struct kg_lru_node node;
	char key[16];
};

static const char *item_key(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct item, node)->key;
}

static struct item *item_of(const struct kg_lru_node *n)
{
	return KG_LRU_ENTRY(n, struct item, node);
}

static struct item *find(const struct kg_lru *l, const char *key)
{
	return item_of(kg_lru__find(l, key, strlen(key)));
}

/* The tags newest first, e.g. "3 1 2", checked against the walk oldest first too. */
static void order(const struct kg_lru *l, char *out, size_t cap)
{
	const struct kg_lru_node *n;
	size_t off = 0, count = 0;

	out[0] = '\0';
	for(n = kg_lru__newest(l); n; n = n->older){
		off += (size_t)snprintf(out + off, cap - off, "%s%d", off ? " " : "", item_of(n)->tag);
		count++;
	}
	assert_int_equal(count, kg_lru__count(l));
	for(n = kg_lru__oldest(l); n; n = n->newer) count--;
	assert_int_equal(count, 0);
}

static void init_items(struct item *it, int n, const char *prefix)
{
	int i;

	memset(it, 0, sizeof(*it) * (size_t)n);
	for(i = 0; i < n; i++){
		it[i].tag = i;
		snprintf(it[i].key, sizeof(it[i].key), "%s%d", prefix, i);
	}
}

static void test_order_touch_remove(void **state)
{
	struct kg_lru l;
	struct item it[4];
	char s[64];

	(void)state;
	init_items(it, 4, "k");
	assert_int_equal(kg_lru__init(&l, 4, item_key), 0);
	assert_null(kg_lru__oldest(&l));
	assert_null(find(&l, "k0"));
	kg_lru__insert(&l, &it[0].node);
	kg_lru__insert(&l, &it[1].node);
	kg_lru__insert(&l, &it[2].node);
	order(&l, s, sizeof(s));
	assert_string_equal(s, "2 1 0");
	assert_ptr_equal(item_of(kg_lru__oldest(&l)), &it[0]);

	kg_lru__touch(&l, &it[0].node);           /* oldest to newest */
	order(&l, s, sizeof(s));
	assert_string_equal(s, "0 2 1");
	kg_lru__touch(&l, &it[0].node);           /* already newest: no change */
	order(&l, s, sizeof(s));
	assert_string_equal(s, "0 2 1");
	kg_lru__touch(&l, &it[2].node);           /* a middle one */
	order(&l, s, sizeof(s));
	assert_string_equal(s, "2 0 1");

	kg_lru__remove(&l, &it[0].node);          /* middle */
	order(&l, s, sizeof(s));
	assert_string_equal(s, "2 1");
	assert_null(find(&l, "k0"));
	assert_ptr_equal(find(&l, "k1"), &it[1]);
	kg_lru__remove(&l, &it[2].node);          /* newest */
	kg_lru__insert(&l, &it[3].node);
	kg_lru__insert(&l, &it[0].node);          /* a removed node goes back in */
	order(&l, s, sizeof(s));
	assert_string_equal(s, "0 3 1");
	kg_lru__remove(&l, &it[1].node);          /* oldest */
	kg_lru__remove(&l, &it[0].node);
	kg_lru__remove(&l, &it[3].node);          /* the last one */
	assert_int_equal(kg_lru__count(&l), 0);
	assert_null(kg_lru__oldest(&l));
	assert_null(kg_lru__newest(&l));
	kg_lru__fini(&l);
}

/* The owner's eviction: remove the oldest when full, so what goes is what was touched least
 * recently. */
static void test_eviction_order(void **state)
{
	struct kg_lru l;
	struct item it[10];
	char s[64];
	int i;

	(void)state;
	init_items(it, 10, "e");
	assert_int_equal(kg_lru__init(&l, 3, item_key), 0);
	for(i = 0; i < 10; i++){
		if(kg_lru__count(&l) == 3) kg_lru__remove(&l, kg_lru__oldest(&l));
		kg_lru__insert(&l, &it[i].node);
		if(i == 5) kg_lru__touch(&l, &it[4].node);  /* 4 outlives 5 */
	}
	order(&l, s, sizeof(s));
	assert_string_equal(s, "9 8 7");
	/* evicted in order 0 1 2 3, then 5 (4 was touched after 5 arrived), 4, 6 */
	for(i = 0; i < 7; i++) assert_null(find(&l, it[i].key));
	kg_lru__fini(&l);

	assert_int_equal(kg_lru__init(&l, 3, item_key), 0);
	for(i = 0; i < 3; i++) kg_lru__insert(&l, &it[i].node);
	kg_lru__touch(&l, &it[0].node);
	kg_lru__touch(&l, &it[1].node);
	kg_lru__remove(&l, kg_lru__oldest(&l));
	assert_null(find(&l, "e2"));
	kg_lru__remove(&l, kg_lru__oldest(&l));
	assert_null(find(&l, "e0"));
	assert_ptr_equal(find(&l, "e1"), &it[1]);
	kg_lru__fini(&l);
}

/* Keys are compared as exactly len bytes: prefixes, extensions and keys given without their NUL
 * are told apart. */
static void test_key_bytes(void **state)
{
	struct kg_lru l;
	struct item it[3];

	(void)state;
	memset(it, 0, sizeof(it));
	strcpy(it[0].key, "ab");
	strcpy(it[1].key, "abc");
	strcpy(it[2].key, "");
	assert_int_equal(kg_lru__init(&l, 0, item_key), 0);
	kg_lru__insert(&l, &it[0].node);
	kg_lru__insert(&l, &it[1].node);
	kg_lru__insert(&l, &it[2].node);
	assert_ptr_equal(item_of(kg_lru__find(&l, "abcd", 2)), &it[0]);
	assert_ptr_equal(item_of(kg_lru__find(&l, "abcd", 3)), &it[1]);
	assert_ptr_equal(item_of(kg_lru__find(&l, "abcd", 0)), &it[2]);
	assert_null(kg_lru__find(&l, "abcd", 4));
	assert_null(kg_lru__find(&l, "a", 1));
	assert_null(kg_lru__find(&l, "ab\0", 3));  /* an embedded NUL is a different key */
	kg_lru__fini(&l);
}

/* Two maps hash the same key differently (a random key each), each map consistently. */
static void test_keyed_hash(void **state)
{
	struct kg_lru a, b;

	(void)state;
	assert_int_equal(kg_lru__init(&a, 16, item_key), 0);
	assert_int_equal(kg_lru__init(&b, 16, item_key), 0);
	assert_int_equal(kg_lru__hash(&a, "client-1", 8), kg_lru__hash(&a, "client-1", 8));
	assert_int_not_equal(kg_lru__hash(&a, "client-1", 8), kg_lru__hash(&b, "client-1", 8));
	kg_lru__fini(&a);
	kg_lru__fini(&b);
}

/* Many keys in one bucket: every one is found, and removing the head, a middle and the tail of
 * a chain leaves the others findable. */
static void test_bucket_collisions(void **state)
{
	enum { N = 400 };
	static struct item it[N];
	struct item *same[N];
	struct kg_lru l;
	size_t nsame = 0, i;
	uint32_t bucket;

	(void)state;
	init_items(it, N, "c");
	assert_int_equal(kg_lru__init(&l, 1, item_key), 0);
	assert_int_equal(l.mask, 15);               /* 16 buckets: 400 keys must collide */
	bucket = kg_lru__hash(&l, it[0].key, strlen(it[0].key)) & 15;
	for(i = 0; i < N; i++){
		kg_lru__insert(&l, &it[i].node);
		if((kg_lru__hash(&l, it[i].key, strlen(it[i].key)) & 15) == bucket) same[nsame++] = &it[i];
	}
	assert_true(nsame >= 8);
	assert_int_equal(kg_lru__count(&l), N);
	for(i = 0; i < N; i++) assert_ptr_equal(find(&l, it[i].key), &it[i]);
	/* the chain is newest first: same[nsame-1] heads it, same[0] is its tail */
	kg_lru__remove(&l, &same[nsame - 1]->node);
	kg_lru__remove(&l, &same[nsame / 2]->node);
	kg_lru__remove(&l, &same[0]->node);
	for(i = 0; i < nsame; i++){
		bool gone = i == 0 || i == nsame / 2 || i == nsame - 1;

		if(gone) assert_null(find(&l, same[i]->key));
		else assert_ptr_equal(find(&l, same[i]->key), same[i]);
	}
	assert_int_equal(kg_lru__count(&l), N - 3);
	/* and the order did not notice the buckets: newest and oldest are the last and the first
	 * inserted of the items left, whatever the map's random SipHash key put in `bucket` (it[N-1]
	 * is same[nsame-1], removed above, about one key in sixteen) */
	assert_ptr_equal(same[0], &it[0]);
	for(i = N; i-- > 0;){
		if(&it[i] != same[nsame - 1] && &it[i] != same[nsame / 2]) break;
	}
	assert_ptr_equal(item_of(kg_lru__newest(&l)), &it[i]);
	for(i = 1; i < N; i++){
		if(&it[i] != same[nsame - 1] && &it[i] != same[nsame / 2]) break;
	}
	assert_ptr_equal(item_of(kg_lru__oldest(&l)), &it[i]);
	kg_lru__fini(&l);

	/* a large expectation is capped at 2^20 buckets */
	assert_int_equal(kg_lru__init(&l, (size_t)1 << 30, item_key), 0);
	assert_int_equal(l.mask, ((size_t)1 << 20) - 1);
	kg_lru__fini(&l);
}

/* kg_lru__init_growing (issue 20): a map sized for a fleet starts at 16 buckets and doubles as
 * entries arrive, never past its expectation, keeping every entry findable and the order intact. */
static void test_growing_buckets(void **state)
{
	enum { N = 3000 };
	static struct item it[N];
	struct kg_lru l;
	size_t i;

	(void)state;
	init_items(it, N, "g");
	assert_int_equal(kg_lru__init_growing(&l, 100000, item_key), 0);
	assert_int_equal(l.mask, 15);
	for(i = 0; i < N; i++){
		kg_lru__insert(&l, &it[i].node);
		assert_true(l.mask + 1 >= 16);
		assert_true(kg_lru__count(&l) <= 2 * (l.mask + 1)); /* at most one doubling behind */
	}
	assert_int_equal(l.mask + 1, 4096);                     /* 3,000 entries: 4,096 buckets, not 131,072 */
	for(i = 0; i < N; i++) assert_ptr_equal(find(&l, it[i].key), &it[i]);
	assert_ptr_equal(item_of(kg_lru__oldest(&l)), &it[0]);
	assert_ptr_equal(item_of(kg_lru__newest(&l)), &it[N - 1]);
	for(i = 0; i < N; i += 2) kg_lru__remove(&l, &it[i].node);
	for(i = 0; i < N; i++){
		if(i % 2) assert_ptr_equal(find(&l, it[i].key), &it[i]);
		else assert_null(find(&l, it[i].key));
	}
	kg_lru__fini(&l);
	/* capped at the expectation's power of two: more entries make longer chains, all found */
	assert_int_equal(kg_lru__init_growing(&l, 100, item_key), 0);
	for(i = 0; i < N; i++) kg_lru__insert(&l, &it[i].node);
	assert_int_equal(l.mask, 127);
	for(i = 0; i < N; i++) assert_ptr_equal(find(&l, it[i].key), &it[i]);
	kg_lru__fini(&l);
}

/* A list (no key function) allocates nothing and orders as a map does; a node removed from a map
 * can be queued on a list (what stats.c does with evicted streams). */
static void test_list_and_move(void **state)
{
	struct kg_lru map, list;
	struct item it[3];
	char s[64];
	int i;

	(void)state;
	init_items(it, 3, "m");
	assert_int_equal(kg_lru__init(&list, 100, NULL), 0);
	assert_null(list.buckets);
	assert_int_equal(kg_lru__init(&map, 3, item_key), 0);
	for(i = 0; i < 3; i++) kg_lru__insert(&map, &it[i].node);
	kg_lru__remove(&map, &it[1].node);
	kg_lru__insert(&list, &it[1].node);
	kg_lru__remove(&map, &it[0].node);
	kg_lru__insert(&list, &it[0].node);
	order(&list, s, sizeof(s));
	assert_string_equal(s, "0 1");
	order(&map, s, sizeof(s));
	assert_string_equal(s, "2");
	assert_null(find(&map, "m1"));
	kg_lru__touch(&list, &it[1].node);
	order(&list, s, sizeof(s));
	assert_string_equal(s, "1 0");
	kg_lru__remove(&list, kg_lru__oldest(&list));
	kg_lru__insert(&map, &it[0].node);          /* back into the map, findable again */
	assert_ptr_equal(find(&map, "m0"), &it[0]);
	kg_lru__fini(&list);
	kg_lru__fini(&map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_touch_remove),
		cmocka_unit_test(test_eviction_order),
		cmocka_unit_test(test_key_bytes),
		cmocka_unit_test(test_keyed_hash),
		cmocka_unit_test(test_bucket_collisions),
		cmocka_unit_test(test_growing_buckets),
		cmocka_unit_test(test_list_and_move),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
