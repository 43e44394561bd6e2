/* validate.h -- measurement payload validation: the SPEC's rules and their stable reason names. */
#ifndef KITGATE_VALIDATE_H
#define KITGATE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/record.h"

enum kg_reason {
	KG_OK = 0,
	KG_TOO_LARGE,        /* "too_large" */
	KG_MALFORMED,        /* "malformed": not a UTF-8 JSON object */
	KG_MISSING_FIELD,    /* "missing_field" */
	KG_BAD_TYPE,         /* "bad_type" */
	KG_SERIAL_MISMATCH,  /* "serial_mismatch" */
	KG_BAD_TIME,         /* "bad_time" */
	KG_BAD_VALUE,        /* "bad_value" */
	KG_OVERLOAD,         /* "overload": accepted by the rules, but neither memory nor spool could
	                      * hold it (set by the plugin; by kg_validate__measurement only when it
	                      * ran out of memory reading the JSON: detail "out of memory") */
	/* ownership against the kits snapshot (auth postgres; kg_snapshot__check, never the validator) */
	KG_FOREIGN_PERIPHERAL,     /* "foreign_peripheral": the peripheral belongs to another kit */
	KG_UNKNOWN_PERIPHERAL,     /* "unknown_peripheral" */
	KG_UNKNOWN_QUANTITY_TYPE,  /* "unknown_quantity_type" */
	/* the per-kit rate limit (kit_rate_limit; set by the plugin, never the validator) */
	KG_RATE_LIMITED,           /* "rate_limited" */
	KG_REASON_COUNT
};

struct kg_limits {
	size_t max_payload;          /* bytes */
	int64_t max_clock_skew_ms;   /* timestamps later than now + this are bad_time */
};

/* Stable snake_case name of a reason ("ok" for KG_OK). */
const char *kg_reason__name(enum kg_reason r);

/* Validate a measurement payload published on kit/<serial>/measurement/{raw,aggregate}.
 * kind is KG_KIND_RAW or KG_KIND_AGGREGATE; serial/serial_len is the topic's serial; payload
 * need not be NUL-terminated (may be NULL when len == 0). On KG_OK, *out is filled (kitSerial
 * taken from the topic when the payload's is absent or empty). On failure, *detail (if not NULL)
 * points to a short static string naming the field or problem, e.g. "id". Pure, any thread; no
 * allocation survives the call. */
enum kg_reason kg_validate__measurement(int kind, const char *serial, size_t serial_len,
		const void *payload, size_t len, int64_t now_ms, const struct kg_limits *limits,
		struct kg_record *out, const char **detail);

/* The format-independent rules on a record a decoder filled (kind RAW or AGGREGATE): bad_time
 * (negative, later than now_ms + max_clock_skew_ms, end before start), bad_type (peripheral or
 * quantityType < 1), bad_value (value not finite; aggregate: 1..KG_AGG_MAX values, names 1..50
 * characters of valid UTF-8, finite). First failure in field order wins; *detail as above. Pure. */
enum kg_reason kg_validate__record(const struct kg_record *rec, int64_t now_ms,
		const struct kg_limits *limits, const char **detail);

#endif
