/* topic.h -- topic rules: kit topic classification and MQTT filter matching; pure, any thread. */
#ifndef KITGATE_TOPIC_H
#define KITGATE_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "kitgate/record.h"   /* KG_SERIAL_MAX */

enum kg_topic_class {
	KG_TOPIC_OTHER = 0,    /* not under kit/ */
	KG_TOPIC_KIT,          /* kit/<serial>/... (any other kit topic) */
	KG_TOPIC_KIT_RAW,      /* kit/<serial>/measurement/raw */
	KG_TOPIC_KIT_AGGREGATE,/* kit/<serial>/measurement/aggregate */
	KG_TOPIC_KIT_INVALID,  /* "kit" or "kit/" or "kit//..." : under kit/ but no serial */
	KG_TOPIC_KIT_LOOKALIKE,/* kit/<serial>/measurement/<anything but raw or aggregate>: refused */
};

/* Classify a concrete topic; for KIT* classes sets *serial and *serial_len to the serial level. */
enum kg_topic_class kg_topic__classify(const char *topic, const char **serial, size_t *serial_len);

/* Standard MQTT matching of a concrete topic against a filter ('+' one level, '#' the rest,
 * including the parent level: "a/#" matches "a"). A filter starting with '+' or '#' never matches
 * a topic starting with '$'. Returns 1 on match. */
int kg_topic__matches(const char *filter, const char *topic);

/* Write "kit/<serial>/stats/<peripheral>/<quantity_type>" (the live view's stream key and stats
 * topic) NUL-terminated into out; slen <= KG_SERIAL_MAX, so KG_TOPIC_KIT_STATS_MAX bytes
 * always suffice. Returns its length. The broker thread calls it per accepted measurement, so no
 * printf. Pure, any thread. */
#define KG_TOPIC_KIT_STATS_MAX (4 + KG_SERIAL_MAX + 7 + 11 + 1 + 11 + 1)
size_t kg_topic__kit_stats(char out[KG_TOPIC_KIT_STATS_MAX], const char *serial, size_t slen,
		int32_t peripheral, int32_t quantity_type);

#endif
