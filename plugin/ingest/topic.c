/* topic.c -- topic rules: kit topic classification and MQTT filter matching (pure functions, any thread). */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kitgate/topic.h"

/* Whether the first level of topic is literally "kit" ("kit", "kit/..."; not "kitx/..."). */
static bool is_kit_level(const char *topic)
{
	return topic[0] == 'k' && topic[1] == 'i' && topic[2] == 't'
		&& (topic[3] == '/' || topic[3] == '\0');
}

/* Contract in topic.h. topic must be non-NULL; serial/serial_len may be NULL. For KIT_INVALID
 * the serial is the (empty) level after "kit" with length 0; for OTHER it is NULL/0. */
enum kg_topic_class kg_topic__classify(const char *topic, const char **serial, size_t *serial_len)
{
	const char *s, *rest;
	size_t len;
	enum kg_topic_class cls;

	assert(topic);
	if(serial) *serial = NULL;
	if(serial_len) *serial_len = 0;
	if(!is_kit_level(topic)) return KG_TOPIC_OTHER;

	s = topic[3] == '/' ? topic + 4 : topic + 3;
	if(serial) *serial = s;
	len = strcspn(s, "/");
	if(len == 0) return KG_TOPIC_KIT_INVALID;
	if(serial_len) *serial_len = len;

	rest = s + len;
	cls = KG_TOPIC_KIT;
	if(rest[0] == '/'){
		if(!strcmp(rest + 1, "measurement/raw")){
			cls = KG_TOPIC_KIT_RAW;
		}else if(!strcmp(rest + 1, "measurement/aggregate")){
			cls = KG_TOPIC_KIT_AGGREGATE;
		}else if(!strncmp(rest + 1, "measurement/", 12)){
			/* "…/raw/", "…/raw/extra", "…/RAW", "…/other": nothing else exists there */
			cls = KG_TOPIC_KIT_LOOKALIKE;
		}
	}
	return cls;
}

/* Contract in topic.h. Walks filter and topic level by level; a NULL topic cursor means the
 * topic has no more levels (which only a trailing "#" can still match). An empty level matches
 * only an empty level or '+'. Invalid filters ('#' not last, "a+") are compared literally. */
int kg_topic__matches(const char *filter, const char *topic)
{
	const char *f = filter;
	const char *t = topic;

	if(!filter || !topic) return 0;
	if(topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return 0;
	for(;;){
		size_t fl, tl;

		if(f[0] == '#' && f[1] == '\0') return 1;
		if(!t) return 0;
		fl = strcspn(f, "/");
		tl = strcspn(t, "/");
		if(!(fl == 1 && f[0] == '+')){
			if(fl != tl || memcmp(f, t, fl)) return 0;
		}
		f += fl;
		t += tl;
		if(*f == '\0') return *t == '\0';
		f++; /* past '/' */
		t = (*t == '\0') ? NULL : t + 1;
	}
}

/* Decimal of v (with '-' when negative) at o; returns the end. */
static char *put_i32(char *o, int32_t v)
{
	char tmp[11];
	uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
	int n = 0;

	if(v < 0) *o++ = '-';
	do{
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	}while(u);
	while(n) *o++ = tmp[--n];
	return o;
}

/* Contract in topic.h. */
size_t kg_topic__kit_stats(char out[KG_TOPIC_KIT_STATS_MAX], const char *serial, size_t slen,
		int32_t peripheral, int32_t quantity_type)
{
	char *o = out;

	assert(slen <= KG_SERIAL_MAX);
	memcpy(o, "kit/", 4);
	o += 4;
	memcpy(o, serial, slen);
	o += slen;
	memcpy(o, "/stats/", 7);
	o = put_i32(o + 7, peripheral);
	*o++ = '/';
	o = put_i32(o, quantity_type);
	*o = '\0';
	return (size_t)(o - out);
}
