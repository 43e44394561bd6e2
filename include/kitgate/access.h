/* access.h -- the SPEC's access matrix as pure functions of username and topic; any thread. */
#ifndef KITGATE_ACCESS_H
#define KITGATE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

enum kg_acl_result { KG_ACL_DEFER = 0, KG_ACL_ALLOW, KG_ACL_DENY };
enum kg_other_topics { KG_OTHER_DEFER = 0, KG_OTHER_ALLOW, KG_OTHER_DENY };
enum kg_access { KG_ACCESS_READ = 1, KG_ACCESS_WRITE = 2, KG_ACCESS_SUBSCRIBE = 4, KG_ACCESS_UNSUBSCRIBE = 8 };

/* The SPEC's access matrix. username may be NULL (anonymous). is_service: the username is one of
 * service_users. topic is a concrete topic (READ/WRITE) or a filter (SUBSCRIBE/UNSUBSCRIBE).
 * O(length of the first two topic levels); no allocation. */
enum kg_acl_result kg_access__decide(const char *username, bool is_service, int access,
		const char *topic, enum kg_other_topics other);

/* A username may be used as a kit serial: non-empty, no '+', '#', '/' (NUL cannot occur inside a
 * C string; the caller rejects embedded NULs by comparing lengths where it knows them). */
bool kg_access__username_ok(const char *username);

#endif
