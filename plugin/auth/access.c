/* access.c -- the SPEC's access matrix: who may read, write and subscribe what, as pure functions
 * of username and topic (any thread; no allocation). The broker callbacks are in acl.c. */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kitgate/access.h"
#include "kitgate/topic.h"

/* Whether the first level of topic is literally "kit" ("kit", "kit/..."; not "kitx/..."). */
static bool is_kit_level(const char *topic)
{
	return topic[0] == 'k' && topic[1] == 'i' && topic[2] == 't'
		&& (topic[3] == '/' || topic[3] == '\0');
}

/* Whether the first level of a filter is exactly "+" or "#", i.e. it could match kit/ topics. */
static bool is_wild_first_level(const char *topic)
{
	return (topic[0] == '+' || topic[0] == '#') && (topic[1] == '/' || topic[1] == '\0');
}

/* Whether the level starting at level (ended by '/' or NUL) equals username byte for byte.
 * O(strlen(username)); username must be non-NULL and non-empty. */
static bool level_is(const char *level, const char *username)
{
	const char *u = username;

	while(*u && *level == *u){
		level++;
		u++;
	}
	return *u == '\0' && (*level == '/' || *level == '\0');
}

static enum kg_acl_result other_result(enum kg_other_topics other)
{
	switch(other){
		case KG_OTHER_ALLOW: return KG_ACL_ALLOW;
		case KG_OTHER_DENY: return KG_ACL_DENY;
		case KG_OTHER_DEFER: return KG_ACL_DEFER;
	}
	return KG_ACL_DEFER;
}

/* Contract in access.h. The order of the checks:
 *   1. kit/ topics and filters: UNSUBSCRIBE always allowed; service users allowed; a kit may
 *      READ/WRITE/SUBSCRIBE only when the second level is literally its username (so "kit/+/..."
 *      and "kit/#" are denied, "kit/<me>/#" is allowed); anonymous and everything else denied.
 *   2. SUBSCRIBE filters whose first level is "+" or "#": service allowed, kit denied,
 *      anonymous follows `other` (per-message READ checks still deny kit deliveries).
 *   3. Everything else follows `other`.
 * A username that could not be a serial (kg_access__username_ok false) never owns a kit topic, so a
 * username "+" cannot own "kit/+/#". O(strlen(username)) for kit topics; no allocation.
 *
 * Before all that: a SUBSCRIBE/UNSUBSCRIBE of a shared subscription "$share/<group>/<filter>" is
 * judged by its <filter> alone (a kit must not join a group that receives other kits' messages:
 * the READ check would then black-hole the group's share), and a WRITE to a look-alike
 * measurement topic (kit/<serial>/measurement/<not raw or aggregate>) is denied to everyone, and
 * a kit may not WRITE its own kit/<serial>/stats/... (the plugin's statistics). */
enum kg_acl_result kg_access__decide(const char *username, bool is_service, int access,
		const char *topic, enum kg_other_topics other)
{
	if(!topic) return KG_ACL_DENY;

	if((access == KG_ACCESS_SUBSCRIBE || access == KG_ACCESS_UNSUBSCRIBE)
			&& !strncmp(topic, "$share/", 7)){
		const char *slash = strchr(topic + 7, '/');

		/* "$share/<group>/<filter>" with a non-empty group and filter; mosquitto refuses
		 * anything else before asking, but do not rely on it */
		if(!slash || slash == topic + 7 || slash[1] == '\0') return KG_ACL_DENY;
		topic = slash + 1;
	}

	if(is_kit_level(topic)){
		if(access == KG_ACCESS_UNSUBSCRIBE) return KG_ACL_ALLOW;
		if(access == KG_ACCESS_WRITE && kg_topic__classify(topic, NULL, NULL) == KG_TOPIC_KIT_LOOKALIKE){
			return KG_ACL_DENY;
		}
		if(is_service) return KG_ACL_ALLOW;
		if(access != KG_ACCESS_READ && access != KG_ACCESS_WRITE && access != KG_ACCESS_SUBSCRIBE){
			return KG_ACL_DENY;
		}
		if(!kg_access__username_ok(username)) return KG_ACL_DENY;
		if(topic[3] != '/') return KG_ACL_DENY; /* "kit" alone: no serial */
		if(!level_is(topic + 4, username)) return KG_ACL_DENY;
		/* kit/<me>/stats/...: only the plugin publishes a kit's statistics there (its own publishes
		 * do not pass the ACL check); a kit must not forge them */
		if(access == KG_ACCESS_WRITE){
			const char *rest = topic + 4 + strlen(username);

			if(!strncmp(rest, "/stats", 6) && (rest[6] == '/' || rest[6] == '\0')) return KG_ACL_DENY;
		}
		return KG_ACL_ALLOW;
	}

	if(access == KG_ACCESS_SUBSCRIBE && is_wild_first_level(topic)){
		if(is_service) return KG_ACL_ALLOW;
		if(username) return KG_ACL_DENY;
		return other_result(other);
	}

	return other_result(other);
}

/* Contract in access.h. */
bool kg_access__username_ok(const char *username)
{
	if(!username || !username[0]) return false;
	return strpbrk(username, "+#/") == NULL;
}
