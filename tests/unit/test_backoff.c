/* test_backoff.c -- plugin/auth/backoff.c: the per-serial login failure windows (1 s doubling to 30 s,
 * cleared by a success, restarted after a quiet spell), the bounded table (live entries are never
 * evicted; a full set overflows and marks its serials suspect) and its keyed set hash (five serials
 * sharing a set cannot stay clean by cycling). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/backoff.h"
#include "kitgate/siphash.h"

static void test_window_doubles_and_caps(void **state)
{
	struct kg_backoff *b = kg_backoff__new(16, 1000, 30000);
	int64_t t = 1000000, want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	size_t i;

	(void)state;
	assert_non_null(b);
	assert_int_equal(kg_backoff__remaining(b, "k-1", t), 0);
	for(i = 0; i < sizeof(want) / sizeof(want[0]); i++){
		assert_int_equal(kg_backoff__fail(b, "k-1", t), want[i]);
		assert_int_equal(kg_backoff__remaining(b, "k-1", t), want[i]);
		assert_int_equal(kg_backoff__remaining(b, "k-1", t + want[i] - 1), 1);
		assert_int_equal(kg_backoff__remaining(b, "k-2", t), 0);     /* other serials unaffected */
		t += want[i];                                                  /* the next check after the window */
		assert_int_equal(kg_backoff__remaining(b, "k-1", t), 0);
	}
	assert_int_equal(kg_backoff__count(b), 1);
	assert_true(kg_backoff__has(b, "k-1", t + 100000));   /* on record after its window ended */
	assert_false(kg_backoff__has(b, "k-2", t));
	/* a success forgets it: the next failure starts at 1 s again */
	kg_backoff__clear(b, "k-1");
	assert_int_equal(kg_backoff__count(b), 0);
	assert_false(kg_backoff__has(b, "k-1", t));
	assert_int_equal(kg_backoff__remaining(b, "k-1", t - 1), 0);
	assert_int_equal(kg_backoff__fail(b, "k-1", t), 1000);
	/* quiet for longer than the maximum after the window: start over */
	assert_int_equal(kg_backoff__fail(b, "k-1", t + 1000), 2000);
	assert_int_equal(kg_backoff__fail(b, "k-1", t + 3000 + 30001), 1000);
	kg_backoff__clear(b, "nope");                                      /* unknown serial: no-op */
	assert_int_equal(kg_backoff__count(b), 1);
	kg_backoff__free(b);
}

/* More serials than slots: memory stays bounded, live entries are never evicted, the overflow is
 * counted and marks the set suspect; stale entries make room. */
static void test_bounded(void **state)
{
	struct kg_backoff *b = kg_backoff__new(4, 1000, 30000);   /* one set of 4 ways */
	char s[16];
	int i, blocked = 0, suspect = 0;

	(void)state;
	assert_non_null(b);
	for(i = 0; i < 1000; i++){
		snprintf(s, sizeof(s), "k-%d", i);
		assert_int_equal(kg_backoff__fail(b, s, 0), i < 4 ? 1000 : 0);   /* 0: not recorded */
	}
	assert_int_equal(kg_backoff__count(b), 4);
	assert_int_equal(kg_backoff__overflowed(b), 996);
	assert_int_equal(kg_backoff__evicted(b), 0);
	for(i = 0; i < 1000; i++){
		snprintf(s, sizeof(s), "k-%d", i);
		blocked += kg_backoff__remaining(b, s, 1) > 0;
		suspect += kg_backoff__has(b, s, 1);
	}
	assert_int_equal(blocked, 4);       /* an overflowed serial is suspect, never locked out */
	assert_int_equal(suspect, 1000);
	assert_true(kg_backoff__has(b, "never-failed", 1));          /* its whole set is */
	/* a hammered serial's entry survives newcomers until it is quiet for the longest window */
	assert_int_equal(kg_backoff__fail(b, "k-0", 1000), 2000);   /* until 3000 */
	assert_int_equal(kg_backoff__fail(b, "k-0", 3000), 4000);   /* until 7000 */
	for(i = 0; i < 100; i++){
		snprintf(s, sizeof(s), "new-%d", i);
		/* k-1..k-3 ended 36 s ago: stale, evicted; k-0 ended 30 s ago: kept */
		assert_int_equal(kg_backoff__fail(b, s, 37000), i < 3 ? 1000 : 0);
	}
	assert_int_equal(kg_backoff__evicted(b), 3);
	assert_int_equal(kg_backoff__overflowed(b), 996 + 97);
	assert_true(kg_backoff__has(b, "k-0", 37000));
	/* the overflow mark lasts initial + max after the last overflow */
	assert_true(kg_backoff__has(b, "never-failed", 37000 + 31000 - 1));
	assert_false(kg_backoff__has(b, "never-failed", 37000 + 31000));
	assert_false(kg_backoff__has(b, "k-1", 37000 + 31000));    /* evicted: clean again */
	/* k-0 is stale by now, new-0..2 (ended at 38000) are not */
	assert_int_equal(kg_backoff__fail(b, "late", 68000), 1000);
	assert_int_equal(kg_backoff__evicted(b), 4);
	assert_false(kg_backoff__has(b, "k-0", 68000));
	assert_true(kg_backoff__has(b, "new-0", 68000));
	assert_true(kg_backoff__has(b, "late", 68000));
	assert_int_equal(kg_backoff__count(b), 4);
	/* bad arguments */
	assert_null(kg_backoff__new(4, 0, 1000));
	assert_null(kg_backoff__new(4, 2000, 1000));
	assert_int_equal(kg_backoff__fail(b, "", 0), 0);
	assert_int_equal(kg_backoff__remaining(b, NULL, 0), 0);
	assert_false(kg_backoff__has(b, NULL, 0));
	assert_false(kg_backoff__has(b, "", 0));
	kg_backoff__free(b);
}

/* The attack the keyed hash and the no-eviction rule stop: cycle wrong secrets over five serials
 * sharing a set, as fast as the backoff lets them be checked. With eviction of running windows every
 * attempt was clean and none was ever refused in a window. Returns the clean checks; counts the
 * checks refused in a window into *refused. */
static int cycle_attack(struct kg_backoff *b, char serials[5][24], int attempts, int *refused)
{
	int i, clean = 0;
	int64_t t = 1000;

	*refused = 0;
	for(i = 0; i < attempts; i++, t += 10){
		const char *s = serials[i % 5];

		if(kg_backoff__remaining(b, s, t) > 0){
			(*refused)++;
			continue;
		}
		clean += !kg_backoff__has(b, s, t);
		kg_backoff__fail(b, s, t);   /* the wrong secret was checked */
	}
	return clean;
}

/* Five serials that share a set under a fixed key (found here through the documented mapping). */
static void test_colliding_serials_stay_suspect(void **state)
{
	static const uint8_t key[KG_SIPHASH_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	struct kg_backoff *b = kg_backoff__new_keyed(64, 1000, 30000, key);   /* 16 sets */
	char serials[5][24], s[24];
	int n = 0, i, refused, clean;
	uint64_t want = 0;

	(void)state;
	assert_non_null(b);
	for(i = 1; n < 5 && i < 10000; i++){
		snprintf(s, sizeof(s), "k-test-%04d", i);
		uint64_t set = kg_siphash__hash(key, s, strlen(s)) & 15;
		if(n == 0) want = set;
		if(set == want) memcpy(serials[n++], s, sizeof(s));
	}
	assert_int_equal(n, 5);
	clean = cycle_attack(b, serials, 1000, &refused);
	assert_int_equal(clean, 5);                 /* each serial's first wrong secret only */
	/* the four recorded ones sit in their windows; the fifth is checked each time, as a suspect
	 * (the budget's upper half bounds what that costs) */
	assert_true(refused > 750);
	assert_int_equal(kg_backoff__count(b), 4);
	assert_int_equal(kg_backoff__evicted(b), 0);
	assert_true(kg_backoff__overflowed(b) > 0);
	for(i = 0; i < 5; i++) assert_true(kg_backoff__has(b, serials[i], 12000));
	kg_backoff__free(b);
}

/* FNV-1a of the old unkeyed table: serials sharing one of its sets (the reviewer's attack). */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for(; *s; s++){
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static void test_old_collisions_do_not_collide(void **state)
{
	struct kg_backoff *b = kg_backoff__new(16384, 1000, 30000);   /* as auth.c: 4096 sets */
	static int per_set[4096];
	char serials[5][24], s[24];
	int n = 0, i, full = -1, refused, clean;

	(void)state;
	assert_non_null(b);
	/* the first FNV set of 4096 that k-test-0001..5000 fill with 5, and those 5 */
	for(i = 1; i <= 5000 && full < 0; i++){
		snprintf(s, sizeof(s), "k-test-%04d", i);
		if(++per_set[fnv1a(s) & 4095] == 5) full = (int)(fnv1a(s) & 4095);
	}
	assert_true(full >= 0);
	for(i = 1; n < 5; i++){
		snprintf(s, sizeof(s), "k-test-%04d", i);
		if((int)(fnv1a(s) & 4095) == full) memcpy(serials[n++], s, sizeof(s));
	}
	assert_int_equal(n, 5);
	/* under a random key they share a set with probability 4096^-4 */
	clean = cycle_attack(b, serials, 1000, &refused);
	assert_int_equal(clean, 5);
	assert_true(refused > 900);
	assert_int_equal(kg_backoff__overflowed(b), 0);
	assert_int_equal(kg_backoff__count(b), 5);
	kg_backoff__free(b);
}

/* The window key of a serial from a source: IPv4 exact, IPv6 by its /64, IPv4-mapped by the IPv4
 * address; bad serials refused; odd addresses verbatim and cut. */
static void test_source_key(void **state)
{
	char k[KG_BACKOFF_KEY_MAX + 1], k2[KG_BACKOFF_KEY_MAX + 1];
	char serial[KG_SERIAL_MAX + 2];

	(void)state;
	assert_int_equal(kg_backoff__source_key(k, "k-1", "127.0.0.2"), 13);
	assert_string_equal(k, "k-1\n127.0.0.2");
	assert_int_equal(kg_backoff__source_key(k, "k-1", "2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 18);
	assert_string_equal(k, "k-1\n2001:db8:1:2::");
	assert_int_equal(kg_backoff__source_key(k2, "k-1", "2001:db8:1:2::99"), 18);
	assert_string_equal(k, k2);                                  /* same /64 */
	kg_backoff__source_key(k2, "k-1", "2001:db8:1:3::99");
	assert_string_not_equal(k, k2);
	kg_backoff__source_key(k, "k-1", "::ffff:10.0.0.1");
	kg_backoff__source_key(k2, "k-1", "::ffff:10.0.0.2");
	assert_string_not_equal(k, k2);                              /* mapped IPv4: the whole address */
	assert_int_equal(kg_backoff__source_key(k, "k-1", NULL), 4);
	assert_string_equal(k, "k-1\n");
	memset(serial, 'x', KG_SERIAL_MAX);
	serial[KG_SERIAL_MAX] = '\0';
	assert_int_equal(kg_backoff__source_key(k, serial, "0123456789012345678901234567890123456789012345678"),
			KG_BACKOFF_KEY_MAX);                                  /* longest serial, address cut */
	serial[KG_SERIAL_MAX] = 'x';
	serial[KG_SERIAL_MAX + 1] = '\0';
	assert_int_equal(kg_backoff__source_key(k, serial, "127.0.0.1"), -1);
	assert_int_equal(kg_backoff__source_key(k, "", "127.0.0.1"), -1);
	assert_int_equal(kg_backoff__source_key(k, NULL, "127.0.0.1"), -1);
	/* the longest key is a valid table key */
	struct kg_backoff *b = kg_backoff__new(16, 1000, 30000);
	serial[KG_SERIAL_MAX] = '\0';
	kg_backoff__source_key(k, serial, "0123456789012345678901234567890123456789012345678");
	assert_int_equal(kg_backoff__fail(b, k, 0), 1000);
	assert_int_equal(kg_backoff__remaining(b, k, 0), 1000);
	kg_backoff__free(b);
}

/* Issue 19 item 2 on the module, as auth.c uses it: an attacker knowing only a serial sends a wrong
 * secret from 127.0.0.2 every 20 ms for 60 s; the kit tries its (uncached) correct secret from
 * 127.0.0.1 every 500 ms. Windows are keyed by (serial, source): the attacker is refused unchecked
 * in its windows and buys a handful of checks; the kit is never in a window (keyed by the serial
 * alone, as before, it was refused inside every window and lost each race at a window's end). */
static void test_third_party_lockout(void **state)
{
	struct kg_backoff *b = kg_backoff__new(16384, 1000, 30000);
	char atk[KG_BACKOFF_KEY_MAX + 1], kit[KG_BACKOFF_KEY_MAX + 1];
	int checks = 0, kit_refused = 0;
	int64_t t;

	(void)state;
	kg_backoff__source_key(atk, "k-0001", "127.0.0.2");
	kg_backoff__source_key(kit, "k-0001", "127.0.0.1");
	for(t = 0; t < 60000; t += 20){
		if(t % 500 == 10 && kg_backoff__remaining(b, kit, t) > 0) kit_refused++;
		if(kg_backoff__remaining(b, atk, t) > 0) continue;
		checks++;                                 /* the attacker's wrong secret is hashed */
		kg_backoff__fail(b, atk, t);
	}
	assert_int_equal(kit_refused, 0);
	assert_true(checks <= 8);                     /* 1+2+4+8+16+30 s windows: 7 checks in 60 s */
	assert_true(checks >= 5);
	assert_int_equal(kg_backoff__count(b), 1);
	kg_backoff__free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_doubles_and_caps),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_colliding_serials_stay_suspect),
		cmocka_unit_test(test_old_collisions_do_not_collide),
		cmocka_unit_test(test_source_key),
		cmocka_unit_test(test_third_party_lockout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
