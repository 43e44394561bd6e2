/* json.h -- JSON text output: the string escapers (valid UTF-8 text; arbitrary bytes), and the canonical JSON of a record. */
#ifndef KITGATE_JSON_H
#define KITGATE_JSON_H

#include <stddef.h>
#include "kitgate/record.h"

/* The body of a JSON string literal for len bytes of s (no surrounding quotes): '"' and '\\'
 * backslash-escaped, \b \f \n \r \t short forms, other control characters (< 0x20, including NUL)
 * as \u00XX; every other byte copied as is (the caller guarantees valid UTF-8). Writes at most
 * cap bytes into out (a prefix when the text does not fit; no NUL is added; out may be NULL when
 * cap is 0) and returns the full escaped length, at most 6 * len. Pure, any thread. */
size_t kg_json__escape(char *out, size_t cap, const char *s, size_t len);

/* The body of a JSON string literal for the NUL-terminated s of arbitrary bytes (client ids,
 * addresses, serials: whatever a client sent). Always valid JSON: '"' and '\\' escaped, every
 * control character as \u00XX, and each byte that does not start a valid UTF-8 sequence as
 * \ufffd. Returns the length the full escape needs (like snprintf); out gets at most cap - 1 bytes
 * and a NUL (it may cut a sequence; cap 0 writes nothing). Pure, any thread. */
size_t kg_json__escape_bytes(char *out, size_t cap, const char *s);

/* The Kafka value for a RAW/AGGREGATE record: canonical JSON with kitSerial filled, e.g.
 * {"id":"…","kitSerial":"…","datetime":1700000000000,"peripheral":7,"quantityType":1,"value":21.5}.
 * Doubles are printed in the shortest form that round-trips. Returns the length written
 * (NUL-terminated), or the length needed (> cap-1) when cap is too small; 0 for a BRIDGE or
 * unknown record. Pure, any thread. */
size_t kg_json__record(const struct kg_record *rec, char *buf, size_t cap);

#endif
