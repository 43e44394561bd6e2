/* sink_none.c -- the `none` sink: every record is reported OK at the next poll (sink none; tests;
 * the microbench). Contract in sink.h; one thread. */
#include <stdlib.h>
#include <string.h>

#include "kitgate/sink.h"

struct none_sink {
	void **items;
	size_t n, cap;
	uint64_t written;
};

static size_t none_submit(void *state, const struct kg_record *recs, void *const *items, size_t n)
{
	struct none_sink *s = state;

	(void)recs;
	if(s->n + n > s->cap){
		size_t cap = s->cap ? s->cap : 1024;
		void **p;
		while(cap < s->n + n) cap *= 2;
		p = realloc(s->items, cap * sizeof(*p));
		if(!p) return 0; /* the worker tries again after the next poll */
		s->items = p;
		s->cap = cap;
	}
	memcpy(s->items + s->n, items, n * sizeof(*items));
	s->n += n;
	return n;
}

static size_t none_poll(void *state, int timeout_ms, kg_sink_report_fn report, void *ud)
{
	struct none_sink *s = state;
	size_t i, n = s->n;

	(void)timeout_ms; /* nothing is ever pending for long: never wait */
	s->n = 0;
	for(i = 0; i < n; i++) report(s->items[i], KG_SETTLE_OK, NULL, ud);
	s->written += n;
	return n;
}

static void none_rewind(void *state)
{
	((struct none_sink *)state)->n = 0;
}

static void none_health(void *state, struct kg_sink_health *out)
{
	struct none_sink *s = state;

	memset(out, 0, sizeof(*out));
	out->connected = true;
	out->in_flight = s->n;
	out->written = s->written;
}

static void none_free(void *state)
{
	struct none_sink *s = state;

	if(!s) return;
	free(s->items);
	free(s);
}

static const struct kg_sink_ops none_ops = {
	"none", none_submit, none_poll, none_rewind, none_health, none_free,
};

int kg_sink_none__new(struct kg_sink *out, char *err, size_t errlen)
{
	struct none_sink *s = calloc(1, sizeof(*s));

	if(!s){
		if(errlen) strncpy(err, "kitgate: out of memory", errlen - 1), err[errlen - 1] = 0;
		return -1;
	}
	out->ops = &none_ops;
	out->state = s;
	return 0;
}
