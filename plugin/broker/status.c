/* status.c -- publishes the plugin's counters, retained, on $SYS/broker/kitgate/status every
 * stats_interval_s. Broker thread only (MOSQ_EVT_TICK). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/clientids.h"
#include "kitgate/handoff.h"
#include "kitgate/bridge.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"
#include "kitgate/backoff.h"
#include "kitgate/snapshot.h"
#include "kitgate_internal.h"

#define STATUS_TOPIC "$SYS/broker/kitgate/status"

#define PUT(...) do{ \
		int n_ = snprintf(buf + *off, cap - *off, __VA_ARGS__); \
		if(n_ < 0 || (size_t)n_ >= cap - *off) return -1; \
		*off += (size_t)n_; \
	}while(0)

/* One stream's object: queue, spool and sink, from its hand-off, spool and worker. The worker's
 * counters are a snapshot (kg_worker__stats), so this never touches the worker's state.
 * "inserted" and "delivered" are the same counter (kg_sink_health.written: rows a PostgreSQL sink
 * inserted, messages a Kafka sink had acknowledged); both names are kept for the consumers of
 * either sink kind. */
static int stream_format(const struct kg_stream *st, const char *kind, char *buf, size_t cap, size_t *off)
{
	struct kg_worker_stats ws;
	struct kg_spool_stats sst;
	bool spilling = false;
	uint64_t spilled = 0;
	size_t depth = 0, i;

	memset(&ws, 0, sizeof(ws));
	memset(&sst, 0, sizeof(sst));
	if(st->h) depth = kg_handoff__depth(st->h, &spilling, &spilled);
	if(st->worker) kg_worker__stats(st->worker, &ws);
	if(st->spool) kg_spool__stats(st->spool, &sst);
	PUT("\"queue_depth\":%zu,\"spilling\":%s,\"spilled\":%llu", depth, spilling ? "true" : "false",
			(unsigned long long)spilled);
	PUT(",\"spool\":{\"enabled\":%s,\"bytes\":%llu,\"appended\":%llu,\"append_errors\":%llu,"
			"\"corrupt_skipped\":%llu,\"torn_tails\":%llu,\"checkpoint\":%llu,\"end\":%llu,"
			"\"missing_bytes\":%llu,\"refused_segments\":%llu}",
			st->spool ? "true" : "false", (unsigned long long)sst.bytes,
			(unsigned long long)sst.appended, (unsigned long long)sst.append_errors,
			(unsigned long long)sst.corrupt_skipped, (unsigned long long)sst.torn_tails,
			(unsigned long long)sst.checkpoint, (unsigned long long)sst.end,
			(unsigned long long)sst.missing_bytes, (unsigned long long)sst.refused_segments);
	PUT(",\"sink\":{\"kind\":\"%s\",\"running\":%s,\"connected\":%s,\"in_flight\":%zu,\"taken\":%llu,"
			"\"settled\":%llu,\"ok\":%llu,\"inserted\":%llu,\"delivered\":%llu,\"duplicates\":%llu,"
			"\"rejected\":{", kind, ws.running ? "true" : "false", ws.sink.connected ? "true" : "false",
			ws.sink.in_flight, (unsigned long long)ws.taken, (unsigned long long)ws.settled,
			(unsigned long long)ws.ok, (unsigned long long)ws.sink.written,
			(unsigned long long)ws.sink.written, (unsigned long long)ws.sink.duplicates);
	for(i = 0; i < ws.nreasons; i++){
		PUT("%s\"%s\":%llu", i ? "," : "", ws.reasons[i].reason, (unsigned long long)ws.reasons[i].n);
	}
	PUT("},\"errors\":%llu,\"reconnects\":%llu,\"rewinds\":%llu,\"lost\":%llu,\"corrupt_records\":%llu,"
			"\"foreign_records\":%llu,\"last_error\":\"", (unsigned long long)ws.sink.errors,
			(unsigned long long)ws.sink.reconnects, (unsigned long long)ws.rewinds,
			(unsigned long long)ws.lost, (unsigned long long)ws.corrupt, (unsigned long long)ws.foreign);
	for(i = 0; i < sizeof(ws.sink.last_error) && ws.sink.last_error[i]; i++){
		unsigned char ch = (unsigned char)ws.sink.last_error[i];
		if(ch == '"' || ch == '\\' || ch < 0x20) PUT("\\u%04x", ch);
		else PUT("%c", ch);
	}
	PUT("\"}");
	return 0;
}

/* Format the status JSON into buf. Returns its length, or -1 if it did not fit.
 * Top level: the broker thread's counters; "streams": one object per stream; "queue_depth",
 * "spilling", "spool" and "sink" at the top level repeat the measurement stream's (the shape
 * before streams existed). */
static int status_format(struct kg_plugin *p, char *buf, size_t cap)
{
	const struct kg_counters *c = &p->counters;
	const struct kg_stream *ms = &p->streams[KG_STREAM_MEASUREMENTS];
	const struct kg_stream *bs = &p->streams[KG_STREAM_BRIDGE];
	struct kg_worker_stats bws;
	uint64_t refused_worker = 0;
	size_t o = 0, *off = &o, i;
	int r;

	PUT("{\"accepted\":%llu,\"rejected\":{", (unsigned long long)c->accepted);
	for(r = 1; r < KG_REASON_COUNT; r++){
		PUT("%s\"%s\":%llu", r > 1 ? "," : "", kg_reason__name(r), (unsigned long long)c->rejected[r]);
	}
	PUT(",\"spool_unavailable\":%llu},\"unacked_spool_unavailable\":%llu,",
			(unsigned long long)c->spool_unavailable, (unsigned long long)c->unacked);
	if(stream_format(ms, kg_config__sink_name(p->cfg.sink), buf, cap, off) != 0) return -1;
	memset(&bws, 0, sizeof(bws));
	if(bs->worker) kg_worker__stats(bs->worker, &bws);
	for(i = 0; i < bws.nreasons; i++){
		if(!strcmp(bws.reasons[i].reason, "refused_topic")) refused_worker += bws.reasons[i].n;
	}
	PUT(",\"bridge\":{\"forwarded\":%llu,\"refused_topic\":%llu,\"delivered\":%llu,\"undecodable\":%llu}",
			(unsigned long long)c->bridge_forwarded, (unsigned long long)(c->bridge_refused + refused_worker),
			(unsigned long long)bws.sink.written, (unsigned long long)kg_bridge__undecodable());
	PUT(",\"streams\":{\"measurements\":{");
	if(stream_format(ms, kg_config__sink_name(p->cfg.sink), buf, cap, off) != 0) return -1;
	PUT("},\"bridge\":{");
	if(stream_format(bs, bs->worker ? "kafka" : "none", buf, cap, off) != 0) return -1;
	PUT("}}");
	PUT(",\"auth\":{\"ok\":%llu,\"cached\":%llu,\"refused\":%llu,\"backoff_refused\":%llu,"
			"\"budget_refused\":%llu,\"no_password\":%llu,\"pbkdf2_runs\":%llu,\"pbkdf2_ms\":%llu,\"kicked\":%llu,"
			"\"backoff_evicted\":%llu,\"backoff_overflowed\":%llu}", (unsigned long long)p->auth.ok,
			(unsigned long long)p->auth.cached, (unsigned long long)p->auth.refused,
			(unsigned long long)p->auth.backoff_refused, (unsigned long long)p->auth.budget_refused,
			(unsigned long long)p->auth.no_password, (unsigned long long)p->auth.pbkdf2_runs,
			(unsigned long long)(p->auth.pbkdf2_ns / 1000000u),
			(unsigned long long)p->auth.kicked, (unsigned long long)kg_backoff__evicted(p->auth.backoff),
			(unsigned long long)kg_backoff__overflowed(p->auth.backoff));
	if(p->auth.loader){
		uint64_t loads, asks;
		kg_snapshot__counts(p->auth.loader, &loads, &asks);
		PUT(",\"auth_snapshot\":{\"loads\":%llu,\"refresh_asked\":%llu,\"unknown_passed\":%llu}",
				(unsigned long long)loads, (unsigned long long)asks, (unsigned long long)p->auth.unknown_passed);
	}
	PUT(",\"wills\":{\"accepted\":%llu,\"unsaved\":%llu},\"clientid_refused\":%llu,\"clientid_evicted\":%llu",
			(unsigned long long)c->wills_accepted, (unsigned long long)c->wills_unsaved,
			(unsigned long long)c->clientid_refused, (unsigned long long)kg_clientids__evicted(p->idguard.ids));
	PUT(",\"broker_thread_ns_per_msg\":%.1f}",
			c->broker_msgs ? (double)c->broker_ns / (double)c->broker_msgs : 0.0);
	return (int)o;
}
#undef PUT

void kg_status__tick(struct kg_plugin *p)
{
	char buf[8192];
	time_t now;
	int len;

	if(p->cfg.stats_interval_s <= 0) return;
	now = time(NULL);
	if(now < p->next_status) return;
	p->next_status = now + p->cfg.stats_interval_s;
	len = status_format(p, buf, sizeof(buf));
	if(len < 0) return;
	mosquitto_broker_publish_copy(NULL, STATUS_TOPIC, len, buf, 0, true, NULL);
}
