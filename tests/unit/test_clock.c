/* test_clock.c -- unit tests for plugin/util/clock.c: the injected clock, kg_clock__every, and the
 * live view's cadences (flush, $SYS status, kit status, statistics) across a wall clock step back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/clock.h"
#include "kitgate/kits.h"
#include "kitgate/stats.h"

struct fake {
	int64_t mono, wall;
};

static int64_t fake_mono(void *arg)
{
	return ((struct fake *)arg)->mono;
}

static int64_t fake_wall(void *arg)
{
	return ((struct fake *)arg)->wall;
}

static void test_injected(void **state)
{
	struct fake f = {5000, 1700000000000};
	const struct kg_clock_source src = {fake_mono, fake_wall, &f};
	int64_t m0, m1;

	(void)state;
	kg_clock__inject(&src);
	assert_int_equal(kg_clock__mono_ms(), 5000);
	assert_int_equal(kg_clock__wall_ms(), 1700000000000);
	f.wall -= 3600000;
	assert_int_equal(kg_clock__wall_ms(), 1700000000000 - 3600000);
	kg_clock__inject(NULL);
	m0 = kg_clock__mono_ms();
	m1 = kg_clock__mono_ms();
	assert_true(m1 >= m0 && m0 > 0);
	assert_true(kg_clock__wall_ms() > 1600000000000);
}

static void test_every(void **state)
{
	struct kg_every e = {0};

	(void)state;
	assert_true(kg_clock__every(&e, 1000, 50));   /* zeroed: due at once */
	assert_false(kg_clock__every(&e, 1000, 1049));
	assert_true(kg_clock__every(&e, 1000, 1050));
	assert_int_equal(e.next_ms, 2050);
	assert_false(kg_clock__every(&e, 0, 99999));  /* period 0 = off */
	assert_false(kg_clock__every(&e, -5, 99999));
}

struct counts {
	int stats;
};

static void on_stats(const struct kg_stats_view *v, void *arg)
{
	(void)v;
	((struct counts *)arg)->stats++;
}

/* Runs the broker's TICK schedule (live.c, status.c) for 60 s of 100 ms ticks with the wall clock
 * stepped back one hour at 10 s: every cadence keeps going after the step, at its period. The
 * same schedule driven by the wall clock stops, which is what the monotonic clock is for. */
static void test_wall_step_back(void **state)
{
	struct fake f = {1000000, 1700000000000};
	const struct kg_clock_source src = {fake_mono, fake_wall, &f};
	struct kg_every flush = {0}, status = {0}, wall_flush = {0};
	struct kg_kits *kits = kg_kits__new(16);
	struct kg_stats *st = kg_stats__new(16, 64);
	struct kg_kit *kit;
	struct counts c = {0};
	int flushes_after = 0, statuses_after = 0, kit_pubs_after = 0, stats_after = 0, wall_flushes_after = 0;
	int tick;

	(void)state;
	assert_non_null(kits);
	assert_non_null(st);
	kit = kg_kits__get(kits, "k1", 2);
	assert_non_null(kit);
	kg_clock__inject(&src);
	for(tick = 0; tick < 600; tick++){
		int64_t now, mono;

		if(tick == 100) f.wall -= 3600 * 1000; /* the step back */
		now = kg_clock__wall_ms();
		mono = kg_clock__mono_ms();
		/* a kit publishes a measurement every tick: its status and statistics change */
		kg_kits__touch(kits, kit, now);
		kit->accepted++;
		assert_int_equal(kg_stats__add(st, "kit/k1/stats/1/1", now, (double)tick, now), 0);
		if(kg_clock__every(&flush, 250, mono)){
			int before = c.stats;

			kg_stats__flush_at(st, now, mono, 1000, on_stats, &c);
			if(kg_kits__status_due(kit, mono)){
				kit->dirty = kit->urgent = false;
				kit->published_at_ms = mono;
				if(tick >= 100) kit_pubs_after++;
			}
			if(tick >= 100){
				flushes_after++;
				stats_after += c.stats - before;
			}
		}
		if(kg_clock__every(&status, 10 * 1000, mono) && tick >= 100) statuses_after++;
		if(kg_clock__every(&wall_flush, 250, now) && tick >= 101) wall_flushes_after++;
		f.mono += 100;
		f.wall += 100;
	}
	kg_clock__inject(NULL);
	/* 50 s after the step, on 100 ms ticks: the 250 ms flush runs every 300 ms (166 times), the
	 * status every 10 s, the kit's routine status every 10.2 s, the stream's statistics (at most
	 * once a second, checked at flushes) every 1.2 s */
	assert_in_range(flushes_after, 165, 168);
	assert_in_range(statuses_after, 5, 6);
	assert_in_range(kit_pubs_after, 4, 6);
	assert_in_range(stats_after, 40, 43);
	/* the same cadence on the wall clock is stuck for the hour */
	assert_int_equal(wall_flushes_after, 0);
	kg_stats__free(st);
	kg_kits__free(kits);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_injected),
		cmocka_unit_test(test_every),
		cmocka_unit_test(test_wall_step_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
