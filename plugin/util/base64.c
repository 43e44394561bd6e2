/* base64.c -- the one base64 decoder (see base64.h). Pure, any thread. */
#include "kitgate/base64.h"

static int value_of(unsigned char ch)
{
	if(ch >= 'A' && ch <= 'Z') return ch - 'A';
	if(ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if(ch >= '0' && ch <= '9') return ch - '0' + 52;
	if(ch == '+') return 62;
	if(ch == '/') return 63;
	return -1;
}

/* Contract in base64.h. */
long kg_base64__decode(const char *in, size_t len, unsigned char *out, size_t cap, enum kg_base64_padding pad)
{
	size_t data = len, i, n = 0;
	unsigned acc = 0;
	int bits = 0, v;

	while(data > 0 && in[data - 1] == '=') data--;
	if(pad == KG_BASE64_PADDED && (len == 0 || len % 4 != 0 || len - data > 2)) return -1;
	for(i = 0; i < data; i++){
		if((v = value_of((unsigned char)in[i])) < 0) return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if(bits >= 8){
			bits -= 8;
			if(n == cap) return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (long)n;
}
