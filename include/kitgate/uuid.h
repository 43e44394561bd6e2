/* uuid.h -- UUID text (RFC 4122 byte order, canonical 8-4-4-4-12 form); pure, any thread. */
#ifndef KITGATE_UUID_H
#define KITGATE_UUID_H

#include <stddef.h>
#include <stdint.h>

/* Canonical lower-case 8-4-4-4-12 form; out must hold 37 bytes. */
void kg_uuid__format(const uint8_t id[16], char out[37]);
/* Parse a canonical UUID string (36 chars, hex either case). Returns 0 or -1. */
int kg_uuid__parse(const char *s, size_t len, uint8_t id[16]);

#endif
