/* bridge.h -- UNS-style MQTT -> Kafka routes: which topics are bridged, Kafka topic naming and JSON
 * attribute filtering. Pure functions; any thread. (Filter matching: kg_topic__matches, topic.h.) */
#ifndef KITGATE_BRIDGE_H
#define KITGATE_BRIDGE_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/config.h"

/* Whether a publish on topic is to be bridged: it matches one of cfg->bridge_topics. */
int kg_bridge__wanted(const struct kg_config *cfg, const char *topic);

/* Kafka topic name for an MQTT topic: '/' -> separator, every character outside
 * [A-Za-z0-9._-] -> '_'. Returns the length, or -1 when the name would be empty or longer than
 * 249 characters (a refused route), writing nothing useful. out must hold 250 bytes. */
int kg_bridge__kafka_topic(const char *mqtt_topic, const char *separator, char out[250]);

/* The Kafka value and timestamp for a bridged payload. If the payload is a JSON object, the dot
 * paths of every ignored_attributes rule whose filter matches topic are removed and the result
 * is re-serialised; if cfg->timestamp_attribute names a top-level number (epoch ms) it becomes
 * *timestamp_ms (else 0). A non-JSON or non-object payload is returned unchanged.
 * Sparkplug B topics (kg_sparkplug__is_topic) with cfg->bridge_sparkplug == KG_SPARKPLUG_DECODE:
 * the payload is decoded to JSON (kg_sparkplug__decode) and treated as above, always
 * re-serialised, with the payload's "timestamp" as the fallback Kafka timestamp; a payload that
 * does not decode is returned unchanged and counted in kg_bridge__undecodable().
 * On return *value points either at payload (unchanged, *owned = 0) or at a malloc'd buffer
 * (*owned = 1, caller frees). Returns 0, or -1 on out of memory. Any thread; the plugin calls it
 * on the worker thread only. */
int kg_bridge__transform(const struct kg_config *cfg, const char *topic, const uint8_t *payload,
		size_t len, const uint8_t **value, size_t *value_len, int *owned, int64_t *timestamp_ms);


/* Sparkplug B payloads on bridge routes that did not decode since the process started (they were
 * forwarded unchanged). Any thread (relaxed atomic); status JSON "bridge.undecodable". */
uint64_t kg_bridge__undecodable(void);

#endif
