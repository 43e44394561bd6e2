/* events.c -- the meaning of the broker's event sequence (events.h): the measurement memo and
 * wills, client-id ownership, kit online/offline, on 2.0's and 2.1's semantics. Pure: fed plain
 * data by plugin/broker/, answers with return values and the sink's callbacks. Broker thread only. */
#include <stdlib.h>
#include <string.h>

#include "kitgate/clientids.h"
#include "kitgate/events.h"

struct pending {
	struct kg_events_session s;
	bool refused;                /* refused login: its DISCONNECT follows; never online */
};

struct kg_events {
	bool v21;
	struct kg_events_sink sink;
	struct kg_clientids *ids;
	/* the validated write waiting for its MESSAGE (identity only; the record is the glue's) */
	bool memo;
	const void *m_token;
	const char *m_topic;
	const void *m_payload;
	size_t m_len;
	/* the client-id owner of the login just seen, until it is known to have succeeded */
	const void *o_token;         /* NULL: none */
	char *o_id, *o_user;
	/* 2.1: the delayed login being completed (between complete_begin and complete_end) */
	const char *completing;
	bool completing_ok;
	/* kit logins not yet online */
	struct pending pending[KG_EVENTS_PENDING_MAX];
	size_t npending;
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if(n >= cap) n = cap - 1;
	if(n) memcpy(dst, src, n);
	dst[n] = '\0';
}

struct kg_events *kg_events__new(bool v21, size_t ids_max, size_t ids_per_user,
		const struct kg_events_sink *sink)
{
	struct kg_events *ev = calloc(1, sizeof(*ev));

	if(!ev) return NULL;
	ev->v21 = v21;
	if(sink) ev->sink = *sink;
	ev->ids = kg_clientids__new(ids_max, ids_per_user);
	if(!ev->ids){
		free(ev);
		return NULL;
	}
	return ev;
}

static void drop_owner(struct kg_events *ev)
{
	free(ev->o_id);
	free(ev->o_user);
	ev->o_id = ev->o_user = NULL;
	ev->o_token = NULL;
}

void kg_events__free(struct kg_events *ev)
{
	if(!ev) return;
	drop_owner(ev);
	kg_clientids__free(ev->ids);
	free(ev);
}

/* ---- pieces ---------------------------------------------------------------------------------- */

/* A validated write that no MESSAGE claimed: a will. */
static void flush_will(struct kg_events *ev)
{
	if(!ev->memo) return;
	ev->memo = false;
	if(ev->sink.will) ev->sink.will(ev->sink.ud);
}

/* 2.0: the pending owner's login succeeded unless the event at hand is its own DISCONNECT (a
 * refused CONNECT is disconnected before any other event): record it, or forget it. */
static void settle_owner(struct kg_events *ev, const void *disconnecting)
{
	if(!ev->o_token) return;
	if(ev->o_token != disconnecting){
		(void)kg_clientids__record(ev->ids, ev->o_id, ev->o_user, ev->o_token); /* out of memory: unprotected */
	}
	drop_owner(ev);
}

/* What every event settles first: a will; on 2.0 the last login's owner. */
static void prologue(struct kg_events *ev)
{
	flush_will(ev);
	if(!ev->v21) settle_owner(ev, NULL);
}

static struct pending *find_pending(struct kg_events *ev, const void *token)
{
	size_t i;

	for(i = 0; i < ev->npending; i++){
		if(ev->pending[i].s.token == token) return &ev->pending[i];
	}
	return NULL;
}

static void remove_pending(struct kg_events *ev, struct pending *pd)
{
	*pd = ev->pending[--ev->npending];
}

static void online(struct kg_events *ev, const struct kg_events_session *s)
{
	if(ev->sink.online) ev->sink.online(ev->sink.ud, s);
}

static void session_of(struct kg_events_session *s, const struct kg_events_client *c, int64_t at_ms)
{
	s->token = c->token;
	copy_str(s->serial, sizeof(s->serial), c->username);
	copy_str(s->client_id, sizeof(s->client_id), c->id);
	copy_str(s->address, sizeof(s->address), c->address);
	s->protocol = c->protocol;
	s->at_ms = at_ms;
}

/* ---- the client id ----------------------------------------------------------------------------- */

static enum kg_events_id decide_id(const struct kg_events *ev, const struct kg_events_client *c)
{
	enum kg_events_id d = KG_EVENTS_ID_ALLOWED;

	if(!c->id) return KG_EVENTS_ID_ALLOWED;
	if(!kg_clientids__may_use(ev->ids, c->id, c->username)){
		/* Service users may use any id and take it over: they are trusted with all of kit/#, and a
		 * kit must not lock a service out of its fixed id by claiming it while the service is away. */
		if(!(c->username && c->service)) return KG_EVENTS_ID_REFUSED;
		d = KG_EVENTS_ID_TAKEOVER;
	}
	if(!c->username) return d; /* anonymous logins own nothing */
	/* Full of other users' ids: refuse rather than evict one (an evicted id could be taken). */
	if(!kg_clientids__has_room(ev->ids, c->id, c->username)) return KG_EVENTS_ID_FULL;
	return d;
}

enum kg_events_id kg_events__basic_auth(struct kg_events *ev, const struct kg_events_client *c,
		int64_t now_ms)
{
	enum kg_events_id d;
	struct pending *pd;

	prologue(ev);
	drop_owner(ev); /* 2.1: a login that never reached CONNECT (another plugin delayed it) */
	d = decide_id(ev, c);
	if((d == KG_EVENTS_ID_ALLOWED || d == KG_EVENTS_ID_TAKEOVER) && c->id && c->username){
		ev->o_id = strdup(c->id);
		ev->o_user = strdup(c->username);
		if(ev->o_id && ev->o_user) ev->o_token = c->token;
		else drop_owner(ev); /* out of memory: this login's id stays unprotected */
	}
	if(c->kit){
		pd = find_pending(ev, c->token);   /* a CONNECT sent again on the same connection */
		if(pd) remove_pending(ev, pd);
		if(ev->npending < KG_EVENTS_PENDING_MAX){
			pd = &ev->pending[ev->npending++];
			session_of(&pd->s, c, now_ms);
			pd->refused = d == KG_EVENTS_ID_REFUSED || d == KG_EVENTS_ID_FULL;
		}
	}
	return d;
}

void kg_events__auth(struct kg_events *ev, const void *token, enum kg_events_auth r)
{
	struct pending *pd = find_pending(ev, token);

	switch(r){
		case KG_EVENTS_AUTH_OK:
			if(!ev->v21 && ev->o_token == token) settle_owner(ev, NULL); /* 2.1: at its CONNECT */
			break;
		case KG_EVENTS_AUTH_DEFERRED:
			break;
		case KG_EVENTS_AUTH_REFUSED:
			if(ev->o_token == token) drop_owner(ev);
			if(pd) pd->refused = true;
			break;
		case KG_EVENTS_AUTH_DELAYED:
			/* Nothing is settled by the next event: the CONNECT a successful completion raises
			 * records the owner and the kit's session. A refused or abandoned delayed login
			 * raises no event at all (2.1 closes such a client without DISCONNECT). */
			if(ev->o_token == token) drop_owner(ev);
			if(pd) remove_pending(ev, pd);
			break;
	}
}

void kg_events__complete_begin(struct kg_events *ev, const char *client_id, bool ok)
{
	ev->completing = client_id;
	ev->completing_ok = ok;
}

void kg_events__complete_end(struct kg_events *ev)
{
	ev->completing = NULL;
}

static bool is_completing(const struct kg_events *ev, const char *id, bool ok)
{
	return ev->completing && ev->completing_ok == ok && id && strcmp(id, ev->completing) == 0;
}

/* ---- connection state ------------------------------------------------------------------------ */

void kg_events__connect(struct kg_events *ev, const struct kg_events_client *c, int64_t now_ms)
{
	struct kg_events_session s;
	struct pending *pd;

	if(!ev->v21) return;
	flush_will(ev);
	if(ev->o_token && ev->o_token == c->token){
		(void)kg_clientids__record(ev->ids, ev->o_id, ev->o_user, c->token); /* out of memory: unprotected */
		drop_owner(ev);
	}else if(c->username && is_completing(ev, c->id, true)){
		(void)kg_clientids__record(ev->ids, c->id, c->username, c->token);
	}
	pd = find_pending(ev, c->token);   /* its BASIC_AUTH's data (kits only) */
	if(pd){
		s = pd->s;
		remove_pending(ev, pd);
		online(ev, &s);
		return;
	}
	if(!c->kit) return;
	session_of(&s, c, now_ms);
	online(ev, &s);
}

void kg_events__disconnect(struct kg_events *ev, const struct kg_events_client *c)
{
	struct pending *pd;

	flush_will(ev);
	if(!ev->v21) settle_owner(ev, c->token);
	else if(ev->o_token == c->token) drop_owner(ev);
	if(c->id) kg_clientids__disconnected(ev->ids, c->id, c->token, c->clean);
	pd = find_pending(ev, c->token);
	if(pd){
		remove_pending(ev, pd);      /* refused, or gone before it was online */
		return;
	}
	if(is_completing(ev, c->id, false)) return; /* 2.1: the delayed login being refused */
	if(c->kit && ev->sink.offline) ev->sink.offline(ev->sink.ud, c);
}

void kg_events__tick(struct kg_events *ev)
{
	size_t i, n;

	prologue(ev);
	if(ev->v21){
		drop_owner(ev);
		ev->npending = 0;
		return;
	}
	/* 2.0: online() may not feed events back; copy the count first all the same */
	n = ev->npending;
	ev->npending = 0;
	for(i = 0; i < n; i++){
		if(!ev->pending[i].refused) online(ev, &ev->pending[i].s);
	}
}

bool kg_events__publish(struct kg_events *ev, const void *token)
{
	struct kg_events_session s;
	struct pending *pd = token ? find_pending(ev, token) : NULL;

	if(!pd || pd->refused) return false;
	s = pd->s;
	remove_pending(ev, pd);
	online(ev, &s);
	return true;
}

/* ---- measurements and wills ------------------------------------------------------------------ */

void kg_events__other(struct kg_events *ev)
{
	prologue(ev);
}

void kg_events__write(struct kg_events *ev, const void *token, const char *topic, const void *payload,
		size_t len)
{
	flush_will(ev);
	ev->memo = true;
	ev->m_token = token;
	ev->m_topic = topic;
	ev->m_payload = payload;
	ev->m_len = len;
}

enum kg_events_msg kg_events__message(struct kg_events *ev, const void *token, const char *topic,
		const void *payload, size_t len)
{
	if(ev->memo && ev->m_token == token && ev->m_topic == topic && ev->m_payload == payload
			&& ev->m_len == len){
		ev->memo = false;
		if(!ev->v21) settle_owner(ev, NULL);
		return KG_EVENTS_MSG_MEMO;
	}
	prologue(ev);
	return KG_EVENTS_MSG_CHECK;
}

bool kg_events__write_pending(const struct kg_events *ev)
{
	return ev->memo;
}

const struct kg_clientids *kg_events__clientids(const struct kg_events *ev)
{
	return ev->ids;
}

size_t kg_events__pending(const struct kg_events *ev)
{
	return ev->npending;
}
