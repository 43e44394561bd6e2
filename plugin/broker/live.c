/* live.c -- the live view on the broker thread: rolling statistics and per-kit status published
 * on MQTT, and the snapshot the HTTP endpoint serves. Broker thread only (callbacks and TICK);
 * the HTTP server's threads meet it only through the kg_view.
 *
 * Kit connection state: when a kit goes online or offline is decided by the events module
 * (events.h, fed by acl.c: on 2.0 a login still pending at TICK or at its first publish, on 2.1
 * the CONNECT event; DISCONNECT/CLIENT_OFFLINE of a client that logged in); this file acts on the
 * decisions (kg_live__session_online/_offline). A kit's own publish also marks it online when it
 * has no open session (clients that never went through BASIC_AUTH, e.g. TLS identities). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_api.h"

#include "kitgate/access.h"
#include "kitgate/bridge.h"
#include "kitgate/clock.h"
#include "kitgate/events.h"
#include "kitgate/http.h"
#include "kitgate/kitdir.h"
#include "kitgate/kits.h"
#include "kitgate/snapshot.h"
#include "kitgate/spool.h"
#include "kitgate/stats.h"
#include "kitgate/statusdoc.h"
#include "kitgate/statusmodel.h"
#include "kitgate/topic.h"
#include "kitgate/view.h"
#include "kitgate/handoff.h"
#include "kitgate/worker.h"
#include "kitgate_internal.h"

#define FLUSH_EVERY_MS 250       /* stats scan period */
#define KIT_VISITS_PER_TICK 256  /* changed kits looked at per TICK, whatever the number of kits */
#define SNAPSHOT_EVERY_MS 500    /* HTTP snapshot period (only with http_listen) ... */
#define SNAPSHOT_WANTED_MS 2000  /* ... and only while an HTTP reader asked within this time */
#define KITGATE_VERSION_STRING "0.2.0"

struct stats_route {
	char *filter;
	char *out;                   /* NULL: <topic>/stats */
};

struct kg_live {
	struct kg_stats *stats;
	struct kg_kits *kits;
	struct kg_view *view;        /* NULL without http_listen */
	struct kg_kitdir *dir;       /* the kits and streams HTTP lists; NULL without http_listen */
	struct kg_http *http;
	struct stats_route *routes;
	size_t nroutes;
	struct kg_every flush, snapshot; /* on the monotonic clock */
	int64_t started_ms;              /* wall: shown */
	uint64_t test_accepted;
	uint64_t snapshot_ns, snapshots;   /* broker-thread CPU time spent building snapshots */
	uint64_t tick_kits_max, kit_visits; /* kits visited in one TICK at most; in all */
	struct kg_livepub pub;           /* livepub.c's: the MQTT side of statistics and kit status */
};

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* Whether serial is a kit: with auth postgres, a kit of the current snapshot (none before the
 * first one), so password_file users and unknown serials never get a kit entry; with auth none
 * every username may be one (the access matrix's kit). */
static bool is_kit(const struct kg_plugin *p, const char *serial, size_t slen)
{
	if(!p->auth.loader) return true;
	return p->auth.snap && kg_snapshot__kit(p->auth.snap, serial, slen) != NULL;
}

/* A username that may be a kit: a valid serial, not a service user, a kit (is_kit). */
static bool is_kit_user(struct kg_plugin *p, const char *username)
{
	return username && kg_access__username_ok(username) && strlen(username) <= KG_SERIAL_MAX
		&& !kg_config__is_service(&p->cfg, username) && is_kit(p, username, strlen(username));
}

/* ---- connection state ---------------------------------------------------------------------- */

static void go_online(struct kg_plugin *p, struct kg_kit *kit, const char *client_id, const char *address,
		int protocol_version, int64_t at_ms)
{
	copy_str(kit->address, sizeof(kit->address), address);
	kit->protocol_version = protocol_version;
	kit->connected_at_ms = at_ms;
	kg_kits__session_open(p->live->kits, kit, client_id, at_ms);
}

/* Contract in kitgate_internal.h: the events module's online() decision. */
void kg_live__session_online(struct kg_plugin *p, const struct kg_events_session *s)
{
	struct kg_kit *kit;

	if(!p->live || !is_kit(p, s->serial, strlen(s->serial))) return;
	kit = kg_kits__get(p->live->kits, s->serial, strlen(s->serial));
	if(kit) go_online(p, kit, s->client_id, s->address, s->protocol, s->at_ms);
}

/* Contract in kitgate_internal.h: the events module's offline() decision. */
void kg_live__session_offline(struct kg_plugin *p, const struct kg_events_client *c)
{
	struct kg_kit *kit;

	if(!p->live || !is_kit_user(p, c->username)) return;
	kit = kg_kits__find(p->live->kits, c->username, strlen(c->username));
	if(!kit || kit->connections == 0) return;
	kg_kits__session_close(p->live->kits, kit, c->id, kg_clock__wall_ms());
}

bool kg_live__is_kit_user(struct kg_plugin *p, const char *username)
{
	return p->live && is_kit_user(p, username);
}

struct kg_kit *kg_live__kit(struct kg_plugin *p, const char *serial, size_t slen)
{
	if(!p->live || !is_kit(p, serial, slen)) return NULL; /* only kits are kits */
	return kg_kits__get(p->live->kits, serial, slen);
}

/* ---- the MESSAGE-path hooks ------------------------------------------------------------------ */

/* Whether client is logged in as this kit (a service user publishing for a kit is not the kit). */
static bool is_own(const void *client, const char *serial, size_t slen)
{
	const char *u = mosquitto_client_username((const struct mosquitto *)client);

	return u && strlen(u) == slen && !memcmp(u, serial, slen);
}

void kg_live__measurement(struct kg_plugin *p, const void *client, const char *serial, size_t slen,
		const char *topic, enum kg_reason r, const char *detail, const struct kg_record *rec)
{
	struct kg_live *l = p->live;
	struct kg_kit *kit;
	int64_t now = kg_clock__wall_ms();
	char key[KG_TOPIC_KIT_STATS_MAX];

	if(!l) return;
	/* Only kits are kits: a username the kits snapshot does not know (auth postgres) never gets an
	 * entry; a kit's entry is created by the kit itself or by an accepted measurement (a service
	 * user's, a test measurement); anybody else's rejected publish only counts for a kit that
	 * exists, so rejected junk cannot fill the table (and $SYS) with made-up serials. */
	if(is_kit(p, serial, slen) && (r == KG_OK || (client && is_own(client, serial, slen)))){
		kit = kg_kits__get(l->kits, serial, slen);
	}else{
		kit = kg_kits__find(l->kits, serial, slen);
	}
	if(kit){
		if(client && is_own(client, serial, slen) && kg_events__publish(p->events, client)){
			/* its login was still pending (2.0, before the TICK): online now (kg_live__session_online
			 * opens this kit's session: the login's username is this serial) */
		}else if(client && kit->connections == 0 && is_own(client, serial, slen)){
			go_online(p, kit, mosquitto_client_id((struct mosquitto *)client),
					mosquitto_client_address((struct mosquitto *)client),
					mosquitto_client_protocol_version((struct mosquitto *)client), now);
		}
		kg_kits__touch(l->kits, kit, now);
		if(r == KG_OK) kit->accepted++; else kit->rejected[r]++;
	}
	if(r != KG_OK){
		kg_kits__reject(l->kits, now, r, serial, slen, topic, detail);
		return;
	}
	if(rec->kind != KG_KIND_RAW) return;
	kg_topic__kit_stats(key, serial, slen, rec->peripheral, rec->quantity_type); /* no printf per message */
	/* grouped by "kit/<serial>/": at most stats_max_streams_per_kit streams per kit */
	kg_stats__add_grouped(l->stats, key, 4 + slen + 1, rec->datetime_ms, rec->value, now);
}

void kg_live__other(struct kg_plugin *p, const char *topic, const void *payload, size_t len)
{
	struct kg_live *l = p->live;
	char out[512];
	double v;
	size_t i;

	if(!l) return;
	for(i = 0; i < l->nroutes; i++){
		if(!kg_topic__matches(l->routes[i].filter, topic)) continue;
		if(l->routes[i].out){
			copy_str(out, sizeof(out), l->routes[i].out);
		}else if((size_t)snprintf(out, sizeof(out), "%s/stats", topic) >= sizeof(out)){
			kg_stats__ignored(l->stats);
			return;
		}
		if(kg_stats__parse_value(payload, len, p->cfg.max_payload, p->cfg.stats_field, &v) != 0){
			kg_stats__ignored(l->stats);
			return;
		}
		kg_stats__add(l->stats, out, kg_clock__wall_ms(), v, kg_clock__wall_ms());
		return;
	}
}

/* ---- the status model's live-view numbers, the snapshot for HTTP ------------------------------ */

/* Contract in kitgate_internal.h. */
void kg_live__status(struct kg_plugin *p, struct kg_broker_status *out)
{
	const struct kg_live *l = p->live;
	size_t online = 0;

	if(!l) return;
	out->version = KITGATE_VERSION_STRING;
	out->started_ms = l->started_ms;
	out->kits_known = kg_kits__count(l->kits, &online);
	out->kits_online = online;
	out->kits_evicted = kg_kits__evicted(l->kits);
	out->kits_listed = l->dir ? kg_kitdir__count(l->dir) : 0;
	out->kits_queued = kg_kits__queued(l->kits);
	kg_stats__counters(l->stats, &out->stats);
	out->test_measurements = l->test_accepted;
	out->snapshot_ns = l->snapshot_ns;
	out->snapshots = l->snapshots;
	out->tick_kits_max = l->tick_kits_max;
	out->kit_visits = l->kit_visits;
	out->status_cleared = l->pub.status_cleared;
	if(l->http){
		unsigned long long http[3], sse[2];

		out->http = true;
		kg_http__counts(l->http, http);
		kg_http__sse(l->http, sse);
		for(int i = 0; i < 3; i++) out->http_responses[i] = http[i];
		out->sse_events = sse[0];
		out->sse_event_bytes_max = sse[1];
	}
}

/* The HTTP API's snapshot and the /metrics text, both from the status model (statusdoc.c). */
static void publish_snapshot(struct kg_plugin *p, int64_t now)
{
	struct kg_broker_status st;
	cJSON *root;

	kg_status__gather_broker(p, &st);
	root = kg_statusdoc__api(&st, p->live->kits, now);
	if(root) kg_view__publish(p->live->view, root, kg_statusdoc__metrics(&st), now);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void kg_live__tick(struct kg_plugin *p)
{
	struct kg_live *l = p->live;
	int64_t now, mono;
	size_t n;

	if(!l) return;
	now = kg_clock__wall_ms();   /* for the timestamps shown (samples, the snapshot's "now") */
	mono = kg_clock__mono_ms();  /* every cadence */
	if(l->view) kg_livetest__run(p, l->view, &l->test_accepted); /* test measurements from HTTP */
	if(kg_clock__every(&l->flush, FLUSH_EVERY_MS, mono)){
		kg_stats__drain_evicted(l->stats, kg_livepub__clear_stats, &l->pub);
		kg_stats__flush_at(l->stats, now, mono, 1000, kg_livepub__stats, &l->pub);
	}
	l->pub.now = mono;
	n = kg_kits__visit_due(l->kits, KIT_VISITS_PER_TICK, mono, kg_livepub__visit_kit, &l->pub);
	l->kit_visits += n;
	if(n > l->tick_kits_max) l->tick_kits_max = n;
	if(l->view && mono >= l->snapshot.next_ms && kg_view__wanted(l->view, SNAPSHOT_WANTED_MS)
			&& kg_clock__every(&l->snapshot, SNAPSHOT_EVERY_MS, mono)){
		struct timespec a, b;

		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
		publish_snapshot(p, now);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
		l->snapshot_ns += (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
		l->snapshots++;
	}
}

static void live_free(struct kg_live *l)
{
	size_t i;

	if(!l) return;
	if(l->view) kg_view__stop(l->view);
	if(l->http) kg_http__stop(l->http);
	kg_view__free(l->view);
	kg_kitdir__free(l->dir);
	kg_stats__free(l->stats);
	kg_kits__free(l->kits);
	for(i = 0; i < l->nroutes; i++){
		free(l->routes[i].filter);
		free(l->routes[i].out);
	}
	free(l->routes);
	free(l);
}

int kg_live__init(struct kg_plugin *p)
{
	struct kg_live *l = calloc(1, sizeof(*l));
	char err[300];
	size_t i;

	if(!l) return -1;
	l->started_ms = kg_clock__wall_ms();
	l->stats = kg_stats__new(p->cfg.stats_max_streams, p->cfg.stats_max_samples);
	if(l->stats) kg_stats__set_group_limit(l->stats, p->cfg.stats_max_streams_per_kit);
	l->kits = kg_kits__new(p->cfg.live_max_kits);
	l->routes = p->cfg.nstats_topics ? calloc(p->cfg.nstats_topics, sizeof(*l->routes)) : NULL;
	if(!l->stats || !l->kits || (p->cfg.nstats_topics && !l->routes)) goto oom;
	kg_kits__on_evict(l->kits, kg_livepub__kit_evicted, &l->pub);
	for(i = 0; i < p->cfg.nstats_topics; i++){
		const char *s = p->cfg.stats_topics[i], *eq = strchr(s, '=');

		l->routes[i].filter = strndup(s, eq ? (size_t)(eq - s) : strlen(s));
		l->routes[i].out = eq ? strdup(eq + 1) : NULL;
		l->nroutes++;
		if(!l->routes[i].filter || (eq && !l->routes[i].out)) goto oom;
	}
	if(p->cfg.http_listen){
		l->view = kg_view__new();
		l->dir = kg_kitdir__new(p->cfg.live_max_kits);
		if(!l->view || !l->dir) goto oom;
		l->pub.dir = l->dir;
		l->http = kg_http__start(&p->cfg, &p->ingest.limits, l->view, l->dir, err, sizeof(err));
		if(!l->http){
			kg_log(KG_LOG_ERROR, "http_listen %s: %s; the HTTP endpoint is OFF", p->cfg.http_listen, err);
		}else{
			kg_log(KG_LOG_INFO, "HTTP endpoint on %s (%s)", p->cfg.http_listen,
					p->cfg.http_password_file ? "Basic auth: service users of http_password_file" : "no authentication");
		}
	}
	p->live = l;
	return 0;
oom:
	live_free(l);
	return -1;
}

void kg_live__cleanup(struct kg_plugin *p)
{
	if(!p->live) return;
	live_free(p->live);
	p->live = NULL;
}
