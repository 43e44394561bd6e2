/* acl.c -- MOSQ_EVT_ACL_CHECK and MOSQ_EVT_BASIC_AUTH: kits own kit/<serial>/#, service users own
 * kit/#, everything else about kit topics is denied; other topics follow other_topics.
 * Broker thread only. The decision itself is the pure kg_access__decide (access.c). */
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/access.h"
#include "kitgate_internal.h"

/* READ runs once per matching subscriber for every delivered message: no allocation, no logging,
 * O(length of the first two topic levels + number of service users). */
int kg_acl__on_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct kg_plugin *p = userdata;
	const char *username;
	bool is_service;

	(void)event;
	username = mosquitto_client_username(ed->client);
	if(username && !kg_access__username_ok(username)){
		username = NULL; /* never a kit; only reachable when BASIC_AUTH was bypassed (TLS identity) */
	}
	is_service = username && kg_config__is_service(&p->cfg, username);
	switch(kg_access__decide(username, is_service, ed->access, ed->topic, p->cfg.other_topics)){
		case KG_ACL_ALLOW: return MOSQ_ERR_SUCCESS;
		case KG_ACL_DENY: return MOSQ_ERR_ACL_DENIED; /* never another code: that disconnects */
		default: return MOSQ_ERR_PLUGIN_DEFER;
	}
}

/* Refuse usernames that could not be a serial ('+', '#', '/'): mosquitto 2.0.11 does not do it
 * for v5 plugins. With auth postgres, kits are decided by auth.c; everything else is deferred to
 * password_file or other plugins. */
int kg_acl__on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	uint64_t suppressed;
	struct kg_plugin *p = userdata;

	(void)event;
	if(ed->username && !kg_access__username_ok(ed->username)){
		if(kg_ratelimit__allow(&p->auth_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: refused CONNECT from %s: username \"%s\" "
					"contains '+', '#' or '/' (+%llu more suppressed)",
					mosquitto_client_address(ed->client), ed->username, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	return kg_auth__basic_auth(p, ed); /* auth postgres: kits against the snapshot; DEFER otherwise */
}
