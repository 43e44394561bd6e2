/* logincache.c -- keyed digests of verified kit logins (see logincache.h). One thread. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "kitgate/logincache.h"

#define WAYS 4
#define DIGEST 32

struct slot {
	uint8_t digest[DIGEST];
	uint64_t used;          /* 0 = empty; else the cache's clock at the last hit or add */
};

struct kg_logincache {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
	uint8_t key[32];
	struct slot *slots;     /* nsets * WAYS */
	size_t nsets;           /* a power of two */
	uint64_t clock;
	size_t count;
};

struct kg_logincache *kg_logincache__new(size_t capacity)
{
	struct kg_logincache *c = calloc(1, sizeof(*c));
	size_t nsets = 1;

	if(!c) return NULL;
	while(nsets * WAYS < capacity) nsets <<= 1;
	c->nsets = nsets;
	c->slots = calloc(nsets * WAYS, sizeof(*c->slots));
	c->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	c->ctx = c->mac ? EVP_MAC_CTX_new(c->mac) : NULL;
	if(!c->slots || !c->ctx || RAND_bytes(c->key, sizeof(c->key)) != 1){
		kg_logincache__free(c);
		return NULL;
	}
	return c;
}

void kg_logincache__free(struct kg_logincache *c)
{
	if(!c) return;
	EVP_MAC_CTX_free(c->ctx);
	EVP_MAC_free(c->mac);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	free(c->slots);
	free(c);
}

static int update_field(EVP_MAC_CTX *ctx, const void *p, size_t n)
{
	uint8_t len[8];
	int i;

	/* Length-prefixed, so ("ab","c") and ("a","bc") never collide. */
	for(i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	return EVP_MAC_update(ctx, len, sizeof(len)) == 1 && (n == 0 || EVP_MAC_update(ctx, p, n) == 1);
}

static int digest_of(struct kg_logincache *c, const char *serial, const char *password, size_t pwlen,
		const char *hash, uint8_t out[DIGEST])
{
	OSSL_PARAM params[2];
	size_t outl = 0;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if(EVP_MAC_init(c->ctx, c->key, sizeof(c->key), params) != 1) return -1;
	if(!update_field(c->ctx, serial, strlen(serial)) || !update_field(c->ctx, password, pwlen)
			|| !update_field(c->ctx, hash, strlen(hash))){
		return -1;
	}
	if(EVP_MAC_final(c->ctx, out, &outl, DIGEST) != 1 || outl != DIGEST) return -1;
	return 0;
}

/* Two candidate sets per digest (independent bits of it: the digest is uniformly random). A new
 * entry goes to the emptier of the two, else replaces the least recently used of both: with two
 * choices a half-full table of 4-way sets practically never evicts, where one choice would evict
 * a few percent of the entries at that load. */
static struct slot *set_a(struct kg_logincache *c, const uint8_t d[DIGEST])
{
	uint64_t h;

	memcpy(&h, d, sizeof(h));
	return &c->slots[(h & (c->nsets - 1)) * WAYS];
}

static struct slot *set_b(struct kg_logincache *c, const uint8_t d[DIGEST])
{
	uint64_t h;

	memcpy(&h, d + 8, sizeof(h));
	return &c->slots[(h & (c->nsets - 1)) * WAYS];
}

static struct slot *find(struct kg_logincache *c, const uint8_t d[DIGEST])
{
	struct slot *set[2] = {set_a(c, d), set_b(c, d)};
	int i, j;

	for(j = 0; j < 2; j++){
		for(i = 0; i < WAYS; i++){
			if(set[j][i].used && CRYPTO_memcmp(set[j][i].digest, d, DIGEST) == 0) return &set[j][i];
		}
	}
	return NULL;
}

/* Stores digest d with clock value used (d not in the table). */
static void place(struct kg_logincache *c, const uint8_t d[DIGEST], uint64_t used)
{
	struct slot *set[2] = {set_a(c, d), set_b(c, d)}, *victim;
	int i, j, empty[2] = {0, 0};

	for(j = 0; j < 2; j++){
		for(i = 0; i < WAYS; i++) empty[j] += !set[j][i].used;
	}
	/* the emptier set (the balancing that makes two choices work), else the LRU entry of both */
	j = empty[1] > empty[0];
	victim = &set[j][0];
	for(i = 0; i < WAYS; i++){
		if(set[j][i].used < victim->used) victim = &set[j][i];   /* an empty slot (0) wins */
	}
	if(victim->used){
		for(j = 0; j < 2; j++){
			for(i = 0; i < WAYS; i++){
				if(set[j][i].used < victim->used) victim = &set[j][i];
			}
		}
	}
	if(!victim->used) c->count++;
	memcpy(victim->digest, d, DIGEST);
	victim->used = used;
}

int kg_logincache__hit(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash)
{
	uint8_t d[DIGEST];
	struct slot *s;

	assert(c && serial && hash);
	if(digest_of(c, serial, password ? password : "", password ? pwlen : 0, hash, d) != 0) return 0;
	if(!(s = find(c, d))) return 0;
	s->used = ++c->clock;
	return 1;
}

void kg_logincache__add(struct kg_logincache *c, const char *serial, const char *password,
		size_t pwlen, const char *hash)
{
	uint8_t d[DIGEST];
	struct slot *s;

	assert(c && serial && hash);
	if(digest_of(c, serial, password ? password : "", password ? pwlen : 0, hash, d) != 0) return;
	if((s = find(c, d)) != NULL){
		s->used = ++c->clock;
		return;
	}
	place(c, d, ++c->clock);
}

int kg_logincache__reserve(struct kg_logincache *c, size_t kits, size_t max_entries)
{
	struct slot *old = c->slots, *slots;
	size_t nsets = c->nsets, oldsets = c->nsets, i, want = kits > SIZE_MAX / 4 ? SIZE_MAX / 2 : kits * 2;

	assert(c);
	if(want > max_entries) want = max_entries;
	while(nsets * WAYS < want && nsets * 2 * WAYS <= max_entries) nsets <<= 1;
	if(nsets == oldsets) return 0;
	if(!(slots = calloc(nsets * WAYS, sizeof(*slots)))) return -1;
	c->slots = slots;
	c->nsets = nsets;
	c->count = 0;
	/* the sets come from the digest, so every entry finds its new place without the password;
	 * each keeps its LRU clock. The new table is at least twice as large: nothing is evicted in
	 * practice (if a pair of sets overflowed, the least recently used entry would go) */
	for(i = 0; i < oldsets * WAYS; i++){
		if(old[i].used) place(c, old[i].digest, old[i].used);
	}
	OPENSSL_cleanse(old, oldsets * WAYS * sizeof(*old));
	free(old);
	return 0;
}

size_t kg_logincache__capacity(const struct kg_logincache *c)
{
	return c->nsets * WAYS;
}

size_t kg_logincache__count(const struct kg_logincache *c)
{
	return c->count;
}
