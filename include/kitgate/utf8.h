/* utf8.h -- strict UTF-8 validation and character counting; pure functions, any thread. */
#ifndef KITGATE_UTF8_H
#define KITGATE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF). Returns 1 if valid. */
int kg_utf8__valid(const uint8_t *s, size_t len);

/* Number of characters in n bytes of valid UTF-8 (continuation bytes are not counted). */
size_t kg_utf8__chars(const char *s, size_t n);

#endif
