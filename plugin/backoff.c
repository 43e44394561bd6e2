/* backoff.c -- per-serial login failure backoff (see backoff.h). One thread, no I/O. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/backoff.h"
#include "kitgate/record.h"     /* KG_SERIAL_MAX */

#define WAYS 4

struct entry {
	char serial[KG_SERIAL_MAX + 1];   /* "" = empty */
	int64_t until_ms;                 /* end of the current window */
	int64_t delay_ms;                 /* its length */
};

struct kg_backoff {
	struct entry *e;        /* nsets * WAYS */
	size_t nsets;           /* a power of two */
	size_t count;
	int64_t initial_ms, max_ms;
};

/* FNV-1a: the table is bounded and an attacker can only choose among known kit serials. */
static size_t set_of(const struct kg_backoff *b, const char *serial)
{
	uint64_t h = 1469598103934665603ull;

	for(; *serial; serial++){
		h ^= (unsigned char)*serial;
		h *= 1099511628211ull;
	}
	return (size_t)(h & (b->nsets - 1));
}

static struct entry *find(const struct kg_backoff *b, const char *serial)
{
	struct entry *set = &b->e[set_of(b, serial) * WAYS];
	int i;

	for(i = 0; i < WAYS; i++){
		if(set[i].serial[0] && !strcmp(set[i].serial, serial)) return &set[i];
	}
	return NULL;
}

struct kg_backoff *kg_backoff__new(size_t capacity, int64_t initial_ms, int64_t max_ms)
{
	struct kg_backoff *b;
	size_t nsets = 1;

	if(initial_ms <= 0 || max_ms < initial_ms) return NULL;
	b = calloc(1, sizeof(*b));
	if(!b) return NULL;
	while(nsets * WAYS < capacity) nsets <<= 1;
	b->nsets = nsets;
	b->initial_ms = initial_ms;
	b->max_ms = max_ms;
	b->e = calloc(nsets * WAYS, sizeof(*b->e));
	if(!b->e){
		free(b);
		return NULL;
	}
	return b;
}

void kg_backoff__free(struct kg_backoff *b)
{
	if(!b) return;
	free(b->e);
	free(b);
}

int64_t kg_backoff__remaining(const struct kg_backoff *b, const char *serial, int64_t now_ms)
{
	const struct entry *e;

	if(!b || !serial || !serial[0] || strlen(serial) > KG_SERIAL_MAX) return 0;
	e = find(b, serial);
	return e && e->until_ms > now_ms ? e->until_ms - now_ms : 0;
}

bool kg_backoff__has(const struct kg_backoff *b, const char *serial)
{
	if(!b || !serial || !serial[0] || strlen(serial) > KG_SERIAL_MAX) return false;
	return find(b, serial) != NULL;
}

int64_t kg_backoff__fail(struct kg_backoff *b, const char *serial, int64_t now_ms)
{
	struct entry *e, *set;
	int i;

	if(!b || !serial || !serial[0] || strlen(serial) > KG_SERIAL_MAX) return 0;
	e = find(b, serial);
	if(e){
		if(now_ms - e->until_ms > b->max_ms) e->delay_ms = b->initial_ms; /* quiet for long: start over */
		else e->delay_ms = e->delay_ms * 2 < b->max_ms ? e->delay_ms * 2 : b->max_ms;
	}else{
		/* An empty way, else the one whose window ended first (expired ones before running ones). */
		set = &b->e[set_of(b, serial) * WAYS];
		e = &set[0];
		for(i = 0; i < WAYS; i++){
			if(!set[i].serial[0]){
				e = &set[i];
				break;
			}
			if(set[i].until_ms < e->until_ms) e = &set[i];
		}
		if(!e->serial[0]) b->count++;
		strcpy(e->serial, serial);
		e->delay_ms = b->initial_ms;
	}
	assert(e->delay_ms > 0 && e->delay_ms <= b->max_ms);
	e->until_ms = now_ms + e->delay_ms;
	return e->delay_ms;
}

void kg_backoff__clear(struct kg_backoff *b, const char *serial)
{
	struct entry *e;

	if(!b || !serial || !serial[0] || strlen(serial) > KG_SERIAL_MAX) return;
	e = find(b, serial);
	if(!e) return;
	memset(e, 0, sizeof(*e));
	assert(b->count > 0);
	b->count--;
}

size_t kg_backoff__count(const struct kg_backoff *b)
{
	return b ? b->count : 0;
}
