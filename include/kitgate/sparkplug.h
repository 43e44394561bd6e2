/* sparkplug.h -- Sparkplug B payloads (org.eclipse.tahu.protobuf.Payload) decoded to JSON in the
 * UNS bridge's shape, with signed datatypes, bytes and arrays right. Pure functions; any thread
 * (the plugin calls them on the worker thread only, through kg_bridge__transform). */
#ifndef KITGATE_SPARKPLUG_H
#define KITGATE_SPARKPLUG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Bounds of one decode. Nesting counts protobuf messages (Payload > Metric > Template > Metric
 * ... or PropertySet > PropertyValue > PropertySet ...); deeper payloads are undecodable. The
 * allocation limit bounds what protobuf-c may allocate for one payload. */
#define KG_SPARKPLUG_MAX_DEPTH 32
#define KG_SPARKPLUG_ALLOC_LIMIT ((size_t)64 << 20)
/* Bound of the decoded output: the JSON tree of one payload (each node counted as its cJSON
 * struct, 16 bytes of allocation overhead, its string and its key) stays under this; past it the
 * payload is KG_SPARKPLUG_TOO_BIG (the bridge forwards it unchanged and counts it undecodable).
 * The serialised JSON is smaller than the tree, so it is bounded too. */
#define KG_SPARKPLUG_OUTPUT_LIMIT ((size_t)32 << 20)

/* Return codes of kg_sparkplug__decode / kg_sparkplug__to_json besides 0. */
#define KG_SPARKPLUG_INVALID (-1)   /* not a (well-formed) Sparkplug B payload */
#define KG_SPARKPLUG_NOMEM (-2)     /* out of memory while building the JSON */
#define KG_SPARKPLUG_TOO_BIG (-3)   /* the decoded JSON would pass KG_SPARKPLUG_OUTPUT_LIMIT */

/* Whether an MQTT topic carries Sparkplug B protobuf: "spBv1.0/<group>/<type>/<node>[/...]",
 * i.e. at least four levels, except "spBv1.0/STATE/..." (JSON host state). Returns 1 or 0. */
int kg_sparkplug__is_topic(const char *topic);

/* Decode payload into a new cJSON object:
 *   {"timestamp","metrics":[{"name","alias","timestamp","datatype","is_historical",
 *    "is_transient","is_null","metadata":{...},"properties":{"keys","values":[{"type",
 *    "is_null","value"}]},"value"}],"seq","uuid","body"}
 * with only the fields present (empty repeated fields omitted), every *_value field named
 * "value" (interpreted by the datatype: Int8/16/32/64 sign-extended, Bytes/File/body base64,
 * array datatypes unpacked little-endian, BooleanArray bit-packed MSB first after a uint32
 * count, StringArray NUL-separated), "value": null where is_null is set without a value.
 * Integers are exact (also beyond 2^53); floats print in their shortest round-trip form;
 * NaN/Infinity are the strings "NaN", "Infinity", "-Infinity". Numbers are cJSON raw nodes
 * (cJSON_IsRaw, text in valuestring), except the top-level "timestamp" and "seq", which are
 * cJSON numbers when a double holds them exactly (so a caller can read them with
 * cJSON_IsNumber).
 * On success *out owns the tree (cJSON_Delete it) and 0 is returned. On failure *out is NULL and
 * KG_SPARKPLUG_INVALID (protobuf error, nesting deeper than KG_SPARKPLUG_MAX_DEPTH, allocation
 * limit, invalid UTF-8 string, malformed array bytes), KG_SPARKPLUG_TOO_BIG (output limit) or
 * KG_SPARKPLUG_NOMEM is returned. */
int kg_sparkplug__decode(const uint8_t *payload, size_t len, cJSON **out);

/* kg_sparkplug__decode then compact serialisation: on success *json is a malloc'd
 * NUL-terminated string (free() it), *json_len its length. Same return codes. */
int kg_sparkplug__to_json(const uint8_t *payload, size_t len, char **json, size_t *json_len);

#endif
