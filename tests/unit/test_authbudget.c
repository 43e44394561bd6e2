/* test_authbudget.c -- plugin/auth/authbudget.c: the cold-login budget's token bucket on a fake clock
 * (rate, one second's burst, debt repaid by the refill, the reserve that suspects cannot touch, a
 * clock going backwards, the charge clamp), and a simulated attack: whatever the attacker sends,
 * the checks' total time stays within the budget, and clean logins still get through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "kitgate/authbudget.h"

#define MS 1000000LL
#define S (1000 * MS)

static const enum kg_authbudget_class CLEAN = KG_AUTHBUDGET_CLEAN, SUSPECT = KG_AUTHBUDGET_SUSPECT;

/* Run checks of cost_ns back to back at t while allowed; how many ran. */
static int drain(struct kg_authbudget *b, enum kg_authbudget_class cls, int64_t t, int64_t cost_ns)
{
	int n = 0;

	while(kg_authbudget__allow(b, cls, t)){
		kg_authbudget__charge(b, cost_ns);
		n++;
		assert_true(n < 100000);
	}
	return n;
}

static void test_burst_then_rate(void **state)
{
	struct kg_authbudget b = {0};
	int64_t t = 5 * S;
	int i, n;

	(void)state;
	kg_authbudget__init(&b, 100, t);                       /* 100 ms of checks per second */
	/* a full bucket: 100 ms, i.e. 20 checks of 5 ms (the 20th reaches exactly 0, so no 21st) */
	assert_int_equal(drain(&b, CLEAN, t, 5 * MS), 20);
	assert_false(kg_authbudget__allow(&b, CLEAN, t));
	/* 10 ms accrue per 100 ms: two more 5 ms checks... */
	t += 100 * MS;
	assert_int_equal(drain(&b, CLEAN, t, 5 * MS), 2);
	/* ...and over 10 s of steady demand at most 100 ms per second */
	n = 0;
	for(i = 0; i < 10000; i++){
		t += MS;
		n += drain(&b, CLEAN, t, 5 * MS);
	}
	assert_in_range(n, 199, 200);                          /* 10 s * 100 ms / 5 ms */
	/* idle for long: full again, never more than one second's worth */
	t += 3600 * S;
	assert_int_equal(drain(&b, CLEAN, t, 5 * MS), 20);
}

/* A check may cost more than the whole bucket (sha512/100000 against a small budget): it runs,
 * and the debt is repaid before the next one. */
static void test_debt(void **state)
{
	struct kg_authbudget b = {0};
	int64_t t = 0;

	(void)state;
	kg_authbudget__init(&b, 50, t);
	assert_true(kg_authbudget__allow(&b, CLEAN, t));
	kg_authbudget__charge(&b, 90 * MS);                    /* balance -40 ms */
	assert_false(kg_authbudget__allow(&b, CLEAN, t + 799 * MS));
	assert_true(kg_authbudget__wait_ns(&b, CLEAN, t + 799 * MS) > 0);
	assert_true(kg_authbudget__allow(&b, CLEAN, t + 801 * MS));
	assert_int_equal(kg_authbudget__wait_ns(&b, CLEAN, t + 801 * MS), 0);
	/* a stalled check (the process was stopped for a minute) costs at most 1 s of budget */
	kg_authbudget__charge(&b, 60 * S);
	assert_false(kg_authbudget__allow(&b, CLEAN, t + 801 * MS + 19900 * MS));   /* 1 s at 50 ms/s */
	assert_true(kg_authbudget__allow(&b, CLEAN, t + 801 * MS + 20100 * MS));
	/* negative costs are not credits */
	kg_authbudget__init(&b, 50, t);
	kg_authbudget__charge(&b, -5 * S);
	assert_true(b.balance_ns <= b.capacity_ns);
}

/* Suspects draw only above half the bucket; clean logins may take the reserve. */
static void test_reserve(void **state)
{
	struct kg_authbudget b = {0};
	int64_t t = 0;

	(void)state;
	kg_authbudget__init(&b, 100, t);
	assert_int_equal(drain(&b, SUSPECT, t, 5 * MS), 10);  /* 100 ms down to the 50 ms reserve */
	assert_false(kg_authbudget__allow(&b, SUSPECT, t));
	assert_true(kg_authbudget__wait_ns(&b, SUSPECT, t) > 0);
	assert_int_equal(kg_authbudget__wait_ns(&b, CLEAN, t), 0);
	assert_int_equal(drain(&b, CLEAN, t, 5 * MS), 10);     /* the reserve */
	/* after the clean ones emptied it, suspects wait for the refill to pass the reserve again */
	assert_false(kg_authbudget__allow(&b, SUSPECT, t + 500 * MS));
	assert_true(kg_authbudget__allow(&b, CLEAN, t + 500 * MS));
	assert_true(kg_authbudget__allow(&b, SUSPECT, t + 501 * MS));
}

/* The clock going backwards refills nothing and breaks nothing. */
static void test_clock_backwards(void **state)
{
	struct kg_authbudget b = {0};

	(void)state;
	kg_authbudget__init(&b, 10, 10 * S);
	assert_int_equal(drain(&b, CLEAN, 10 * S, 5 * MS), 2);
	assert_false(kg_authbudget__allow(&b, CLEAN, 5 * S));
	assert_false(kg_authbudget__allow(&b, CLEAN, 10 * S));
	assert_true(kg_authbudget__allow(&b, CLEAN, 10 * S + 2 * MS));  /* 10 us accrued per ms */
	kg_authbudget__charge(&b, 5 * MS);
	assert_false(kg_authbudget__allow(&b, CLEAN, 10 * S + 3 * MS));
}

/* 30 s of an attack sending 1000 wrong secrets per second (one per ms) over serials already on record
 * (suspects), while a clean (cold, legitimate) login arrives every 100 ms. Checks cost 6 ms. The
 * total time spent stays within 250 ms per second (plus the initial full bucket), every clean
 * login gets through at once, and the attacker gets only what they leave. */
static void test_attack_and_clean_logins(void **state)
{
	struct kg_authbudget b = {0};
	int64_t t = 0, spent = 0, cost = 6 * MS;
	int ms, clean_ok = 0, clean_refused = 0, attack_ok = 0;

	(void)state;
	kg_authbudget__init(&b, 250, t);
	for(ms = 0; ms < 30000; ms++){
		t = (int64_t)ms * MS;
		if(ms % 100 == 50){
			if(kg_authbudget__allow(&b, CLEAN, t)){
				kg_authbudget__charge(&b, cost);
				spent += cost;
				clean_ok++;
			}else{
				clean_refused++;
			}
		}
		if(kg_authbudget__allow(&b, SUSPECT, t)){     /* the attacker tries every ms */
			kg_authbudget__charge(&b, cost);
			spent += cost;
			attack_ok++;
		}
	}
	assert_int_equal(clean_ok, 300);
	assert_int_equal(clean_refused, 0);
	assert_true(spent <= 250 * MS * 30 + 250 * MS + cost);
	assert_true(spent >= 250 * MS * 29);                  /* the attacker takes the rest: no waste */
	assert_true(attack_ok > 0);
	printf("# 30 s: %d clean, %d attack checks, %.1f ms/s\n", clean_ok, attack_ok, spent / 30.0 / MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_debt),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_attack_and_clean_logins),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
