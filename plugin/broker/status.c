/* status.c -- publishes the plugin's counters, retained, on $SYS/broker/kitgate/status every
 * stats_interval_s. Broker thread only (MOSQ_EVT_TICK). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker_api.h"

#include <cjson/cJSON.h>

#include "kitgate/clientids.h"
#include "kitgate/statusmodel.h"
#include "kitgate/clock.h"
#include "kitgate/handoff.h"
#include "kitgate/bridge.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"
#include "kitgate/backoff.h"
#include "kitgate/snapshot.h"
#include "kitgate/events.h"
#include "kitgate_internal.h"

#define STATUS_TOPIC "$SYS/broker/kitgate/status"

/* Contract in kitgate_internal.h. The worker's counters are a snapshot (kg_worker__stats), so
 * this never touches the worker's state. */
void kg_status__gather(struct kg_plugin *p, enum kg_stream_id id, struct kg_stream_status *out)
{
	const struct kg_stream *st = &p->streams[id];

	memset(out, 0, sizeof(*out));
	if(id == KG_STREAM_MEASUREMENTS){
		out->kind = kg_config__sink_name(p->cfg.sink);
		out->handed = p->counters.accepted;
	}else{
		out->kind = st->worker ? "kafka" : "none";
		out->handed = p->counters.bridge_forwarded;
	}
	out->spool_enabled = st->spool != NULL;
	if(st->h) out->depth = kg_handoff__depth(st->h, &out->spilling, &out->spilled);
	if(st->worker) kg_worker__stats(st->worker, &out->worker);
	if(st->spool) kg_spool__stats(st->spool, &out->spool);
}

#define NUM(obj, key, v) do{ if(!cJSON_AddNumberToObject((obj), (key), (double)(v))) goto oom; }while(0)

/* The status JSON (cJSON, printed unformatted), or NULL on out of memory.
 * Top level: the broker thread's counters; "streams": one object per stream (statusmodel.c);
 * "queue_depth", "spilling", "spool" and "sink" at the top level repeat the measurement stream's
 * (the shape before streams existed). */
static char *status_format(struct kg_plugin *p)
{
	const struct kg_counters *c = &p->counters;
	struct kg_stream_status ms, bs;
	uint64_t refused_worker = 0;
	cJSON *root = cJSON_CreateObject(), *o, *streams;
	char *text = NULL;
	size_t i;
	int r;

	if(!root) return NULL;
	kg_status__gather(p, KG_STREAM_MEASUREMENTS, &ms);
	kg_status__gather(p, KG_STREAM_BRIDGE, &bs);
	NUM(root, "accepted", c->accepted);
	if(!(o = cJSON_AddObjectToObject(root, "rejected"))) goto oom;
	for(r = 1; r < KG_REASON_COUNT; r++) NUM(o, kg_reason__name(r), c->rejected[r]);
	NUM(o, "spool_unavailable", c->spool_unavailable);
	NUM(root, "unacked_spool_unavailable", c->unacked);
	if(kg_statusmodel__json(root, &ms, KG_STATUS_SYS)) goto oom;
	for(i = 0; i < bs.worker.nreasons; i++){
		if(!strcmp(bs.worker.reasons[i].reason, "refused_topic")) refused_worker += bs.worker.reasons[i].n;
	}
	if(!(o = cJSON_AddObjectToObject(root, "bridge"))) goto oom;
	NUM(o, "forwarded", c->bridge_forwarded);
	NUM(o, "refused_topic", c->bridge_refused + refused_worker);
	NUM(o, "delivered", bs.worker.sink.written);
	NUM(o, "undecodable", kg_bridge__undecodable());
	if(!(streams = cJSON_AddObjectToObject(root, "streams"))) goto oom;
	if(!(o = cJSON_AddObjectToObject(streams, "measurements")) || kg_statusmodel__json(o, &ms, KG_STATUS_SYS)) goto oom;
	if(!(o = cJSON_AddObjectToObject(streams, "bridge")) || kg_statusmodel__json(o, &bs, KG_STATUS_SYS)) goto oom;
	if(!(o = cJSON_AddObjectToObject(root, "auth"))) goto oom;
	NUM(o, "ok", p->auth.ok);
	NUM(o, "cached", p->auth.cached);
	NUM(o, "refused", p->auth.refused);
	NUM(o, "backoff_refused", p->auth.backoff_refused);
	NUM(o, "budget_refused", p->auth.budget_refused);
	NUM(o, "no_password", p->auth.no_password);
	NUM(o, "pbkdf2_runs", p->auth.pbkdf2_runs);
	NUM(o, "pbkdf2_ms", p->auth.pbkdf2_ns / 1000000u);
	NUM(o, "kicked", p->auth.kicked);
	NUM(o, "backoff_evicted", kg_backoff__evicted(p->auth.backoff));
	NUM(o, "backoff_overflowed", kg_backoff__overflowed(p->auth.backoff));
	/* delayed logins (mosquitto 2.1), inside "auth" */
	NUM(o, "threads", (uint64_t)p->auth.threads);
	NUM(o, "delayed", p->auth.delayed);
	NUM(o, "pending", (uint64_t)(p->auth.pool ? kg_authpool__pending(p->auth.pool) : 0));
	NUM(o, "slots_refused", p->auth.slots_refused);
	NUM(o, "busy_refused", p->auth.busy_refused);
	NUM(o, "superseded", p->auth.stale);
	NUM(o, "changed_meanwhile", p->auth.changed);
	if(p->auth.loader){
		uint64_t loads, asks;

		kg_snapshot__counts(p->auth.loader, &loads, &asks);
		if(!(o = cJSON_AddObjectToObject(root, "auth_snapshot"))) goto oom;
		NUM(o, "loads", loads);
		NUM(o, "refresh_asked", asks);
		NUM(o, "unknown_passed", p->auth.unknown_passed);
	}
	if(!(o = cJSON_AddObjectToObject(root, "wills"))) goto oom;
	NUM(o, "accepted", c->wills_accepted);
	NUM(o, "unsaved", c->wills_unsaved);
	NUM(root, "clientid_refused", c->clientid_refused);
	NUM(root, "clientid_evicted", kg_clientids__evicted(kg_events__clientids(p->events)));
	/* one decimal, as the status always printed it */
	NUM(root, "broker_thread_ns_per_msg",
			c->broker_msgs ? round((double)c->broker_ns / (double)c->broker_msgs * 10.0) / 10.0 : 0.0);
	text = cJSON_PrintUnformatted(root);
oom:
	cJSON_Delete(root);
	return text;
}
#undef NUM

void kg_status__tick(struct kg_plugin *p)
{
	char *text;

	/* monotonic: a wall clock step back must not stop the status (stats_interval_s 0 = off) */
	if(!kg_clock__every(&p->status_every, (int64_t)p->cfg.stats_interval_s * 1000, kg_clock__mono_ms())) return;
	text = status_format(p);
	if(!text) return;
	mosquitto_broker_publish_copy(NULL, STATUS_TOPIC, (int)strlen(text), text, 0, true, NULL);
	cJSON_free(text);
}
