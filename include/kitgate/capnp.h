/* capnp.h -- packed Cap'n Proto measurements (SPEC "Cap'n Proto"): the decoder the validation path
 * uses for AstroPlant kits, and the encoder the kit simulator and the tests use. A C interface to
 * one small C++ unit (plugin/ingest/capnp_decode.cpp, libcapnp); no C++ exception ever crosses it. */
#ifndef KITGATE_CAPNP_H
#define KITGATE_CAPNP_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/record.h"
#include "kitgate/validate.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds of one decode. The largest legal measurement (aggregate, 16 values with 50-character
 * names, 64-byte serial) is under 600 words and 4 levels deep (root, list, element, text); the
 * segment table may not declare more than the traversal limit either, so a hostile message can
 * never make the decoder allocate or walk more than 32 KiB. */
#define KG_CAPNP_TRAVERSAL_WORDS 4096 /* ReaderOptions.traversalLimitInWords (libcapnp: 8 Mi) */
#define KG_CAPNP_NESTING 8            /* ReaderOptions.nestingLimit (libcapnp: 64) */

/* Decode a packed Cap'n Proto RawMeasurement (kind KG_KIND_RAW) or AggregateMeasurement
 * (KG_KIND_AGGREGATE) published on kit/<serial>/measurement/..., and apply the same rules and
 * reason names as kg_validate__measurement (same arguments, same contract): too_large over
 * limits->max_payload; malformed for anything libcapnp refuses (truncated, garbage, traversal or
 * nesting limit exceeded, trailing bytes) and duplicate aggregate value types; bad_type for an id
 * that is not 16 bytes; serial_mismatch for another kit's kitSerial (empty or null is filled
 * from the topic); bad_time for a time that does not fit int64 or breaks the time rules; then
 * kg_validate__record. On KG_OK *out is filled. Pure, any thread; nothing allocated survives the
 * call (a message over 8 KiB unpacked costs one heap allocation, everything else the stack). */
enum kg_reason kg_capnp__decode(int kind, const char *serial, size_t serial_len,
		const void *payload, size_t len, int64_t now_ms, const struct kg_limits *limits,
		struct kg_record *out, const char **detail);

/* Encode a RAW or AGGREGATE record as a packed single-segment message, kitSerial = rec->serial
 * ("" as real kits send when rec->serial is empty). Returns the encoded length (only written
 * when <= cap: retry with a bigger buffer otherwise), or 0 on a record that cannot be encoded
 * (another kind, out of memory). Any thread. */
size_t kg_capnp__encode(const struct kg_record *rec, uint8_t *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
