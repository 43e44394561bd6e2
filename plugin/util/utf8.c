/* utf8.c -- strict UTF-8 validation and character counting (pure, any thread). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kitgate/utf8.h"

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequences. NUL bytes are valid UTF-8. Returns 1 if valid, 0 otherwise. Any thread. */
int kg_utf8__valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	if(!s) return len == 0;
	while(i < len){
		uint8_t c = s[i];
		uint8_t lo = 0x80, hi = 0xBF;
		size_t ncont;

		if(c < 0x80){
			uint64_t w;

			i++;
			/* ASCII runs (all of a typical payload) eight bytes at a time */
			while(len - i >= 8){
				memcpy(&w, s + i, 8);
				if(w & 0x8080808080808080ull) break;
				i += 8;
			}
			continue;
		}
		if(c >= 0xC2 && c <= 0xDF){
			ncont = 1;
		}else if(c >= 0xE0 && c <= 0xEF){
			ncont = 2;
			if(c == 0xE0) lo = 0xA0;      /* overlong */
			else if(c == 0xED) hi = 0x9F; /* surrogates */
		}else if(c >= 0xF0 && c <= 0xF4){
			ncont = 3;
			if(c == 0xF0) lo = 0x90;      /* overlong */
			else if(c == 0xF4) hi = 0x8F; /* > U+10FFFF */
		}else{
			return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
		}
		if(len - i - 1 < ncont) return 0;
		if(s[i + 1] < lo || s[i + 1] > hi) return 0;
		for(size_t k = 2; k <= ncont; k++){
			if((s[i + k] & 0xC0) != 0x80) return 0;
		}
		i += ncont + 1;
	}
	return 1;
}

/* Characters in n bytes: every byte that is not a continuation byte (10xxxxxx) starts one.
 * Meaningful for valid UTF-8 only. Any thread. */
size_t kg_utf8__chars(const char *s, size_t n)
{
	size_t c = 0;
	for(size_t i = 0; i < n; i++){
		if(((unsigned char)s[i] & 0xC0) != 0x80) c++;
	}
	return c;
}
