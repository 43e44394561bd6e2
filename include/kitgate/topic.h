/* topic.h -- kit topic rules and the access decision, as pure functions of username and topic. */
#ifndef KITGATE_TOPIC_H
#define KITGATE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

enum kg_topic_class {
	KG_TOPIC_OTHER = 0,    /* not under kit/ */
	KG_TOPIC_KIT,          /* kit/<serial>/... (any other kit topic) */
	KG_TOPIC_KIT_RAW,      /* kit/<serial>/measurement/raw */
	KG_TOPIC_KIT_AGGREGATE,/* kit/<serial>/measurement/aggregate */
	KG_TOPIC_KIT_INVALID,  /* "kit" or "kit/" or "kit//..." : under kit/ but no serial */
};

/* Classify a concrete topic; for KIT* classes sets *serial and *serial_len to the serial level. */
enum kg_topic_class kg_topic__classify(const char *topic, const char **serial, size_t *serial_len);

enum kg_acl_result { KG_ACL_DEFER = 0, KG_ACL_ALLOW, KG_ACL_DENY };
enum kg_other_topics { KG_OTHER_DEFER = 0, KG_OTHER_ALLOW, KG_OTHER_DENY };
enum kg_access { KG_ACCESS_READ = 1, KG_ACCESS_WRITE = 2, KG_ACCESS_SUBSCRIBE = 4, KG_ACCESS_UNSUBSCRIBE = 8 };

/* The SPEC's access matrix. username may be NULL (anonymous). is_service: the username is one of
 * service_users. topic is a concrete topic (READ/WRITE) or a filter (SUBSCRIBE/UNSUBSCRIBE).
 * O(length of the first two topic levels); no allocation. */
enum kg_acl_result kg_acl__decide(const char *username, bool is_service, int access,
		const char *topic, enum kg_other_topics other);

/* A username may be used as a kit serial: non-empty, no '+', '#', '/' (NUL cannot occur inside a
 * C string; the caller rejects embedded NULs by comparing lengths where it knows them). */
bool kg_username__ok(const char *username);

#endif
