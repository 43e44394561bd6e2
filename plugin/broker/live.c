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
#include "kitgate/statusmodel.h"
#include "kitgate/topic.h"
#include "kitgate/view.h"
#include "kitgate/handoff.h"
#include "kitgate/worker.h"
#include "kitgate_internal.h"

#define FLUSH_EVERY_MS 250       /* stats scan period */
#define KIT_VISITS_PER_TICK 256  /* changed kits looked at per TICK, whatever the number of kits */
#define KIT_VIEW_EVERY_MS 1000   /* a kit's HTTP view entry: rewritten at most once a second */
#define SNAPSHOT_EVERY_MS 500    /* HTTP snapshot period (only with http_listen) ... */
#define SNAPSHOT_WANTED_MS 2000  /* ... and only while an HTTP reader asked within this time */
#define STATUS_TOPIC_PREFIX "$SYS/broker/kitgate/kits/"
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
	uint64_t tick_kits_max, kit_visits, status_cleared; /* kits visited in one TICK at most; in all */
};

/* Wall time: for the timestamps shown (connected at, last seen, rejections, generic stats
 * samples); every cadence below runs on kg_clock__mono_ms(). */
static int64_t now_ms(void)
{
	return kg_clock__wall_ms();
}

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
	kg_kits__session_close(p->live->kits, kit, c->id, now_ms());
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
	int64_t now = now_ms();
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
		kg_stats__add(l->stats, out, now_ms(), v, now_ms());
		return;
	}
}

/* ---- publishing on MQTT ------------------------------------------------------------------- */

static void publish_stats(const struct kg_stats_view *v, void *arg)
{
	struct kg_live *l = arg;
	char buf[512];
	size_t n = kg_stats__format_json(v, buf, sizeof(buf));

	if(n >= sizeof(buf)) return;
	mosquitto_broker_publish_copy(NULL, v->key, (int)n, buf, 0, true, NULL);
	if(l->dir) kg_kitdir__put_stream(l->dir, v->key, buf, n);
}

/* An evicted stream: clear its retained statistics (an empty retained message). */
static void clear_stats(const char *key, void *arg)
{
	struct kg_live *l = arg;

	mosquitto_broker_publish_copy(NULL, key, 0, NULL, 0, true, NULL);
	if(l->dir) kg_kitdir__remove_stream(l->dir, key);
}

/* An evicted kit: clear its retained status (an empty retained message) and its HTTP entry. */
static void kit_evicted(struct kg_kit *kit, void *arg)
{
	struct kg_live *l = arg;
	char topic[sizeof(STATUS_TOPIC_PREFIX) + KG_SERIAL_MAX];

	if(kit->published_at_ms){
		snprintf(topic, sizeof(topic), STATUS_TOPIC_PREFIX "%s", kit->serial);
		mosquitto_broker_publish_copy(NULL, topic, 0, NULL, 0, true, NULL);
		l->status_cleared++;
	}
	if(l->dir) kg_kitdir__remove_kit(l->dir, kit->serial);
}

struct kit_pub {
	struct kg_live *l;
	int64_t now;    /* kg_clock__mono_ms(): the view and status cadences */
};

/* One changed kit: its HTTP entry (at most once a second) and its retained status (urgent changes
 * once a second, counters every ten). Returns whether it must be visited again (not due yet). */
static bool visit_kit(struct kg_kit *kit, void *arg)
{
	struct kit_pub *kp = arg;
	char topic[sizeof(STATUS_TOPIC_PREFIX) + KG_SERIAL_MAX];
	char buf[2048];
	size_t n = 0;
	bool again = false;

	if(kp->l->dir && kit->view_dirty){
		if(kp->now - kit->viewed_at_ms >= KIT_VIEW_EVERY_MS){
			const char *cids[KG_KITS_SESSIONS + 1];
			size_t ncids = 0;
			int i;

			n = kg_kits__format_json(kit, buf, sizeof(buf));
			cids[ncids++] = kit->client_id;
			for(i = 0; i < kit->nsessions; i++) cids[ncids++] = kit->sessions[i];
			if(n < sizeof(buf)) kg_kitdir__put_kit(kp->l->dir, kit->serial, buf, n, cids, ncids);
			kit->view_dirty = false;
			kit->viewed_at_ms = kp->now;
		}else{
			again = true;
		}
	}
	if(kit->dirty){
		if(kg_kits__status_due(kit, kp->now)){
			if(n == 0) n = kg_kits__format_json(kit, buf, sizeof(buf));
			if(n < sizeof(buf)){
				snprintf(topic, sizeof(topic), STATUS_TOPIC_PREFIX "%s", kit->serial);
				mosquitto_broker_publish_copy(NULL, topic, (int)n, buf, 0, true, NULL);
			}
			kit->dirty = kit->urgent = false;
			kit->published_at_ms = kp->now;
		}else{
			again = true;
		}
	}
	return again;
}

/* ---- test measurements from HTTP ------------------------------------------------------------ */

static void run_test_requests(struct kg_plugin *p)
{
	const struct kg_stream *ms = &p->streams[KG_STREAM_MEASUREMENTS];
	struct kg_live *l = p->live;
	struct kg_test_req *req = kg_view__take_requests(l->view), *next;
	uint8_t buf[KG_RECORD_MAX_FIXED];
	size_t n;

	for(; req; req = next){
		enum kg_reason r = KG_OK;

		next = req->next;
		/* the rest of the broker's checks: the kits snapshot (auth postgres) */
		if(p->auth.snap){
			const char *detail = NULL;
			r = kg_message__check(p, req->rec.serial, strlen(req->rec.serial), &req->rec, &detail);
		}
		if(r != KG_OK){
			req->reason = r;
			kg_view__complete(l->view, req, 422, "kits snapshot");
			continue;
		}
		n = kg_record__encode(&req->rec, buf, sizeof(buf));
		if(n == 0 || n > sizeof(buf) || (ms->h && kg_handoff__push(ms->h, buf, (uint32_t)n) != 0)){
			p->counters.rejected[KG_OVERLOAD]++;
			kg_live__measurement(p, NULL, req->rec.serial, strlen(req->rec.serial), req->topic,
					KG_OVERLOAD, "test measurement: queue full and spool unavailable", &req->rec);
			req->reason = KG_OVERLOAD;
			kg_view__complete(l->view, req, 503, "queue full and spool unavailable");
			continue;
		}
		p->counters.accepted++;
		l->test_accepted++;
		kg_live__measurement(p, NULL, req->rec.serial, strlen(req->rec.serial), req->topic, KG_OK, NULL, &req->rec);
		mosquitto_broker_publish_copy(NULL, req->topic, (int)req->len, req->payload, 1, false, NULL);
		kg_view__complete(l->view, req, 202, ms->h ? "accepted: handed to the sink and published"
				: "accepted: published (sink none)");
	}
}

/* ---- the snapshot for HTTP ------------------------------------------------------------------ */

struct snap_ctx {
	cJSON *rej;
};

static void snap_rejection(const struct kg_rejection *r, void *arg)
{
	struct snap_ctx *c = arg;
	cJSON *o = cJSON_CreateObject();

	if(!o) return;
	cJSON_AddNumberToObject(o, "at", (double)r->at_ms);
	cJSON_AddStringToObject(o, "reason", kg_reason__name(r->reason));
	cJSON_AddStringToObject(o, "serial", r->serial);
	cJSON_AddStringToObject(o, "topic", r->topic);
	cJSON_AddStringToObject(o, "detail", r->detail);
	cJSON_AddItemToArray(c->rej, o);
}

/* A growing text buffer for the metrics; on out of memory the text is dropped. */
struct text {
	char *s;
	size_t len, cap;
	bool failed;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if(t->failed) return;
	for(;;){
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if(n < 0){
			t->failed = true;
			return;
		}
		if(t->s && t->len + (size_t)n < t->cap){
			t->len += (size_t)n;
			return;
		}
		size_t ncap = t->cap ? t->cap * 2 : 8192;
		while(ncap < t->len + (size_t)n + 1) ncap *= 2;
		char *ns = realloc(t->s, ncap);
		if(!ns){
			t->failed = true;
			return;
		}
		t->s = ns;
		t->cap = ncap;
	}
}

static void metric(struct text *t, const char *name, const char *type, const char *help, double v)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void put_text(void *arg, const char *text)
{
	put(arg, "%s", text);
}

/* The /metrics text: the broker thread's counters here, each stream's from the status model
 * (statusmodel.c: the measurement stream as kitgate_*, the bridge stream as kitgate_bridge_*). */
static char *build_metrics(struct kg_plugin *p, const struct kg_stream_status *ms, const struct kg_stream_status *bs,
		size_t nkits, size_t online, const struct kg_stats_counters *sc)
{
	struct kg_counters *c = &p->counters;
	struct text t = {0};
	unsigned long long http[3] = {0, 0, 0};
	int r;

	metric(&t, "kitgate_measurements_accepted_total", "counter", "Measurements accepted by validation.", (double)c->accepted);
	put(&t, "# HELP kitgate_measurements_rejected_total Measurements rejected inside the broker, by reason.\n"
			"# TYPE kitgate_measurements_rejected_total counter\n");
	for(r = 1; r < KG_REASON_COUNT; r++){
		put(&t, "kitgate_measurements_rejected_total{reason=\"%s\"} %llu\n", kg_reason__name(r),
				(unsigned long long)c->rejected[r]);
	}
	metric(&t, "kitgate_bridge_forwarded_total", "counter", "Messages handed to the Kafka bridge.", (double)c->bridge_forwarded);
	metric(&t, "kitgate_bridge_undecodable_total", "counter", "Sparkplug B payloads on bridge routes that did not decode (forwarded unchanged).",
			(double)kg_bridge__undecodable());
	kg_statusmodel__metrics(ms, "kitgate_", put_text, &t);
	kg_statusmodel__metrics(bs, "kitgate_bridge_", put_text, &t);
	metric(&t, "kitgate_kits_known", "gauge", "Kits the live view tracks.", (double)nkits);
	metric(&t, "kitgate_kits_online", "gauge", "Kits with an open session.", (double)online);
	metric(&t, "kitgate_stats_streams", "gauge", "Streams with rolling statistics.", (double)sc->streams);
	metric(&t, "kitgate_stats_samples", "gauge", "Samples held for rolling statistics.", (double)sc->samples);
	metric(&t, "kitgate_stats_evicted_total", "counter", "Streams evicted at stats_max_streams.", (double)sc->evicted);
	metric(&t, "kitgate_stats_kit_evicted_total", "counter", "Streams evicted at stats_max_streams_per_kit.", (double)sc->group_evicted);
	metric(&t, "kitgate_stats_samples_dropped_total", "counter", "Samples dropped at stats_max_samples.", (double)sc->samples_dropped);
	metric(&t, "kitgate_stats_clear_dropped_total", "counter", "Evicted streams whose retained statistics were not cleared (clear queue full).",
			(double)sc->clear_dropped);
	metric(&t, "kitgate_stats_ignored_total", "counter", "Non-numeric payloads on stats topics.", (double)sc->ignored);
	metric(&t, "kitgate_stats_published_total", "counter", "Statistics messages published.", (double)sc->published);
	metric(&t, "kitgate_broker_thread_seconds_per_message", "gauge", "Mean broker-thread time per message in the MESSAGE callback.",
			c->broker_msgs ? (double)c->broker_ns / (double)c->broker_msgs / 1e9 : 0);
	metric(&t, "kitgate_http_snapshot_seconds_total", "counter", "Broker-thread CPU time spent building HTTP snapshots.",
			(double)p->live->snapshot_ns / 1e9);
	metric(&t, "kitgate_http_snapshots_total", "counter", "HTTP snapshots built.", (double)p->live->snapshots);
	metric(&t, "kitgate_live_tick_kits_max", "gauge", "Most changed kits the broker thread visited in one tick (bounded by design).",
			(double)p->live->tick_kits_max);
	metric(&t, "kitgate_live_kit_visits_total", "counter", "Changed kits visited by the broker thread (HTTP entry and retained status).",
			(double)p->live->kit_visits);
	metric(&t, "kitgate_live_kits_queued", "gauge", "Changed kits waiting for their visit.", (double)kg_kits__queued(p->live->kits));
	metric(&t, "kitgate_live_status_cleared_total", "counter", "Retained kit status messages cleared when their kit was evicted.",
			(double)p->live->status_cleared);
	if(p->live->http){
		unsigned long long sse[2];

		kg_http__counts(p->live->http, http);
		kg_http__sse(p->live->http, sse);
		metric(&t, "kitgate_http_sse_events_total", "counter", "Server-sent events sent.", (double)sse[0]);
		metric(&t, "kitgate_http_sse_event_bytes_max", "gauge", "The largest server-sent event so far, in bytes.", (double)sse[1]);
	}
	put(&t, "# HELP kitgate_http_responses_total HTTP responses by status class.\n"
			"# TYPE kitgate_http_responses_total counter\n"
			"kitgate_http_responses_total{code=\"2xx\"} %llu\nkitgate_http_responses_total{code=\"4xx\"} %llu\n"
			"kitgate_http_responses_total{code=\"5xx\"} %llu\n", http[0], http[1], http[2]);
	if(t.failed){
		free(t.s);
		return NULL;
	}
	return t.s;
}

static void publish_snapshot(struct kg_plugin *p, int64_t now)
{
	struct kg_live *l = p->live;
	struct kg_counters *c = &p->counters;
	struct kg_stats_counters sc;
	struct kg_stream_status ms, bs;
	struct snap_ctx ctx = { NULL };
	size_t nkits, online;
	cJSON *root = cJSON_CreateObject(), *st, *o;
	int r;

	if(!root) return;
	kg_status__gather(p, KG_STREAM_MEASUREMENTS, &ms);
	kg_status__gather(p, KG_STREAM_BRIDGE, &bs);
	kg_stats__counters(l->stats, &sc);
	nkits = kg_kits__count(l->kits, &online);

	cJSON_AddNumberToObject(root, "now", (double)now);
	st = cJSON_AddObjectToObject(root, "status");
	cJSON_AddStringToObject(st, "version", KITGATE_VERSION_STRING);
	cJSON_AddNumberToObject(st, "started_at", (double)l->started_ms);
	cJSON_AddNumberToObject(st, "accepted", (double)c->accepted);
	o = cJSON_AddObjectToObject(st, "rejected");
	for(r = 1; r < KG_REASON_COUNT; r++) cJSON_AddNumberToObject(o, kg_reason__name(r), (double)c->rejected[r]);
	kg_statusmodel__json(st, &ms, KG_STATUS_API); /* sink, queue_depth, spilling, spool */
	o = cJSON_AddObjectToObject(st, "kits");
	cJSON_AddNumberToObject(o, "known", (double)nkits);
	cJSON_AddNumberToObject(o, "online", (double)online);
	cJSON_AddNumberToObject(o, "evicted", (double)kg_kits__evicted(l->kits));
	cJSON_AddNumberToObject(o, "listed", (double)(l->dir ? kg_kitdir__count(l->dir) : 0));
	o = cJSON_AddObjectToObject(st, "stats");
	cJSON_AddNumberToObject(o, "streams", (double)sc.streams);
	cJSON_AddNumberToObject(o, "samples", (double)sc.samples);
	cJSON_AddNumberToObject(o, "evicted", (double)sc.evicted);
	cJSON_AddNumberToObject(o, "kit_evicted", (double)sc.group_evicted);
	cJSON_AddNumberToObject(o, "samples_dropped", (double)sc.samples_dropped);
	cJSON_AddNumberToObject(o, "clear_dropped", (double)sc.clear_dropped);
	cJSON_AddNumberToObject(o, "too_old", (double)sc.too_old);
	cJSON_AddNumberToObject(o, "ignored", (double)sc.ignored);
	cJSON_AddNumberToObject(st, "test_measurements", (double)l->test_accepted);

	/* Bounded whatever the number of kits: counters and the ring of recent rejections. The kits
	 * and streams are in the kit directory, written a kit at a time (visit_kit, publish_stats). */
	ctx.rej = cJSON_AddArrayToObject(root, "rejections");
	if(ctx.rej) kg_kits__rejections(l->kits, snap_rejection, &ctx);
	kg_view__publish(l->view, root, build_metrics(p, &ms, &bs, nkits, online, &sc), now);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void kg_live__tick(struct kg_plugin *p)
{
	struct kg_live *l = p->live;
	struct kit_pub kp;
	int64_t now, mono;
	size_t n;

	if(!l) return;
	now = now_ms();
	mono = kg_clock__mono_ms();
	if(l->view) run_test_requests(p);
	if(kg_clock__every(&l->flush, FLUSH_EVERY_MS, mono)){
		kg_stats__drain_evicted(l->stats, clear_stats, l);
		kg_stats__flush_at(l->stats, now, mono, 1000, publish_stats, l);
	}
	kp.l = l;
	kp.now = mono;
	n = kg_kits__visit_changed(l->kits, KIT_VISITS_PER_TICK, visit_kit, &kp);
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
	l->started_ms = now_ms();
	l->stats = kg_stats__new(p->cfg.stats_max_streams, p->cfg.stats_max_samples);
	if(l->stats) kg_stats__set_group_limit(l->stats, p->cfg.stats_max_streams_per_kit);
	l->kits = kg_kits__new(p->cfg.live_max_kits);
	l->routes = p->cfg.nstats_topics ? calloc(p->cfg.nstats_topics, sizeof(*l->routes)) : NULL;
	if(!l->stats || !l->kits || (p->cfg.nstats_topics && !l->routes)) goto oom;
	kg_kits__on_evict(l->kits, kit_evicted, l);
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
