/* base64.h -- the one base64 decoder (standard alphabet, RFC 4648 section 4): HTTP Basic
 * credentials (padding optional), mosquitto password-file salts and hashes and PBKDF2 keys
 * (padding required). Pure, any thread. */
#ifndef KITGATE_BASE64_H
#define KITGATE_BASE64_H

#include <stddef.h>

enum kg_base64_padding {
	KG_BASE64_PADDED = 0,     /* length a non-zero multiple of 4, at most two '=' at the end */
	KG_BASE64_PAD_OPTIONAL,   /* any length (also empty); '=' only at the end, any number */
};

/* Decodes len bytes of in (need not be NUL-terminated) into out (cap bytes). Returns the decoded
 * length, or -1 when in is not base64 in that form (a character outside the alphabet, '=' before
 * the end) or decodes to more than cap bytes. Bits past the last whole byte are ignored. */
long kg_base64__decode(const char *in, size_t len, unsigned char *out, size_t cap, enum kg_base64_padding pad);

#endif
