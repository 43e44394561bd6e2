/* acl.c -- MOSQ_EVT_ACL_CHECK, MOSQ_EVT_BASIC_AUTH, MOSQ_EVT_DISCONNECT (and on 2.1
 * MOSQ_EVT_CONNECT, MOSQ_EVT_CLIENT_OFFLINE): kits own kit/<serial>/#, service users own kit/#,
 * everything else about kit topics is denied; other topics follow other_topics (the pure
 * kg_access__decide, access.c). Measurement writes (publishes and wills) are validated in the WRITE
 * check (message.c). Client ids are owned by the username that first logged in with them, so nobody
 * can disconnect a kit or take over its session by presenting its client id. What the event
 * sequence means (a will, a client id's owner, a kit online or offline) is decided by the pure
 * events module (events.h): this file feeds it each event as plain data and acts on its decisions
 * (message.c pushes wills, live.c opens and closes kit sessions). Broker thread only. */
#include <string.h>

#include "broker_api.h"

#include "kitgate/access.h"
#include "kitgate/clock.h"
#include "kitgate/events.h"
#include "kitgate_internal.h"

#define CLIENTIDS_MAX 262144    /* ~130 bytes each (with the id), ~6 MiB of buckets, touched when used */
#define CLIENTIDS_PER_USER 16   /* ids one username keeps protected; a 17th forgets its own oldest offline one */

/* The events module's decisions (events.h), acted on here. */
static void on_will(void *ud)
{
	kg_message__will(ud);
}

static void on_online(void *ud, const struct kg_events_session *s)
{
	kg_live__session_online(ud, s);
}

static void on_offline(void *ud, const struct kg_events_client *c)
{
	kg_live__session_offline(ud, c);
}

int kg_acl__init(struct kg_plugin *p)
{
	struct kg_events_sink sink = { on_will, on_online, on_offline, p };

	p->events = kg_events__new(p->broker.api21, CLIENTIDS_MAX, CLIENTIDS_PER_USER, &sink);
	return p->events ? 0 : -1;
}

void kg_acl__cleanup(struct kg_plugin *p)
{
	if(!p->events) return;
	kg_events__other(p->events);   /* a will still pending goes into its stream */
	kg_events__free(p->events);
	p->events = NULL;
}

void kg_acl__tick(struct kg_plugin *p)
{
	kg_events__tick(p->events);
}

/* The event's client as plain data for the events module. username: the event's (BASIC_AUTH's
 * comes with the event; later events read the client's). */
static void client_of(struct kg_plugin *p, const struct mosquitto *client, const char *username,
		struct kg_events_client *c)
{
	c->token = client;
	c->id = mosquitto_client_id(client);
	c->username = username;
	c->address = mosquitto_client_address(client);
	c->protocol = mosquitto_client_protocol_version(client);
	c->kit = kg_live__is_kit_user(p, username);
	c->service = username && kg_config__is_service(&p->cfg, username);
	c->clean = false;
}

/* DISCONNECT, and CLIENT_OFFLINE on 2.1 (a persistent session going offline). A clean session ends
 * with its connection (MQTT v3.1.1 clean session): its id is forgotten. An MQTT v5 session may
 * outlive a clean start (session expiry), so v5 ids stay owned until their owner's newer ids push
 * them out (CLIENTIDS_PER_USER). */
int kg_acl__on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	struct kg_plugin *p = userdata;
	struct kg_events_client c;

	(void)event;
	client_of(p, ed->client, mosquitto_client_username(ed->client), &c);
	c.clean = mosquitto_client_clean_session(ed->client) && c.protocol != 5;
	kg_events__disconnect(p->events, &c);
	return MOSQ_ERR_SUCCESS;
}

/* The client-id decision, counted and logged: MOSQ_ERR_SUCCESS or MOSQ_ERR_AUTH. */
static int check_clientid(struct kg_plugin *p, const struct kg_events_client *c)
{
	uint64_t suppressed;

	switch(kg_events__basic_auth(p->events, c, kg_clock__wall_ms())){
		case KG_EVENTS_ID_ALLOWED:
		case KG_EVENTS_ID_TAKEOVER:
			return MOSQ_ERR_SUCCESS;
		case KG_EVENTS_ID_REFUSED:
			p->counters.clientid_refused++;
			if(kg_ratelimit__allow(&p->clientid_log, &suppressed)){
				mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: refused CONNECT of %s from %s: client id "
						"\"%s\" belongs to another user (+%llu more suppressed)", c->username ? c->username
						: "(anonymous)", c->address, c->id, (unsigned long long)suppressed);
			}
			return MOSQ_ERR_AUTH;
		case KG_EVENTS_ID_FULL:
			p->counters.clientid_refused++;
			if(kg_ratelimit__allow(&p->clientid_log, &suppressed)){
				mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: refused CONNECT of %s from %s: the client-id "
						"table is full (%d ids) (+%llu more suppressed)", c->username,
						c->address, CLIENTIDS_MAX, (unsigned long long)suppressed);
			}
			return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_AUTH;
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
	kg_events__other(p->events); /* a write still pending had no MESSAGE: a will */
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
 * for v5 plugins. Client ids are checked by the events module (refused: owned by another username).
 * With auth postgres, kits are decided by auth.c; everything else is deferred to password_file or
 * other plugins. */
int kg_acl__on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	uint64_t suppressed;
	struct kg_plugin *p = userdata;
	struct kg_events_client c;
	int rc;

	(void)event;
	if(ed->username && !kg_access__username_ok(ed->username)){
		kg_events__other(p->events);
		if(kg_ratelimit__allow(&p->auth_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: refused CONNECT from %s: username \"%s\" "
					"contains '+', '#' or '/' (+%llu more suppressed)",
					mosquitto_client_address(ed->client), ed->username, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	client_of(p, ed->client, ed->username, &c);
	/* Before deferring: with password_file, mosquitto decides after us. */
	if(check_clientid(p, &c) != MOSQ_ERR_SUCCESS){
		kg_events__auth(p->events, ed->client, KG_EVENTS_AUTH_REFUSED);
		return MOSQ_ERR_AUTH;
	}
	rc = kg_auth__basic_auth(p, ed); /* auth postgres: kits against the snapshot; DEFER otherwise */
	kg_events__auth(p->events, ed->client, rc == MOSQ_ERR_SUCCESS ? KG_EVENTS_AUTH_OK
			: rc == MOSQ_ERR_PLUGIN_DEFER ? KG_EVENTS_AUTH_DEFERRED
			: rc == KG_MOSQ_ERR_AUTH_DELAYED ? KG_EVENTS_AUTH_DELAYED : KG_EVENTS_AUTH_REFUSED);
	return rc;
}

/* MOSQ_EVT_CONNECT (2.1): a login succeeded (a delayed one inside mosquitto_complete_basic_auth). */
int kg_acl__on_connect(int event, void *event_data, void *userdata)
{
	kg_evt_connect *ed = event_data;
	struct kg_plugin *p = userdata;
	struct kg_events_client c;

	(void)event;
	client_of(p, ed->client, mosquitto_client_username(ed->client), &c);
	kg_events__connect(p->events, &c, kg_clock__wall_ms());
	return MOSQ_ERR_SUCCESS;
}
