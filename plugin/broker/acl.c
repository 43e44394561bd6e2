/* acl.c -- MOSQ_EVT_ACL_CHECK, MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_DISCONNECT: kits own
 * kit/<serial>/#, service users own kit/#, everything else about kit topics is denied; other topics
 * follow other_topics. Measurement writes (publishes and wills) are validated in the WRITE check
 * (message.c). Client ids are owned by the username that first logged in with them (clientids.h),
 * so nobody can disconnect a kit or take over its session by presenting its client id.
 * Broker thread only. The decision itself is the pure kg_access__decide (access.c). */
#include <stdlib.h>
#include <string.h>

#include "broker_api.h"

#include "kitgate/access.h"
#include "kitgate/clientids.h"
#include "kitgate_internal.h"

#define CLIENTIDS_MAX 262144    /* ~130 bytes each (with the id), ~6 MiB of buckets, touched when used */
#define CLIENTIDS_PER_USER 16   /* ids one username keeps protected; a 17th forgets its own oldest offline one */

static void drop_pending(struct kg_idguard *g)
{
	free(g->id);
	free(g->user);
	g->id = g->user = NULL;
	g->client = NULL;
}

/* The pending owner's login succeeded unless the event at hand is its own DISCONNECT (a refused
 * CONNECT is disconnected before any other event): record it, or drop it. */
static void settle_pending(struct kg_plugin *p, const void *disconnecting)
{
	struct kg_idguard *g = &p->idguard;

	if(g->client != disconnecting){
		(void)kg_clientids__record(g->ids, g->id, g->user, g->client); /* out of memory: unprotected */
	}
	drop_pending(g);
}

int kg_acl__init(struct kg_plugin *p)
{
	p->idguard.ids = kg_clientids__new(CLIENTIDS_MAX, CLIENTIDS_PER_USER);
	return p->idguard.ids ? 0 : -1;
}

void kg_acl__cleanup(struct kg_plugin *p)
{
	kg_message__flush(p);
	drop_pending(&p->idguard);
	kg_clientids__free(p->idguard.ids);
	p->idguard.ids = NULL;
}

void kg_acl__tick(struct kg_plugin *p)
{
	kg_message__flush(p);
	if(p->idguard.client) settle_pending(p, NULL);
}

/* A clean session ends with its connection (MQTT v3.1.1 clean session): its id is forgotten. An
 * MQTT v5 session may outlive a clean start (session expiry), so v5 ids stay owned until their
 * owner's newer ids push them out (CLIENTIDS_PER_USER). */
int kg_acl__on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct kg_plugin *p = userdata;
	bool clean;

	(void)event;
	kg_message__flush(p);
	if(p->idguard.client) settle_pending(p, ed->client);
	clean = mosquitto_client_clean_session(ed->client) && mosquitto_client_protocol_version(ed->client) != 5;
	kg_clientids__disconnected(p->idguard.ids, mosquitto_client_id(ed->client), ed->client, clean);
	return MOSQ_ERR_SUCCESS;
}

/* Refuse a client id owned by another username; otherwise remember this login as the id's owner,
 * pending until the login is known to have succeeded. Service users may use any id and take it
 * over: they are trusted with all of kit/#, and a kit must not be able to lock a service out of its
 * fixed id (AstroPlant's ingest connects as "astroplant-mqtt-ingest") by claiming it while the
 * service is away. MOSQ_ERR_SUCCESS or MOSQ_ERR_AUTH. */
static int check_clientid(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed)
{
	struct kg_idguard *g = &p->idguard;
	const char *id = mosquitto_client_id(ed->client);
	uint64_t suppressed;

	if(!id || !g->ids) return MOSQ_ERR_SUCCESS;
	if(!kg_clientids__may_use(g->ids, id, ed->username)
			&& !(ed->username && kg_config__is_service(&p->cfg, ed->username))){
		p->counters.clientid_refused++;
		if(kg_ratelimit__allow(&g->log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: refused CONNECT of %s from %s: client id "
					"\"%s\" belongs to another user (+%llu more suppressed)", ed->username ? ed->username
					: "(anonymous)", mosquitto_client_address(ed->client), id, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	if(!ed->username) return MOSQ_ERR_SUCCESS; /* anonymous logins own nothing */
	if(!kg_clientids__has_room(g->ids, id, ed->username)){
		/* Full of other users' ids: refuse rather than evict one (an evicted id could be taken). */
		p->counters.clientid_refused++;
		if(kg_ratelimit__allow(&g->log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: refused CONNECT of %s from %s: the client-id "
					"table is full (%d ids) (+%llu more suppressed)", ed->username,
					mosquitto_client_address(ed->client), CLIENTIDS_MAX, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	g->id = strdup(id);
	g->user = strdup(ed->username);
	if(!g->id || !g->user){
		drop_pending(g);
		return MOSQ_ERR_SUCCESS;
	}
	g->client = ed->client;
	return MOSQ_ERR_SUCCESS;
}

/* READ runs once per matching subscriber for every delivered message: no allocation, no logging,
 * O(length of the first two topic levels + number of service users). */
int kg_acl__on_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct kg_plugin *p = userdata;
	const char *username;
	bool is_service;

	(void)event;
	if(p->memo.n) kg_message__flush(p);      /* no MESSAGE followed the last write: a will */
	if(p->idguard.client) settle_pending(p, NULL);
	username = mosquitto_client_username(ed->client);
	if(username && !kg_access__username_ok(username)){
		username = NULL; /* never a kit; only reachable when BASIC_AUTH was bypassed (TLS identity) */
	}
	is_service = username && kg_config__is_service(&p->cfg, username);
	switch(kg_access__decide(username, is_service, ed->access, ed->topic, p->cfg.other_topics)){
		case KG_ACL_ALLOW:
			if(ed->access == MOSQ_ACL_WRITE) return kg_message__on_write(p, ed);
			return MOSQ_ERR_SUCCESS;
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
	int rc;

	(void)event;
	kg_message__flush(p);
	if(p->idguard.client) settle_pending(p, NULL);
	if(ed->username && !kg_access__username_ok(ed->username)){
		if(kg_ratelimit__allow(&p->auth_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: refused CONNECT from %s: username \"%s\" "
					"contains '+', '#' or '/' (+%llu more suppressed)",
					mosquitto_client_address(ed->client), ed->username, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	/* Before deferring: with password_file, mosquitto decides after us. */
	if(check_clientid(p, ed) != MOSQ_ERR_SUCCESS) return MOSQ_ERR_AUTH;
	rc = kg_auth__basic_auth(p, ed); /* auth postgres: kits against the snapshot; DEFER otherwise */
	if(rc == MOSQ_ERR_SUCCESS && p->idguard.client) settle_pending(p, NULL);
	else if(rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_PLUGIN_DEFER) drop_pending(&p->idguard);
	/* Delayed (2.1): nothing is settled by the next event; the CONNECT that a successful completion
	 * raises records the owner and the kit's session (kg_acl__on_connect). A refused or abandoned
	 * delayed login raises no event at all (2.1 closes such a client without DISCONNECT). */
	if(rc == KG_MOSQ_ERR_AUTH_DELAYED) kg_live__delayed(p, ed->client);
	return rc;
}

int kg_acl__on_connect(int event, void *event_data, void *userdata)
{
	kg_evt_connect *ed = event_data;
	struct kg_plugin *p = userdata;
	const char *completing = kg_auth__completing(p), *id, *user;

	(void)event;
	if(!completing) return MOSQ_ERR_SUCCESS;    /* not one of our delayed logins: settled as on 2.0 */
	id = mosquitto_client_id(ed->client);
	user = mosquitto_client_username(ed->client);
	if(!id || !user || strcmp(id, completing) != 0) return MOSQ_ERR_SUCCESS;
	(void)kg_clientids__record(p->idguard.ids, id, user, ed->client); /* out of memory: unprotected */
	kg_live__online(p, ed->client);
	return MOSQ_ERR_SUCCESS;
}
