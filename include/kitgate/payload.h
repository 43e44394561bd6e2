/* payload.h -- which decoder reads a measurement payload (payload_format auto|json|capnp). */
#ifndef KITGATE_PAYLOAD_H
#define KITGATE_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/config.h"
#include "kitgate/record.h"
#include "kitgate/validate.h"

/* 1 when a payload is JSON under payload_format auto: its first byte that is not JSON white
 * space is '{'. Anything else (including an empty or all-space payload) is not. */
int kg_payload__is_json(const void *payload, size_t len);

/* Validate a measurement payload in the given format: KG_PAYLOAD_JSON -> kg_validate__measurement,
 * KG_PAYLOAD_CAPNP -> kg_capnp__decode, KG_PAYLOAD_AUTO -> by kg_payload__is_json (an empty
 * payload goes to JSON, which calls it malformed). Arguments, result and contract are those of
 * kg_validate__measurement. Pure, any thread; this is the one call the MESSAGE path makes. */
enum kg_reason kg_payload__validate(enum kg_payload_format format, int kind, const char *serial,
		size_t serial_len, const void *payload, size_t len, int64_t now_ms,
		const struct kg_limits *limits, struct kg_record *out, const char **detail);

#endif
