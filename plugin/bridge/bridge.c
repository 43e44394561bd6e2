/* bridge.c -- UNS-style MQTT -> Kafka routes: which topics are bridged, Kafka topic naming, JSON attribute filtering. */
#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/bridge.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/sparkplug.h"
#include "kitgate/topic.h"

/* Sparkplug B payloads that did not decode (forwarded unchanged), process-wide. */
static _Atomic uint64_t undecodable;

/* Contract in bridge.h. */
uint64_t kg_bridge__undecodable(void)
{
	return atomic_load_explicit(&undecodable, memory_order_relaxed);
}

/* Contract in bridge.h. */
int kg_bridge__wanted(const struct kg_config *cfg, const char *topic)
{
	size_t i;

	if(!cfg || !topic) return 0;
	for(i = 0; i < cfg->nbridge_topics; i++){
		if(kg_topic__matches(cfg->bridge_topics[i], topic)) return 1;
	}
	return 0;
}

static int kafka_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		|| c == '.' || c == '_' || c == '-';
}

/* Contract in bridge.h. '/' becomes the separator (itself sanitised; NULL or "" means "_"); any
 * other byte outside [A-Za-z0-9._-] becomes '_' -- one '_' per UTF-8 character, continuation
 * bytes are dropped ("é" -> "_"). The mapping is not injective: "a/b", "a_b" and "a+b" all
 * map to "a_b" (same Kafka topic). "." and ".." are not legal Kafka names either: refused. */
int kg_bridge__kafka_topic(const char *mqtt_topic, const char *separator, char out[250])
{
	const char *sep = (separator && separator[0]) ? separator : "_";
	size_t n = 0;
	const unsigned char *p;

	assert(out);
	out[0] = '\0';
	if(!mqtt_topic) return -1;
	for(p = (const unsigned char *)mqtt_topic; *p; p++){
		if(*p == '/'){
			const unsigned char *s;

			for(s = (const unsigned char *)sep; *s; s++){
				if(n >= 249) return -1;
				out[n++] = kafka_char_ok(*s) ? (char)*s : '_';
			}
			continue;
		}
		if((*p & 0xC0) == 0x80) continue; /* UTF-8 continuation byte: already counted */
		if(n >= 249) return -1;
		out[n++] = kafka_char_ok(*p) ? (char)*p : '_';
	}
	out[n] = '\0';
	if(n == 0 || !strcmp(out, ".") || !strcmp(out, "..")) return -1;
	return (int)n;
}

/* Remove the dot path from root: walk object members by exact (case-sensitive) key; when an
 * intermediate member is missing, an array or any non-object, stop (no-op). Every member with
 * the final key is removed (JSON may repeat a key). A key containing '.' cannot be addressed.
 * Returns 1 if something was removed, 0 if not, -1 on out of memory. */
static int remove_path(cJSON *root, const char *path)
{
	char *copy = strdup(path);
	char *seg, *dot;
	cJSON *cur = root;
	cJSON *gone;
	int removed = 0;

	if(!copy) return -1;
	seg = copy;
	while((dot = strchr(seg, '.')) != NULL){
		*dot = '\0';
		cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
		if(!cur || !cJSON_IsObject(cur)){
			free(copy);
			return 0;
		}
		seg = dot + 1;
	}
	while((gone = cJSON_DetachItemFromObjectCaseSensitive(cur, seg)) != NULL){
		cJSON_Delete(gone);
		removed = 1;
	}
	free(copy);
	return removed;
}

/* Epoch milliseconds from a JSON number: finite, integral, 0 <= v < 2^63. 0 when not usable. */
static int64_t number_to_ms(const cJSON *item)
{
	double v;

	if(!cJSON_IsNumber(item)) return 0;
	v = item->valuedouble;
	if(!isfinite(v) || v < 0 || v >= 9223372036854775808.0 || floor(v) != v) return 0;
	return (int64_t)v;
}

/* A Sparkplug B payload that did not decode: counted, and logged at most once a second per
 * thread (the limiter is thread-local: the plugin's worker and a tool's threads each own one). */
static void note_undecodable(const char *topic, int rc)
{
	static _Thread_local struct kg_ratelimit rl;
	uint64_t suppressed;

	atomic_fetch_add_explicit(&undecodable, 1, memory_order_relaxed);
	if(kg_ratelimit__allow(&rl, &suppressed)){
		kg_log(KG_LOG_WARNING, "bridge: payload on \"%s\" is not a valid Sparkplug B payload (%s); "
				"forwarded unchanged (+%llu more suppressed)", topic,
				rc == KG_SPARKPLUG_INVALID ? "protobuf, nesting, UTF-8 or array error" :
				rc == KG_SPARKPLUG_TOO_BIG ? "its JSON would pass the output limit" : "error",
				(unsigned long long)suppressed);
	}
}

/* Parse a JSON payload: one JSON object with only whitespace after it (cJSON's length-limited
 * parser; nesting depth is cJSON's limit, 1000). NULL for anything else, including out of
 * memory (cJSON cannot tell it from invalid JSON). */
static cJSON *parse_object(const uint8_t *payload, size_t len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);

	if(!root) return NULL;
	if(!cJSON_IsObject(root)) goto not_object;
	if(end){
		const char *stop = (const char *)payload + len;

		while(end < stop && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
		if(end < stop) goto not_object; /* trailing garbage: not one JSON value */
	}
	return root;
not_object:
	cJSON_Delete(root);
	return NULL;
}

/* Contract in bridge.h. A JSON payload that does not parse as one object is "non-JSON" and is
 * forwarded as is. The timestamp is read before attributes are removed, so a timestamp
 * attribute that is also ignored still sets the Kafka timestamp. A JSON payload is
 * re-serialised (compact, cJSON number formatting) only when at least one attribute was
 * removed; otherwise *value is payload itself, byte for byte. A Sparkplug B payload
 * (kg_sparkplug__is_topic, bridge_sparkplug decode) is always serialised from its decoded JSON;
 * its Kafka timestamp is the timestamp attribute, else the payload's "timestamp"; when it does
 * not decode it is counted (kg_bridge__undecodable) and forwarded unchanged. An empty payload is
 * forwarded unchanged whatever the topic. A malloc'd *value comes from cJSON's allocator (malloc
 * by default): free() it. Runs on the worker thread in the plugin (decoding is not for the
 * broker thread). */
int kg_bridge__transform(const struct kg_config *cfg, const char *topic, const uint8_t *payload,
		size_t len, const uint8_t **value, size_t *value_len, int *owned, int64_t *timestamp_ms)
{
	cJSON *root;
	int removed = 0, sparkplug = 0;
	size_t i, j;
	char *out;

	assert(cfg && topic && value && value_len && owned && timestamp_ms);
	*value = payload;
	*value_len = len;
	*owned = 0;
	*timestamp_ms = 0;
	if(!payload || len == 0) return 0;

	if(cfg->bridge_sparkplug == KG_SPARKPLUG_DECODE && kg_sparkplug__is_topic(topic)){
		int rc = kg_sparkplug__decode(payload, len, &root);

		if(rc == KG_SPARKPLUG_NOMEM) return -1;
		if(rc){
			note_undecodable(topic, rc);
			return 0;
		}
		sparkplug = 1;
	}else{
		root = parse_object(payload, len);
		if(!root) return 0;
	}

	if(cfg->timestamp_attribute && cfg->timestamp_attribute[0]){
		*timestamp_ms = number_to_ms(cJSON_GetObjectItemCaseSensitive(root, cfg->timestamp_attribute));
	}
	if(sparkplug && *timestamp_ms == 0){
		*timestamp_ms = number_to_ms(cJSON_GetObjectItemCaseSensitive(root, "timestamp"));
	}

	for(i = 0; i < cfg->nignored; i++){
		const struct kg_ignore_rule *rule = &cfg->ignored[i];

		if(!kg_topic__matches(rule->filter, topic)) continue;
		for(j = 0; j < rule->npaths; j++){
			int rc = remove_path(root, rule->paths[j]);

			if(rc < 0){
				cJSON_Delete(root);
				return -1;
			}
			removed |= rc;
		}
	}
	if(!removed && !sparkplug){
		cJSON_Delete(root);
		return 0;
	}

	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if(!out) return -1;
	*value = (const uint8_t *)out;
	*value_len = strlen(out);
	*owned = 1;
	return 0;
}
