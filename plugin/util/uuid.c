/* uuid.c -- UUID text: canonical lower-case formatting and parsing (pure, any thread). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kitgate/uuid.h"

/* Contract in uuid.h. out must hold 37 bytes. Any thread. */
void kg_uuid__format(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for(int i = 0; i < 16; i++){
		if(i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
		*o++ = hex[id[i] >> 4];
		*o++ = hex[id[i] & 0xF];
	}
	*o = '\0';
}

/* A hex digit's value plus one; 0 for anything else. */
static const uint8_t hex1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
	['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hexval(char c)
{
	return hex1[(unsigned char)c] - 1;
}

/* Parse exactly 36 bytes "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex of either case). Returns 0,
 * or -1 (id untouched). Any thread. */
int kg_uuid__parse(const char *s, size_t len, uint8_t id[16])
{
	uint8_t tmp[16];
	size_t pos = 0;

	if(!s || len != 36) return -1;
	for(int i = 0; i < 16; i++){
		int hi, lo;
		if(pos == 8 || pos == 13 || pos == 18 || pos == 23){
			if(s[pos] != '-') return -1;
			pos++;
		}
		hi = hexval(s[pos]);
		lo = hexval(s[pos + 1]);
		if(hi < 0 || lo < 0) return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	assert(pos == 36);
	memcpy(id, tmp, 16);
	return 0;
}
