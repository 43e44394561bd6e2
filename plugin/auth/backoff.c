/* backoff.c -- login failure backoff per serial and source (see backoff.h). One thread, no I/O. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/backoff.h"
#include "kitgate/siphash.h"

#define WAYS 4

struct entry {
	char serial[KG_BACKOFF_KEY_MAX + 1];   /* the key; "" = empty */
	int64_t until_ms;                 /* end of the current window */
	int64_t delay_ms;                 /* its length */
};

struct kg_backoff {
	struct entry *e;        /* nsets * WAYS */
	int64_t *overflow_until_ms;   /* nsets: the set counts as suspect until then (0: never overflowed) */
	size_t nsets;           /* a power of two */
	size_t count;
	uint64_t evicted, overflowed;
	int64_t initial_ms, max_ms;
	uint8_t key[KG_SIPHASH_KEY_LEN];
};

/* Keyed: this table decides the budget class, so whoever could compute which serials share a set
 * could keep serials off the record (and clean) by cycling five of them through one set. */
static size_t set_of(const struct kg_backoff *b, const char *serial)
{
	return (size_t)(kg_siphash__hash(b->key, serial, strlen(serial)) & (b->nsets - 1));
}

static bool valid_serial(const char *serial)
{
	return serial && serial[0] && strlen(serial) <= KG_BACKOFF_KEY_MAX;
}

/* Quiet for longer than the longest window since its window ended: no longer protected from
 * eviction, and its next failure starts again at initial_ms. */
static bool is_stale(const struct kg_backoff *b, const struct entry *e, int64_t now_ms)
{
	return now_ms - e->until_ms > b->max_ms;
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

int kg_backoff__source_key(char out[KG_BACKOFF_KEY_MAX + 1], const char *serial, const char *address)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];
	size_t sl, al;

	if(!serial || !serial[0] || (sl = strlen(serial)) > KG_SERIAL_MAX) return -1;
	if(!address) address = "";
	if(inet_pton(AF_INET6, address, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)){
		memset(&a6.s6_addr[8], 0, 8);          /* the /64: one host's usual share */
		if(inet_ntop(AF_INET6, &a6, buf, sizeof(buf))) address = buf;
	}
	al = strnlen(address, 45);
	memcpy(out, serial, sl);
	out[sl] = '\n';
	memcpy(out + sl + 1, address, al);
	out[sl + 1 + al] = '\0';
	return (int)(sl + 1 + al);
}

struct kg_backoff *kg_backoff__new_keyed(size_t capacity, int64_t initial_ms, int64_t max_ms,
		const uint8_t key[KG_SIPHASH_KEY_LEN])
{
	struct kg_backoff *b;
	size_t nsets = 1;

	if(initial_ms <= 0 || max_ms < initial_ms || !key) return NULL;
	b = calloc(1, sizeof(*b));
	if(!b) return NULL;
	while(nsets * WAYS < capacity) nsets <<= 1;
	b->nsets = nsets;
	b->initial_ms = initial_ms;
	b->max_ms = max_ms;
	memcpy(b->key, key, sizeof(b->key));
	b->e = calloc(nsets * WAYS, sizeof(*b->e));
	b->overflow_until_ms = calloc(nsets, sizeof(*b->overflow_until_ms));
	if(!b->e || !b->overflow_until_ms){
		kg_backoff__free(b);
		return NULL;
	}
	return b;
}

struct kg_backoff *kg_backoff__new(size_t capacity, int64_t initial_ms, int64_t max_ms)
{
	uint8_t key[KG_SIPHASH_KEY_LEN];

	kg_siphash__random_key(key);
	return kg_backoff__new_keyed(capacity, initial_ms, max_ms, key);
}

void kg_backoff__free(struct kg_backoff *b)
{
	if(!b) return;
	free(b->e);
	free(b->overflow_until_ms);
	free(b);
}

int64_t kg_backoff__remaining(const struct kg_backoff *b, const char *serial, int64_t now_ms)
{
	const struct entry *e;

	if(!b || !valid_serial(serial)) return 0;
	e = find(b, serial);
	return e && e->until_ms > now_ms ? e->until_ms - now_ms : 0;
}

bool kg_backoff__has(const struct kg_backoff *b, const char *serial, int64_t now_ms)
{
	if(!b || !valid_serial(serial)) return false;
	return find(b, serial) != NULL || b->overflow_until_ms[set_of(b, serial)] > now_ms;
}

int64_t kg_backoff__fail(struct kg_backoff *b, const char *serial, int64_t now_ms)
{
	struct entry *e, *set;
	size_t s;
	int i;

	if(!b || !valid_serial(serial)) return 0;
	e = find(b, serial);
	if(e){
		if(is_stale(b, e, now_ms)) e->delay_ms = b->initial_ms; /* quiet for long: start over */
		else e->delay_ms = e->delay_ms * 2 < b->max_ms ? e->delay_ms * 2 : b->max_ms;
	}else{
		/* An empty way, else the stale entry whose window ended first; never a live one. */
		s = set_of(b, serial);
		set = &b->e[s * WAYS];
		for(i = 0; i < WAYS; i++){
			if(!set[i].serial[0]){
				e = &set[i];
				break;
			}
			if(is_stale(b, &set[i], now_ms) && (!e || set[i].until_ms < e->until_ms)) e = &set[i];
		}
		if(!e){
			/* Four live entries: keep them, mark the set suspect for as long as the newcomer's entry
			 * would have stayed live. */
			b->overflowed++;
			if(b->overflow_until_ms[s] < now_ms + b->initial_ms + b->max_ms){
				b->overflow_until_ms[s] = now_ms + b->initial_ms + b->max_ms;
			}
			return 0;
		}
		if(!e->serial[0]) b->count++;
		else b->evicted++;
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

	if(!b || !valid_serial(serial)) return;
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

uint64_t kg_backoff__evicted(const struct kg_backoff *b)
{
	return b ? b->evicted : 0;
}

uint64_t kg_backoff__overflowed(const struct kg_backoff *b)
{
	return b ? b->overflowed : 0;
}
