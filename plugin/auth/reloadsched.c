/* reloadsched.c -- when the kits snapshot loader reloads (see reloadsched.h). Pure. */
#include "kitgate/reloadsched.h"

void kg_reloadsched__init(struct kg_reloadsched *s, int64_t refresh_ms, int64_t debounce_ms, int64_t max_delay_ms,
		int64_t ask_min_ms)
{
	s->refresh_ms = refresh_ms;
	s->debounce_ms = debounce_ms;
	s->max_delay_ms = max_delay_ms < debounce_ms ? debounce_ms : max_delay_ms;
	s->next_periodic = 0;
	s->burst_first = s->burst_last = 0;
	s->now_due = true;
	s->ask_min_ms = ask_min_ms;
	s->last_load = 0;
	s->ask_at = 0;
}

void kg_reloadsched__force(struct kg_reloadsched *s)
{
	s->now_due = true;
}

void kg_reloadsched__notify(struct kg_reloadsched *s, int64_t now)
{
	if(!s->burst_first) s->burst_first = now ? now : 1;
	s->burst_last = now;
}

void kg_reloadsched__ask(struct kg_reloadsched *s, int64_t now)
{
	if(!s->ask_at) s->ask_at = now ? now : 1;
}

int64_t kg_reloadsched__due(const struct kg_reloadsched *s)
{
	int64_t due = s->next_periodic;

	if(s->now_due) return 0;
	if(s->burst_first){
		int64_t quiet = s->burst_last + s->debounce_ms, cap = s->burst_first + s->max_delay_ms;
		int64_t t = quiet < cap ? quiet : cap;
		if(t < due) due = t;
	}
	if(s->ask_at){
		int64_t t = s->ask_at + s->debounce_ms, floor = s->last_load ? s->last_load + s->ask_min_ms : 0;
		if(t < floor) t = floor;
		if(t < due) due = t;
	}
	return due;
}

void kg_reloadsched__loaded(struct kg_reloadsched *s, int64_t started)
{
	s->now_due = false;
	s->next_periodic = started + s->refresh_ms;
	s->last_load = started;
	s->ask_at = 0;
	/* notifications that came while the load ran may postdate what it read: they stay pending */
	if(s->burst_first && s->burst_last < started) s->burst_first = s->burst_last = 0;
	else if(s->burst_first) s->burst_first = started; /* ...as a new burst starting then */
}
