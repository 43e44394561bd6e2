/* bridge.c -- UNS-style MQTT -> Kafka routes: which topics are bridged, Kafka topic naming, JSON attribute filtering. */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/bridge.h"
#include "kitgate/topic.h"

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

/* Contract in bridge.h. The payload must parse as one JSON value with only whitespace after it
 * (cJSON's length-limited parser; nesting depth is cJSON's limit, 1000); anything else is
 * "non-JSON" and is forwarded as is. The timestamp is read before attributes are removed, so a
 * timestamp attribute that is also ignored still sets the Kafka timestamp. The output is
 * re-serialised (compact, cJSON number formatting) only when at least one attribute was
 * removed; otherwise *value is payload itself, byte for byte. cJSON cannot tell "out of memory"
 * from "invalid JSON" while parsing: such a payload is forwarded unchanged. A malloc'd *value
 * comes from cJSON's allocator (malloc by default): free() it. */
int kg_bridge__transform(const struct kg_config *cfg, const char *topic, const uint8_t *payload,
		size_t len, const uint8_t **value, size_t *value_len, int *owned, int64_t *timestamp_ms)
{
	const char *end = NULL;
	cJSON *root;
	int removed = 0;
	size_t i, j;
	char *out;

	assert(cfg && topic && value && value_len && owned && timestamp_ms);
	*value = payload;
	*value_len = len;
	*owned = 0;
	*timestamp_ms = 0;
	if(!payload || len == 0) return 0;

	root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, 0);
	if(!root) return 0;
	if(!cJSON_IsObject(root)) goto unchanged;
	if(end){
		const char *stop = (const char *)payload + len;

		while(end < stop && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
		if(end < stop) goto unchanged; /* trailing garbage: not one JSON value */
	}

	if(cfg->timestamp_attribute && cfg->timestamp_attribute[0]){
		*timestamp_ms = number_to_ms(cJSON_GetObjectItemCaseSensitive(root, cfg->timestamp_attribute));
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
	if(!removed) goto unchanged;

	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if(!out) return -1;
	*value = (const uint8_t *)out;
	*value_len = strlen(out);
	*owned = 1;
	return 0;

unchanged:
	cJSON_Delete(root);
	return 0;
}
