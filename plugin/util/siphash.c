/* siphash.c -- SipHash-2-4 and a random key for it (see siphash.h). */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kitgate/siphash.h"

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
		| (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define SIPROUND \
	do{ \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
	}while(0)

uint64_t kg_siphash__hash(const uint8_t key[KG_SIPHASH_KEY_LEN], const void *data, size_t len)
{
	const uint8_t *in = data, *end = in + (len & ~(size_t)7);
	uint64_t k0 = load_le64(key), k1 = load_le64(key + 8), m, b = (uint64_t)len << 56;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	int i;

	for(; in != end; in += 8){
		m = load_le64(in);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for(i = (int)(len & 7) - 1; i >= 0; i--) b |= (uint64_t)in[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void kg_siphash__random_key(uint8_t key[KG_SIPHASH_KEY_LEN])
{
	struct timespec ts;
	uint64_t mix[2];

	if(getrandom(key, KG_SIPHASH_KEY_LEN, GRND_NONBLOCK) == KG_SIPHASH_KEY_LEN) return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mix[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)key;
	clock_gettime(CLOCK_REALTIME, &ts);
	mix[1] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)&mix;
	memcpy(key, mix, KG_SIPHASH_KEY_LEN);
}
