/* siphash.h -- SipHash-2-4 (Aumasson & Bernstein), the keyed hash of every table whose keys a client
 * chooses (client ids, serials, topics): with a random per-table key nobody outside the process can
 * compute which keys share a bucket, so no one can build a long chain (hash flooding).
 * Pure, thread-safe; kg_siphash__random_key reads getrandom(2). */
#ifndef KITGATE_SIPHASH_H
#define KITGATE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define KG_SIPHASH_KEY_LEN 16

/* SipHash-2-4 of len bytes at data under key (the reference vectors of the paper hold). */
uint64_t kg_siphash__hash(const uint8_t key[KG_SIPHASH_KEY_LEN], const void *data, size_t len);

/* Fill key with random bytes: getrandom(2), falling back to time and address bits if it fails
 * (a weaker but still per-process key; never an error). */
void kg_siphash__random_key(uint8_t key[KG_SIPHASH_KEY_LEN]);

#endif
