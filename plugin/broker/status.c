/* status.c -- gathers the plugin's numbers into the status model (statusmodel.h) and publishes the
 * $SYS document, retained, on $SYS/broker/kitgate/status every stats_interval_s. Broker thread
 * only (MOSQ_EVT_TICK). */
#include <stdio.h>
#include <string.h>

#include "broker_api.h"

#include <cjson/cJSON.h>

#include "kitgate/clientids.h"
#include "kitgate/statusdoc.h"
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

/* Contract in kitgate_internal.h: the broker thread's counters copied into the status model's
 * struct (statusmodel.h), which every status output is written from. */
void kg_status__gather_broker(struct kg_plugin *p, struct kg_broker_status *out)
{
	const struct kg_counters *c = &p->counters;

	memset(out, 0, sizeof(*out));
	out->accepted = c->accepted;
	memcpy(out->rejected, c->rejected, sizeof(out->rejected));
	out->spool_unavailable = c->spool_unavailable;
	out->unacked = c->unacked;
	out->broker_ns = c->broker_ns;
	out->broker_msgs = c->broker_msgs;
	out->bridge_forwarded = c->bridge_forwarded;
	out->bridge_refused = c->bridge_refused;
	out->bridge_undecodable = kg_bridge__undecodable();
	out->wills_accepted = c->wills_accepted;
	out->wills_unsaved = c->wills_unsaved;
	out->clientid_refused = c->clientid_refused;
	out->clientid_evicted = kg_clientids__evicted(kg_events__clientids(p->events));
	out->auth.ok = p->auth.ok;
	out->auth.cached = p->auth.cached;
	out->auth.refused = p->auth.refused;
	out->auth.backoff_refused = p->auth.backoff_refused;
	out->auth.budget_refused = p->auth.budget_refused;
	out->auth.no_password = p->auth.no_password;
	out->auth.pbkdf2_runs = p->auth.pbkdf2_runs;
	out->auth.pbkdf2_ns = p->auth.pbkdf2_ns;
	out->auth.kicked = p->auth.kicked;
	out->auth.backoff_evicted = kg_backoff__evicted(p->auth.backoff);
	out->auth.backoff_overflowed = kg_backoff__overflowed(p->auth.backoff);
	out->auth.threads = (uint64_t)p->auth.threads;
	out->auth.delayed = p->auth.delayed;
	out->auth.pending = (uint64_t)(p->auth.pool ? kg_authpool__pending(p->auth.pool) : 0);
	out->auth.slots_refused = p->auth.slots_refused;
	out->auth.busy_refused = p->auth.busy_refused;
	out->auth.stale = p->auth.stale;
	out->auth.changed = p->auth.changed;
	if(p->auth.loader){
		out->snapshot_loader = true;
		kg_snapshot__counts(p->auth.loader, &out->snapshot_loads, &out->snapshot_asks);
		out->unknown_passed = p->auth.unknown_passed;
	}
	kg_status__gather(p, KG_STREAM_MEASUREMENTS, &out->streams[0]);
	kg_status__gather(p, KG_STREAM_BRIDGE, &out->streams[1]);
	kg_live__status(p, out);
}

void kg_status__tick(struct kg_plugin *p)
{
	struct kg_broker_status st;
	char *text;

	/* monotonic: a wall clock step back must not stop the status (stats_interval_s 0 = off) */
	if(!kg_clock__every(&p->status_every, (int64_t)p->cfg.stats_interval_s * 1000, kg_clock__mono_ms())) return;
	kg_status__gather_broker(p, &st);
	text = kg_statusdoc__sys(&st);
	if(!text) return;
	mosquitto_broker_publish_copy(NULL, STATUS_TOPIC, (int)strlen(text), text, 0, true, NULL);
	cJSON_free(text);
}
