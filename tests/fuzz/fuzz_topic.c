/* fuzz_topic.c -- libFuzzer target for the topic classifier (kg_topic__classify), the access
 * matrix (kg_access__decide, kg_access__username_ok) and MQTT filter matching (kg_topic__matches).
 *
 * Input: byte 0 = access (low 2 bits: READ, WRITE, SUBSCRIBE, UNSUBSCRIBE), is_service (bit 2),
 * other_topics (bits 3-4); then username, '\n', topic (or filter). No username ("" before '\n')
 * means anonymous. Invariants, besides ASan/UBSan:
 *   - classify: the serial is the second level of kit/ topics; RAW/AGGREGATE exactly for
 *     kit/<serial>/measurement/raw|aggregate;
 *   - a kit (not a service user) is never allowed READ/WRITE on another kit's topic, nor a
 *     SUBSCRIBE filter that matches another kit's measurement topic; anonymous clients never get
 *     kit topics (UNSUBSCRIBE aside); a username that is not a usable serial owns nothing;
 *   - a shared subscription "$share/<group>/<filter>" allowed to a kit obeys the same rule for its
 *     <filter>; nobody may WRITE a look-alike measurement topic (kit/<s>/measurement/<other>);
 *   - matching: a filter without wildcards matches exactly itself; "#" matches every topic not
 *     starting with '$'. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/access.h"
#include "kitgate/topic.h"

#define CHECK(cond) do{ if(!(cond)){ fprintf(stderr, "fuzz_topic: invariant failed: %s (line %d)\n", \
	#cond, __LINE__); abort(); } }while(0)

static const int accesses[4] = {KG_ACCESS_READ, KG_ACCESS_WRITE, KG_ACCESS_SUBSCRIBE, KG_ACCESS_UNSUBSCRIBE};
static const enum kg_other_topics others[4] = {KG_OTHER_DEFER, KG_OTHER_ALLOW, KG_OTHER_DENY, KG_OTHER_DEFER};

static void check_classify(const char *topic)
{
	const char *serial;
	size_t slen;
	enum kg_topic_class c = kg_topic__classify(topic, &serial, &slen);
	bool kit = !strncmp(topic, "kit/", 4) || !strcmp(topic, "kit");

	CHECK(kit == (c != KG_TOPIC_OTHER));
	if(c == KG_TOPIC_OTHER){
		CHECK(serial == NULL && slen == 0);
		return;
	}
	CHECK(serial == topic + (topic[3] ? 4 : 3));
	CHECK(slen == strcspn(serial, "/"));
	CHECK((c == KG_TOPIC_KIT_INVALID) == (slen == 0));
	if(c == KG_TOPIC_KIT_RAW) CHECK(!strcmp(serial + slen, "/measurement/raw"));
	if(c == KG_TOPIC_KIT_AGGREGATE) CHECK(!strcmp(serial + slen, "/measurement/aggregate"));
	if(slen && !strcmp(serial + slen, "/measurement/raw")) CHECK(c == KG_TOPIC_KIT_RAW);
	CHECK((c == KG_TOPIC_KIT_LOOKALIKE) == (slen > 0 && !strncmp(serial + slen, "/measurement/", 13)
			&& strcmp(serial + slen, "/measurement/raw") && strcmp(serial + slen, "/measurement/aggregate")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *nl, *username, *topic, *other_kit;
	int access;
	bool is_service;
	enum kg_other_topics other;
	enum kg_acl_result res;

	if(size < 1 || size > 4096) return 0;
	access = accesses[data[0] & 3];
	is_service = data[0] & 4;
	other = others[(data[0] >> 3) & 3];
	buf = malloc(size);
	if(!buf) return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	if(strlen(buf) != size - 1){ /* embedded NUL: not a C string the broker could hand us */
		free(buf);
		return 0;
	}
	nl = strchr(buf, '\n');
	if(nl){
		*nl = '\0';
		username = buf[0] ? buf : NULL;
		topic = nl + 1;
	}else{
		username = NULL;
		topic = buf;
	}

	check_classify(topic);
	if(!strpbrk(topic, "+#")) CHECK(kg_topic__matches(topic, topic));
	CHECK(kg_topic__matches("#", topic) == (topic[0] != '$'));

	res = kg_access__decide(username, is_service, access, topic, other);
	CHECK(res == KG_ACL_DEFER || res == KG_ACL_ALLOW || res == KG_ACL_DENY);
	if(access == KG_ACCESS_WRITE && kg_topic__classify(topic, NULL, NULL) == KG_TOPIC_KIT_LOOKALIKE){
		CHECK(res == KG_ACL_DENY);
	}
	if(!is_service && res == KG_ACL_ALLOW && access == KG_ACCESS_SUBSCRIBE && !strncmp(topic, "$share/", 7)){
		const char *slash = strchr(topic + 7, '/');

		CHECK(slash && slash != topic + 7 && slash[1]);
		topic = (char *)slash + 1; /* the filter is what the group receives */
	}
	if(!is_service && res == KG_ACL_ALLOW && access != KG_ACCESS_UNSUBSCRIBE){
		const char *serial;
		size_t slen;
		enum kg_topic_class c = kg_topic__classify(topic, &serial, &slen);

		if(c != KG_TOPIC_OTHER){
			/* only its own kit topics, and only when it can be a serial */
			CHECK(username != NULL && kg_access__username_ok(username));
			CHECK(slen == strlen(username) && !memcmp(serial, username, slen));
		}
		if(access == KG_ACCESS_SUBSCRIBE && username){
			/* a filter a kit may use never matches another kit's measurements */
			other_kit = malloc(strlen(username) + 40);
			if(other_kit){
				sprintf(other_kit, "kit/%sx/measurement/raw", username);
				CHECK(!kg_topic__matches(topic, other_kit));
				sprintf(other_kit, "kit/x%s/measurement/raw", username);
				CHECK(!kg_topic__matches(topic, other_kit));
				free(other_kit);
			}
		}
	}
	free(buf);
	return 0;
}
