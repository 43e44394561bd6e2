/* status.c -- publishes the plugin's counters, retained, on $SYS/broker/kitgate/status every
 * stats_interval_s. Broker thread only (MOSQ_EVT_TICK). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/bridge.h"
#include "kitgate/spool.h"
#include "kitgate_internal.h"

#define STATUS_TOPIC "$SYS/broker/kitgate/status"

static const char *sink_name(enum kg_sink_kind k)
{
	return k == KG_SINK_POSTGRES ? "postgres" : k == KG_SINK_KAFKA ? "kafka" : "none";
}

static uint64_t ld(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* Format the status JSON into buf. Returns its length, or -1 if it did not fit. */
static int status_format(struct kg_plugin *p, char *buf, size_t cap)
{
	struct kg_counters *c = &p->counters;
	struct kg_spool_stats sst;
	bool spilling = false;
	size_t depth = kg_handoff__depth(&p->handoff, &spilling);
	size_t off = 0;
	int n, r;

#define PUT(...) do{ \
		n = snprintf(buf + off, cap - off, __VA_ARGS__); \
		if(n < 0 || (size_t)n >= cap - off) return -1; \
		off += (size_t)n; \
	}while(0)

	memset(&sst, 0, sizeof(sst));
	if(p->spool) kg_spool__stats(p->spool, &sst);
	PUT("{\"accepted\":%llu,\"rejected\":{", (unsigned long long)c->accepted);
	for(r = 1; r < KG_REASON_COUNT; r++){
		PUT("%s\"%s\":%llu", r > 1 ? "," : "", kg_reason__name(r), (unsigned long long)c->rejected[r]);
	}
	PUT("},\"queue_depth\":%zu,\"spilling\":%s", depth, spilling ? "true" : "false");
	PUT(",\"spool\":{\"enabled\":%s,\"bytes\":%llu,\"appended\":%llu,\"append_errors\":%llu,"
			"\"corrupt_skipped\":%llu,\"torn_tails\":%llu,\"checkpoint\":%llu,\"end\":%llu}",
			p->spool ? "true" : "false", (unsigned long long)sst.bytes,
			(unsigned long long)sst.appended, (unsigned long long)sst.append_errors,
			(unsigned long long)sst.corrupt_skipped, (unsigned long long)sst.torn_tails,
			(unsigned long long)sst.checkpoint, (unsigned long long)sst.end);
	PUT(",\"sink\":{\"kind\":\"%s\",\"connected\":%s,\"settled\":%llu,\"inserted\":%llu,"
			"\"duplicates\":%llu,\"rejected\":{", sink_name(p->cfg.sink),
			atomic_load_explicit(&c->sink_connected, memory_order_relaxed) ? "true" : "false",
			(unsigned long long)ld(&c->settled), (unsigned long long)ld(&c->inserted),
			(unsigned long long)ld(&c->duplicates));
	for(r = 1; r < KG_PG_ROW_COUNT; r++){
		PUT("%s\"%s\":%llu", r > 1 ? "," : "", kg_pg__row_name(r),
				(unsigned long long)ld(&c->sink_rejected[r]));
	}
	PUT("},\"errors\":%llu,\"reconnects\":%llu,\"delivered\":%llu,\"delivery_failures\":%llu,"
			"\"corrupt_records\":%llu}",
			(unsigned long long)ld(&c->sink_errors), (unsigned long long)ld(&c->reconnects),
			(unsigned long long)ld(&c->delivered), (unsigned long long)ld(&c->delivery_failures),
			(unsigned long long)ld(&c->corrupt_records));
	PUT(",\"bridge\":{\"forwarded\":%llu,\"refused_topic\":%llu,\"undecodable\":%llu}",
			(unsigned long long)c->bridge_forwarded,
			(unsigned long long)(c->bridge_refused + ld(&c->bridge_refused_worker)),
			(unsigned long long)kg_bridge__undecodable()); /* Sparkplug B, counted in bridge.c */
	PUT(",\"broker_thread_ns_per_msg\":%.1f}",
			c->broker_msgs ? (double)c->broker_ns / (double)c->broker_msgs : 0.0);
#undef PUT
	return (int)off;
}

void kg_status__tick(struct kg_plugin *p)
{
	char buf[4096];
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
