/* test_reloadsched.c -- when the kits snapshot loader reloads (reloadsched.h), on an injected
 * clock: a stream of notifications (1,000 a second, a busy kits table) coalesces but never
 * postpones a load forever; the periodic reload happens whatever the notifications do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kitgate/reloadsched.h"

#define REFRESH 30000
#define DEBOUNCE 50
#define MAXDELAY 1000
#define ASKMIN 5000

/* Run the loader's loop for [t, until) with a notification every `every` ms (0: none); a load
 * takes load_ms. Returns the number of loads; *max_gap is the longest time between two loads (or
 * from the start to the first). */
static int run(struct kg_reloadsched *s, int64_t t, int64_t until, int64_t every, int64_t load_ms, int64_t *max_gap)
{
	int64_t next_notify = every ? t : INT64_MAX, last_load = t;
	int loads = 0;

	*max_gap = 0;
	while(t < until){
		int64_t due = kg_reloadsched__due(s);
		if(t >= due){
			int64_t started = t;
			t += load_ms;
			/* notifications that came while loading are seen after it */
			while(next_notify < t){
				kg_reloadsched__notify(s, t);
				next_notify += every;
			}
			kg_reloadsched__loaded(s, started);
			if(started - last_load > *max_gap) *max_gap = started - last_load;
			last_load = started;
			loads++;
			continue;
		}
		if(next_notify <= due){
			t = next_notify > t ? next_notify : t;
			kg_reloadsched__notify(s, t);
			next_notify += every;
		}else{
			t = due;
		}
	}
	if(until - last_load > *max_gap) *max_gap = until - last_load;
	return loads;
}

static void test_first_load_at_once_then_periodic(void **state)
{
	struct kg_reloadsched s;
	int64_t gap;
	(void)state;

	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	assert_true(kg_reloadsched__due(&s) <= 1000);
	/* no notifications for 5 minutes: one load at once and one per refresh period */
	assert_int_equal(run(&s, 1000, 1000 + 300000, 0, 20, &gap), 10);
	assert_true(gap <= REFRESH);
}

static void test_burst_coalesces_after_debounce(void **state)
{
	struct kg_reloadsched s;
	(void)state;

	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	kg_reloadsched__loaded(&s, 1000);
	/* 5 notifications 10 ms apart: one load 50 ms after the last */
	for(int i = 0; i < 5; i++) kg_reloadsched__notify(&s, 2000 + 10 * i);
	assert_int_equal(kg_reloadsched__due(&s), 2040 + DEBOUNCE);
	kg_reloadsched__loaded(&s, 2090);
	assert_int_equal(kg_reloadsched__due(&s), 2090 + REFRESH);
	/* a forced load (reconnect) is due at once */
	kg_reloadsched__force(&s);
	assert_true(kg_reloadsched__due(&s) <= 2090);
}

/* The case: 1,000 NOTIFYs a second for two minutes. A debounce that restarts on every
 * notification never loads; here loads come at least every MAXDELAY (+ the load) and at most
 * about one per MAXDELAY. */
static void test_notify_stream_never_postpones(void **state)
{
	struct kg_reloadsched s;
	int64_t gap;
	int loads;
	(void)state;

	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	kg_reloadsched__loaded(&s, 1000);
	loads = run(&s, 1000, 1000 + 120000, 1, 30, &gap);
	assert_true(gap <= MAXDELAY + 30);
	assert_in_range(loads, 100, 121);   /* coalesced: ~one per second, not one per notification */
	/* a slower stream (one every 40 ms, inside the debounce) as well */
	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	kg_reloadsched__loaded(&s, 1000);
	loads = run(&s, 1000, 1000 + 60000, 40, 30, &gap);
	assert_true(gap <= MAXDELAY + 30);
	assert_in_range(loads, 45, 61);
}

/* A notification that arrives while a load runs may postdate what it read: it is served by
 * another load, not dropped. */
static void test_notify_during_load_is_kept(void **state)
{
	struct kg_reloadsched s;
	(void)state;

	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	kg_reloadsched__notify(&s, 5010);          /* seen after the load that started at 5000 */
	kg_reloadsched__loaded(&s, 5000);
	assert_true(kg_reloadsched__due(&s) <= 5010 + MAXDELAY);
}

/* The broker's asks (unknown peripheral): the first after a quiet time is served after the
 * debounce; a kit asking with every message gets one load per ASKMIN, not a load storm. */
static void test_asks_are_rate_limited(void **state)
{
	struct kg_reloadsched s;
	int64_t t, loads = 0;
	(void)state;

	kg_reloadsched__init(&s, REFRESH, DEBOUNCE, MAXDELAY, ASKMIN);
	kg_reloadsched__loaded(&s, 1000);
	kg_reloadsched__ask(&s, 20000);
	assert_int_equal(kg_reloadsched__due(&s), 20000 + DEBOUNCE);
	kg_reloadsched__loaded(&s, 20050);
	/* asks every 10 ms for a minute */
	for(t = 20060; t < 80060; t += 10){
		if(t >= kg_reloadsched__due(&s)){
			assert_true(t - s.last_load >= ASKMIN);
			kg_reloadsched__loaded(&s, t);
			loads++;
		}
		kg_reloadsched__ask(&s, t);
	}
	assert_in_range(loads, 11, 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_load_at_once_then_periodic),
		cmocka_unit_test(test_burst_coalesces_after_debounce),
		cmocka_unit_test(test_notify_stream_never_postpones),
		cmocka_unit_test(test_notify_during_load_is_kept),
		cmocka_unit_test(test_asks_are_rate_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
