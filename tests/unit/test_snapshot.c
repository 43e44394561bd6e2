/* test_snapshot.c -- the kits snapshot (plugin/auth/snapshot.c): lookups, ownership check, diff for
 * disconnects, reference counting; the loader without a database (tests/integration/test_auth.sh
 * covers the loader against a live PostgreSQL: LISTEN/NOTIFY, refresh, outage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/snapshot.h"

#define HA "PBKDF2$sha256$15000$aaaaaaaaaaaaaaaaaaaa$AAAA"
#define HB "PBKDF2$sha256$15000$bbbbbbbbbbbbbbbbbbbb$AAAA"

static struct kg_snapshot *make(int variant)
{
	struct kg_snapshot *s = kg_snapshot__new();

	assert_non_null(s);
	/* added out of order on purpose */
	assert_int_equal(kg_snapshot__add_kit(s, 2, "k-b", HB), 0);
	assert_int_equal(kg_snapshot__add_kit(s, 1, "k-a", variant == 1 ? HB : HA), 0);
	if(variant != 2) assert_int_equal(kg_snapshot__add_kit(s, 3, "k-c", HA), 0);
	assert_int_equal(kg_snapshot__add_kit(s, 4, "k-ab", HA), 0);
	assert_int_equal(kg_snapshot__add_peripheral(s, 21, 2, "{\"x\":1}"), 0);
	assert_int_equal(kg_snapshot__add_peripheral(s, 11, 1, "{}"), 0);
	assert_int_equal(kg_snapshot__add_peripheral(s, 12, 1, NULL), 0);
	assert_int_equal(kg_snapshot__add_peripheral(s, 99, 77, "{}"), 0);   /* no such kit: dropped */
	assert_int_equal(kg_snapshot__add_quantity_type(s, 5), 0);
	assert_int_equal(kg_snapshot__add_quantity_type(s, 1), 0);
	assert_int_equal(kg_snapshot__seal(s), 0);
	return s;
}

static void test_lookup(void **state)
{
	struct kg_snapshot *s = make(0);
	const struct kg_snapshot_kit *k;
	(void)state;

	assert_int_equal(kg_snapshot__nkits(s), 4);
	assert_int_equal(kg_snapshot__nperipherals(s), 3);
	assert_int_equal(kg_snapshot__nquantity_types(s), 2);
	k = kg_snapshot__kit(s, "k-a", 3);
	assert_non_null(k);
	assert_int_equal(k->id, 1);
	assert_string_equal(k->password_hash, HA);
	/* a prefix or an extension of a serial is not that kit; the length counts, not a NUL */
	assert_null(kg_snapshot__kit(s, "k-", 2));
	assert_null(kg_snapshot__kit(s, "k-abc", 5));
	assert_non_null(kg_snapshot__kit(s, "k-abc", 4));
	assert_int_equal(kg_snapshot__kit(s, "k-abc", 4)->id, 4);
	assert_null(kg_snapshot__kit(s, "", 0));
	assert_null(kg_snapshot__kit(s, "k-d", 3));
	assert_string_equal(kg_snapshot__peripheral_configuration(s, 21), "{\"x\":1}");
	assert_string_equal(kg_snapshot__peripheral_configuration(s, 12), "null");
	assert_null(kg_snapshot__peripheral_configuration(s, 99));
	kg_snapshot__unref(s);
}

static void test_check(void **state)
{
	struct kg_snapshot *s = make(0);
	(void)state;

	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 11, 1), KG_OK);
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 12, 5), KG_OK);
	assert_int_equal(kg_snapshot__check(s, "k-b", 3, 21, 5), KG_OK);
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 21, 1), KG_FOREIGN_PERIPHERAL);
	assert_int_equal(kg_snapshot__check(s, "k-b", 3, 11, 1), KG_FOREIGN_PERIPHERAL);
	assert_int_equal(kg_snapshot__check(s, "k-ab", 4, 11, 1), KG_FOREIGN_PERIPHERAL);
	assert_int_equal(kg_snapshot__check(s, "k-a", 2, 11, 1), KG_FOREIGN_PERIPHERAL);  /* "k-" */
	assert_int_equal(kg_snapshot__check(s, "k-zz", 4, 11, 1), KG_FOREIGN_PERIPHERAL); /* no such kit */
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 13, 1), KG_UNKNOWN_PERIPHERAL);
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 99, 1), KG_UNKNOWN_PERIPHERAL);  /* dropped row */
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 11, 2), KG_UNKNOWN_QUANTITY_TYPE);
	assert_int_equal(kg_snapshot__check(s, "k-a", 3, 11, 0), KG_UNKNOWN_QUANTITY_TYPE);
	kg_snapshot__unref(s);
}

static void record(const char *serial, void *arg)
{
	char *out = arg;
	strcat(out, serial);
	strcat(out, ";");
}

static void test_same_and_diff(void **state)
{
	struct kg_snapshot *a = make(0), *a2 = make(0), *rotated = make(1), *deleted = make(2);
	struct kg_snapshot *empty = kg_snapshot__new();
	char out[256];
	(void)state;

	assert_int_equal(kg_snapshot__seal(empty), 0);
	assert_null(kg_snapshot__kit(empty, "k-a", 3));
	assert_int_equal(kg_snapshot__check(empty, "k-a", 3, 11, 1), KG_UNKNOWN_PERIPHERAL);
	assert_null(kg_snapshot__peripheral_configuration(empty, 11));
	assert_int_equal(kg_snapshot__same(a, a2), 1);
	assert_int_equal(kg_snapshot__same(a, rotated), 0);
	assert_int_equal(kg_snapshot__same(a, deleted), 0);
	out[0] = '\0';
	assert_int_equal(kg_snapshot__diff(a, a2, record, out), 0);
	assert_string_equal(out, "");
	assert_int_equal(kg_snapshot__diff(a, rotated, record, out), 1);
	assert_string_equal(out, "k-a;");
	out[0] = '\0';
	assert_int_equal(kg_snapshot__diff(a, deleted, record, out), 1);
	assert_string_equal(out, "k-c;");
	out[0] = '\0';
	assert_int_equal(kg_snapshot__diff(deleted, a, record, out), 0);     /* a new kit: nobody to kick */
	out[0] = '\0';
	assert_int_equal(kg_snapshot__diff(a, empty, record, out), 4);
	assert_string_equal(out, "k-a;k-ab;k-b;k-c;");
	kg_snapshot__unref(a);
	kg_snapshot__unref(a2);
	kg_snapshot__unref(rotated);
	kg_snapshot__unref(deleted);
	kg_snapshot__unref(empty);
}

static void test_refcount(void **state)
{
	struct kg_snapshot *s = make(0);
	(void)state;

	assert_ptr_equal(kg_snapshot__ref(s), s);
	kg_snapshot__unref(s);
	assert_int_equal(kg_snapshot__nkits(s), 4);   /* still alive: ASan would catch a use after free */
	kg_snapshot__unref(s);
	kg_snapshot__unref(NULL);
}

/* The loader against a database that does not exist: no snapshot, nothing published, stops
 * promptly. (A live database is exercised by tests/integration/test_auth.sh.) */
static void test_loader_without_database(void **state)
{
	struct kg_snapshot_loader *l = kg_snapshot__start("postgresql://nobody@127.0.0.1:1/none", 30);
	uint64_t gen = 0;
	char **kicks;
	size_t nkicks;
	(void)state;

	assert_non_null(l);
	kg_snapshot__poke(l);
	assert_null(kg_snapshot__take(l, &gen, &kicks, &nkicks));
	assert_int_equal(nkicks, 0);
	assert_int_equal(gen, 0);
	kg_snapshot__stop(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_same_and_diff),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_loader_without_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
