/* statusmodel.c -- the status model: the table of a stream's status fields and the table of the
 * broker-wide ones, each feeding the $SYS status JSON, the HTTP API snapshot and /metrics (see
 * statusmodel.h). Pure, any thread. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kitgate/statusmodel.h"

enum field_type {
	F_COUNTER,   /* monotonically increasing number */
	F_GAUGE,     /* number that goes up and down */
	F_BOOL,      /* true/false in JSON, 1/0 as a gauge */
	F_TEXT,      /* a string (JSON only) */
	F_REASONS,   /* the worker's rejections by reason: an object (JSON only) */
};

struct field {
	const char *sys;      /* key path in the $SYS stream object ("spool.bytes"), or NULL */
	const char *api;      /* key path in the HTTP API status, or NULL */
	const char *metric;   /* metric name after the prefix, or NULL */
	enum field_type type;
	const char *help;     /* the metric's HELP ("%s" = the sink's kind) */
	double (*num)(const struct kg_stream_status *s);        /* where a number comes from */
	const char *(*text)(const struct kg_stream_status *s);  /* where a text comes from */
};

/* Getters: where each field comes from. */
#define NUM(name, expr) static double name(const struct kg_stream_status *s) { return (double)(expr); }
NUM(g_depth, s->depth)
NUM(g_spilling, s->spilling)
NUM(g_spilled, s->spilled)
NUM(g_spool_enabled, s->spool_enabled)
NUM(g_spool_bytes, s->spool.bytes)
NUM(g_spool_appended, s->spool.appended)
NUM(g_spool_append_errors, s->spool.append_errors)
NUM(g_spool_corrupt_skipped, s->spool.corrupt_skipped)
NUM(g_spool_torn_tails, s->spool.torn_tails)
NUM(g_spool_checkpoint, s->spool.checkpoint)
NUM(g_spool_end, s->spool.end)
NUM(g_spool_missing, s->spool.missing_bytes)
NUM(g_spool_refused, s->spool.refused_segments)
NUM(g_spool_backlog, s->spool.end > s->spool.checkpoint ? s->spool.end - s->spool.checkpoint : 0)
NUM(g_running, s->worker.running)
NUM(g_connected, s->worker.sink.connected)
NUM(g_in_flight, s->worker.sink.in_flight)
NUM(g_taken, s->worker.taken)
NUM(g_settled, s->worker.settled)
NUM(g_ok, s->worker.ok)
NUM(g_written, s->worker.sink.written)
NUM(g_duplicates, s->worker.sink.duplicates)
NUM(g_errors, s->worker.sink.errors)
NUM(g_reconnects, s->worker.sink.reconnects)
NUM(g_rewinds, s->worker.rewinds)
NUM(g_lost, s->worker.lost)
NUM(g_corrupt, s->worker.corrupt)
NUM(g_foreign, s->worker.foreign)
NUM(g_lag, s->handed > s->worker.settled ? s->handed - s->worker.settled : 0)
#undef NUM

static const char *t_kind(const struct kg_stream_status *s)
{
	return s->kind ? s->kind : "none";
}

static const char *t_last_error(const struct kg_stream_status *s)
{
	return s->worker.sink.last_error;
}

/* The table, in the $SYS document's order. "inserted" and "delivered" are the same counter
 * (kg_sink_health.written: rows a PostgreSQL sink inserted, messages a Kafka sink had
 * acknowledged); both names are kept for the consumers of either sink kind. */
static const struct field fields[] = {
	{"queue_depth", "queue_depth", "queue_depth", F_GAUGE, "Records waiting in the in-memory hand-off queue.", g_depth, NULL},
	{"spilling", "spilling", "queue_spilling", F_BOOL, "1 while new records go to the spool only.", g_spilling, NULL},
	{"spilled", NULL, NULL, F_COUNTER, NULL, g_spilled, NULL},
	{"spool.enabled", "spool.enabled", "spool_enabled", F_BOOL, "1 when the on-disk spool is in use.", g_spool_enabled, NULL},
	{"spool.bytes", "spool.bytes", "spool_bytes", F_GAUGE, "Data bytes in live spool segments.", g_spool_bytes, NULL},
	{NULL, "spool.backlog_bytes", "spool_backlog_bytes", F_GAUGE, "Spool bytes after the sink's checkpoint.", g_spool_backlog, NULL},
	{"spool.appended", NULL, NULL, F_COUNTER, NULL, g_spool_appended, NULL},
	{"spool.append_errors", "spool.append_errors", "spool_append_errors_total", F_COUNTER, "Failed spool appends.",
		g_spool_append_errors, NULL},
	{"spool.corrupt_skipped", NULL, NULL, F_COUNTER, NULL, g_spool_corrupt_skipped, NULL},
	{"spool.torn_tails", NULL, NULL, F_COUNTER, NULL, g_spool_torn_tails, NULL},
	{"spool.checkpoint", NULL, NULL, F_GAUGE, NULL, g_spool_checkpoint, NULL},
	{"spool.end", NULL, NULL, F_GAUGE, NULL, g_spool_end, NULL},
	{"spool.missing_bytes", "spool.missing_bytes", "spool_missing_bytes", F_GAUGE,
		"Log bytes between the checkpoint and the end that no segment holds (a damaged spool).", g_spool_missing, NULL},
	{"spool.refused_segments", "spool.refused_segments", "spool_refused_segments", F_GAUGE,
		"Files named like segments that were not used (not a regular file, or a name past the end of the log).",
		g_spool_refused, NULL},
	{"sink.kind", "sink.kind", NULL, F_TEXT, NULL, NULL, t_kind},
	{"sink.running", NULL, NULL, F_BOOL, NULL, g_running, NULL},
	{"sink.connected", "sink.connected", "sink_connected", F_BOOL, "Whether the sink (%s) is connected.", g_connected, NULL},
	{"sink.in_flight", NULL, NULL, F_GAUGE, NULL, g_in_flight, NULL},
	{"sink.taken", NULL, NULL, F_COUNTER, NULL, g_taken, NULL},
	{"sink.settled", "sink.settled", "sink_settled_total", F_COUNTER, "Records the sink is done with.", g_settled, NULL},
	{"sink.ok", NULL, NULL, F_COUNTER, NULL, g_ok, NULL},
	{"sink.inserted", "sink.inserted", "sink_inserted_total", F_COUNTER, "Rows written by the sink.", g_written, NULL},
	{"sink.delivered", NULL, NULL, F_COUNTER, NULL, g_written, NULL},
	{"sink.duplicates", "sink.duplicates", "sink_duplicates_total", F_COUNTER, "Records the sink already had.", g_duplicates, NULL},
	{"sink.rejected", NULL, NULL, F_REASONS, NULL, NULL, NULL},
	{"sink.errors", "sink.errors", "sink_errors_total", F_COUNTER, "Sink errors.", g_errors, NULL},
	{"sink.reconnects", "sink.reconnects", "sink_reconnects_total", F_COUNTER, "Sink reconnects.", g_reconnects, NULL},
	{"sink.rewinds", NULL, NULL, F_COUNTER, NULL, g_rewinds, NULL},
	{"sink.lost", NULL, NULL, F_COUNTER, NULL, g_lost, NULL},
	{"sink.corrupt_records", NULL, NULL, F_COUNTER, NULL, g_corrupt, NULL},
	{"sink.foreign_records", NULL, NULL, F_COUNTER, NULL, g_foreign, NULL},
	{"sink.last_error", NULL, NULL, F_TEXT, NULL, NULL, t_last_error},
	{NULL, "sink.lag_records", "sink_lag_records", F_GAUGE, "Records handed off since start that the sink has not settled yet.",
		g_lag, NULL},
};

/* The object at the path's parent (created when absent) and the last key, e.g. "spool.bytes" ->
 * obj["spool"], "bytes". NULL on out of memory or when the parent is not an object. */
static cJSON *parent_of(cJSON *obj, const char *path, const char **key)
{
	const char *dot = strchr(path, '.');
	char name[32];
	cJSON *child;

	if(!dot){
		*key = path;
		return obj;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(dot - path), path);
	child = cJSON_GetObjectItemCaseSensitive(obj, name);
	if(!child) child = cJSON_AddObjectToObject(obj, name);
	if(!cJSON_IsObject(child)) return NULL;
	return parent_of(child, dot + 1, key);
}

/* Contract in statusmodel.h. */
int kg_statusmodel__json(cJSON *obj, const struct kg_stream_status *s, enum kg_status_doc doc)
{
	size_t i, r;

	for(i = 0; i < sizeof(fields) / sizeof(fields[0]); i++){
		const struct field *f = &fields[i];
		const char *path = doc == KG_STATUS_SYS ? f->sys : f->api, *key;
		cJSON *parent, *item = NULL;

		if(!path) continue;
		parent = parent_of(obj, path, &key);
		if(!parent) return -1;
		switch(f->type){
			case F_BOOL: item = cJSON_AddBoolToObject(parent, key, f->num(s) != 0); break;
			case F_TEXT: item = cJSON_AddStringToObject(parent, key, f->text(s)); break;
			case F_REASONS:
				item = cJSON_AddObjectToObject(parent, key);
				for(r = 0; item && r < s->worker.nreasons; r++){
					if(!cJSON_AddNumberToObject(item, s->worker.reasons[r].reason, (double)s->worker.reasons[r].n)) return -1;
				}
				break;
			default: item = cJSON_AddNumberToObject(parent, key, f->num(s)); break;
		}
		if(!item) return -1;
	}
	return 0;
}

/* Contract in statusmodel.h. */
void kg_statusmodel__metrics(const struct kg_stream_status *s, const char *prefix,
		void (*put)(void *arg, const char *text), void *arg)
{
	char help[160], line[512];
	size_t i;

	for(i = 0; i < sizeof(fields) / sizeof(fields[0]); i++){
		const struct field *f = &fields[i];

		if(!f->metric || !f->num) continue;
		const char *hole = strstr(f->help, "%s");

		if(hole) snprintf(help, sizeof(help), "%.*s%s%s", (int)(hole - f->help), f->help, t_kind(s), hole + 2);
		else snprintf(help, sizeof(help), "%s", f->help);
		snprintf(line, sizeof(line), "# HELP %s%s %s\n# TYPE %s%s %s\n%s%s %.17g\n", prefix, f->metric, help,
				prefix, f->metric, f->type == F_COUNTER ? "counter" : "gauge", prefix, f->metric, f->num(s));
		put(arg, line);
	}
}

/* ---- the broker-wide fields ------------------------------------------------------------------ */

typedef struct kg_broker_status bstat;

enum bfield_type {
	B_COUNTER = F_COUNTER,
	B_GAUGE = F_GAUGE,
	B_TEXT = F_TEXT,
	B_STREAM,    /* the measurement stream's fields, at this level ($SYS and API documents) */
	B_STREAMS,   /* $SYS: the "streams" object (both streams); /metrics: both streams' metrics */
};

/* A labelled field: one sample per label value in /metrics, an object keyed by the label values in
 * JSON. */
struct blabels {
	const char *name;                               /* the metric's label name */
	size_t n;
	const char *(*value)(size_t i);                 /* the i-th label value (a JSON key) */
	double (*num)(const bstat *s, size_t i);        /* the i-th number */
};

struct bfield {
	const char *sys;      /* key path in the $SYS status document, or NULL */
	const char *api;      /* key path in the HTTP API's "status", or NULL */
	const char *metric;   /* full metric name, or NULL */
	enum bfield_type type;
	const char *help;     /* the metric's HELP */
	double (*num)(const bstat *s);          /* where the number comes from */
	const struct blabels *labels;           /* NULL, or the labelled numbers (num is then NULL) */
	bool (*shown)(const bstat *s);          /* NULL, or whether the field is written at all */
	double metric_div;    /* /metrics shows num / metric_div (0: as is), e.g. ns -> s */
	bool sys_round1;      /* the $SYS document shows num rounded to one decimal */
	const char *(*text)(const bstat *s);    /* B_TEXT */
};

#define BNUM(name, expr) static double name(const bstat *s) { return (double)(expr); }
BNUM(b_accepted, s->accepted)
BNUM(b_spool_unavailable, s->spool_unavailable)
BNUM(b_unacked, s->unacked)
BNUM(b_bridge_forwarded, s->bridge_forwarded)
BNUM(b_bridge_delivered, s->streams[1].worker.sink.written)
BNUM(b_bridge_undecodable, s->bridge_undecodable)
BNUM(b_auth_ok, s->auth.ok)
BNUM(b_auth_cached, s->auth.cached)
BNUM(b_auth_refused, s->auth.refused)
BNUM(b_auth_backoff_refused, s->auth.backoff_refused)
BNUM(b_auth_budget_refused, s->auth.budget_refused)
BNUM(b_auth_no_password, s->auth.no_password)
BNUM(b_auth_pbkdf2_runs, s->auth.pbkdf2_runs)
BNUM(b_auth_pbkdf2_ms, s->auth.pbkdf2_ns / 1000000u)
BNUM(b_auth_kicked, s->auth.kicked)
BNUM(b_auth_backoff_evicted, s->auth.backoff_evicted)
BNUM(b_auth_backoff_overflowed, s->auth.backoff_overflowed)
BNUM(b_auth_threads, s->auth.threads)
BNUM(b_auth_delayed, s->auth.delayed)
BNUM(b_auth_pending, s->auth.pending)
BNUM(b_auth_slots_refused, s->auth.slots_refused)
BNUM(b_auth_busy_refused, s->auth.busy_refused)
BNUM(b_auth_stale, s->auth.stale)
BNUM(b_auth_changed, s->auth.changed)
BNUM(b_snapshot_loads, s->snapshot_loads)
BNUM(b_snapshot_asks, s->snapshot_asks)
BNUM(b_unknown_passed, s->unknown_passed)
BNUM(b_wills_accepted, s->wills_accepted)
BNUM(b_wills_unsaved, s->wills_unsaved)
BNUM(b_clientid_refused, s->clientid_refused)
BNUM(b_clientid_evicted, s->clientid_evicted)
BNUM(b_started_at, s->started_ms)
BNUM(b_kits_known, s->kits_known)
BNUM(b_kits_online, s->kits_online)
BNUM(b_kits_evicted, s->kits_evicted)
BNUM(b_kits_listed, s->kits_listed)
BNUM(b_stats_streams, s->stats.streams)
BNUM(b_stats_samples, s->stats.samples)
BNUM(b_stats_evicted, s->stats.evicted)
BNUM(b_stats_kit_evicted, s->stats.group_evicted)
BNUM(b_stats_samples_dropped, s->stats.samples_dropped)
BNUM(b_stats_clear_dropped, s->stats.clear_dropped)
BNUM(b_stats_too_old, s->stats.too_old)
BNUM(b_stats_ignored, s->stats.ignored)
BNUM(b_stats_published, s->stats.published)
BNUM(b_stats_flushes, s->stats.flushes)
BNUM(b_stats_flush_visits, s->stats.flush_visits)
BNUM(b_test_measurements, s->test_measurements)
BNUM(b_ns_per_msg, s->broker_msgs ? (double)s->broker_ns / (double)s->broker_msgs : 0.0)
BNUM(b_snapshot_ns, s->snapshot_ns)
BNUM(b_snapshots, s->snapshots)
BNUM(b_tick_kits_max, s->tick_kits_max)
BNUM(b_kit_visits, s->kit_visits)
BNUM(b_kits_queued, s->kits_queued)
BNUM(b_status_cleared, s->status_cleared)
BNUM(b_sse_events, s->sse_events)
BNUM(b_sse_event_bytes_max, s->sse_event_bytes_max)
#undef BNUM

/* bridge.refused_topic: refused by the broker thread, plus by the bridge worker */
static double b_bridge_refused(const bstat *s)
{
	uint64_t n = s->bridge_refused;
	size_t i;

	for(i = 0; i < s->streams[1].worker.nreasons; i++){
		if(!strcmp(s->streams[1].worker.reasons[i].reason, "refused_topic")) n += s->streams[1].worker.reasons[i].n;
	}
	return (double)n;
}

static const char *b_version(const bstat *s)
{
	return s->version ? s->version : "";
}

static bool b_has_loader(const bstat *s)
{
	return s->snapshot_loader;
}

static bool b_has_http(const bstat *s)
{
	return s->http;
}

static const char *reason_label(size_t i)
{
	return kg_reason__name((enum kg_reason)(i + 1));
}

static double reason_num(const bstat *s, size_t i)
{
	return (double)s->rejected[i + 1];
}

static const struct blabels by_reason = {"reason", KG_REASON_COUNT - 1, reason_label, reason_num};

static const char *code_label(size_t i)
{
	static const char *const codes[] = {"2xx", "4xx", "5xx"};

	return codes[i];
}

static double code_num(const bstat *s, size_t i)
{
	return (double)s->http_responses[i];
}

static const struct blabels by_code = {"code", 3, code_label, code_num};

/* The table, in the order of all three outputs. */
static const struct bfield broker_fields[] = {
	{NULL, "version", NULL, B_TEXT, NULL, NULL, NULL, NULL, 0, false, b_version},
	{NULL, "started_at", NULL, B_GAUGE, NULL, b_started_at, NULL, NULL, 0, false, NULL},
	{"accepted", "accepted", "kitgate_measurements_accepted_total", B_COUNTER, "Measurements accepted by validation.",
		b_accepted, NULL, NULL, 0, false, NULL},
	{"rejected", "rejected", "kitgate_measurements_rejected_total", B_COUNTER,
		"Measurements rejected inside the broker, by reason.", NULL, &by_reason, NULL, 0, false, NULL},
	{"rejected.spool_unavailable", NULL, NULL, B_COUNTER, NULL, b_spool_unavailable, NULL, NULL, 0, false, NULL},
	{"unacked_spool_unavailable", NULL, NULL, B_COUNTER, NULL, b_unacked, NULL, NULL, 0, false, NULL},
	{"", "", NULL, B_STREAM, NULL, NULL, NULL, NULL, 0, false, NULL},
	{"bridge.forwarded", NULL, "kitgate_bridge_forwarded_total", B_COUNTER, "Messages handed to the Kafka bridge.",
		b_bridge_forwarded, NULL, NULL, 0, false, NULL},
	{"bridge.refused_topic", NULL, NULL, B_COUNTER, NULL, b_bridge_refused, NULL, NULL, 0, false, NULL},
	{"bridge.delivered", NULL, NULL, B_COUNTER, NULL, b_bridge_delivered, NULL, NULL, 0, false, NULL},
	{"bridge.undecodable", NULL, "kitgate_bridge_undecodable_total", B_COUNTER,
		"Sparkplug B payloads on bridge routes that did not decode (forwarded unchanged).",
		b_bridge_undecodable, NULL, NULL, 0, false, NULL},
	{"streams", NULL, "", B_STREAMS, NULL, NULL, NULL, NULL, 0, false, NULL},
	{"auth.ok", NULL, NULL, B_COUNTER, NULL, b_auth_ok, NULL, NULL, 0, false, NULL},
	{"auth.cached", NULL, NULL, B_COUNTER, NULL, b_auth_cached, NULL, NULL, 0, false, NULL},
	{"auth.refused", NULL, NULL, B_COUNTER, NULL, b_auth_refused, NULL, NULL, 0, false, NULL},
	{"auth.backoff_refused", NULL, NULL, B_COUNTER, NULL, b_auth_backoff_refused, NULL, NULL, 0, false, NULL},
	{"auth.budget_refused", NULL, NULL, B_COUNTER, NULL, b_auth_budget_refused, NULL, NULL, 0, false, NULL},
	{"auth.no_password", NULL, NULL, B_COUNTER, NULL, b_auth_no_password, NULL, NULL, 0, false, NULL},
	{"auth.pbkdf2_runs", NULL, NULL, B_COUNTER, NULL, b_auth_pbkdf2_runs, NULL, NULL, 0, false, NULL},
	{"auth.pbkdf2_ms", NULL, NULL, B_COUNTER, NULL, b_auth_pbkdf2_ms, NULL, NULL, 0, false, NULL},
	{"auth.kicked", NULL, NULL, B_COUNTER, NULL, b_auth_kicked, NULL, NULL, 0, false, NULL},
	{"auth.backoff_evicted", NULL, NULL, B_COUNTER, NULL, b_auth_backoff_evicted, NULL, NULL, 0, false, NULL},
	{"auth.backoff_overflowed", NULL, NULL, B_COUNTER, NULL, b_auth_backoff_overflowed, NULL, NULL, 0, false, NULL},
	/* delayed logins (mosquitto 2.1) */
	{"auth.threads", NULL, NULL, B_GAUGE, NULL, b_auth_threads, NULL, NULL, 0, false, NULL},
	{"auth.delayed", NULL, NULL, B_COUNTER, NULL, b_auth_delayed, NULL, NULL, 0, false, NULL},
	{"auth.pending", NULL, NULL, B_GAUGE, NULL, b_auth_pending, NULL, NULL, 0, false, NULL},
	{"auth.slots_refused", NULL, NULL, B_COUNTER, NULL, b_auth_slots_refused, NULL, NULL, 0, false, NULL},
	{"auth.busy_refused", NULL, NULL, B_COUNTER, NULL, b_auth_busy_refused, NULL, NULL, 0, false, NULL},
	{"auth.superseded", NULL, NULL, B_COUNTER, NULL, b_auth_stale, NULL, NULL, 0, false, NULL},
	{"auth.changed_meanwhile", NULL, NULL, B_COUNTER, NULL, b_auth_changed, NULL, NULL, 0, false, NULL},
	/* auth postgres only */
	{"auth_snapshot.loads", NULL, NULL, B_COUNTER, NULL, b_snapshot_loads, NULL, b_has_loader, 0, false, NULL},
	{"auth_snapshot.refresh_asked", NULL, NULL, B_COUNTER, NULL, b_snapshot_asks, NULL, b_has_loader, 0, false, NULL},
	{"auth_snapshot.unknown_passed", NULL, NULL, B_COUNTER, NULL, b_unknown_passed, NULL, b_has_loader, 0, false, NULL},
	{"wills.accepted", NULL, NULL, B_COUNTER, NULL, b_wills_accepted, NULL, NULL, 0, false, NULL},
	{"wills.unsaved", NULL, NULL, B_COUNTER, NULL, b_wills_unsaved, NULL, NULL, 0, false, NULL},
	{"clientid_refused", NULL, NULL, B_COUNTER, NULL, b_clientid_refused, NULL, NULL, 0, false, NULL},
	{"clientid_evicted", NULL, NULL, B_COUNTER, NULL, b_clientid_evicted, NULL, NULL, 0, false, NULL},
	/* the live view */
	{NULL, "kits.known", "kitgate_kits_known", B_GAUGE, "Kits the live view tracks.", b_kits_known, NULL, NULL, 0, false, NULL},
	{NULL, "kits.online", "kitgate_kits_online", B_GAUGE, "Kits with an open session.", b_kits_online, NULL, NULL, 0, false, NULL},
	{NULL, "kits.evicted", NULL, B_COUNTER, NULL, b_kits_evicted, NULL, NULL, 0, false, NULL},
	{NULL, "kits.listed", NULL, B_GAUGE, NULL, b_kits_listed, NULL, NULL, 0, false, NULL},
	{NULL, "stats.streams", "kitgate_stats_streams", B_GAUGE, "Streams with rolling statistics.", b_stats_streams,
		NULL, NULL, 0, false, NULL},
	{NULL, "stats.samples", "kitgate_stats_samples", B_GAUGE, "Samples held for rolling statistics.", b_stats_samples,
		NULL, NULL, 0, false, NULL},
	{NULL, "stats.evicted", "kitgate_stats_evicted_total", B_COUNTER, "Streams evicted at stats_max_streams.",
		b_stats_evicted, NULL, NULL, 0, false, NULL},
	{NULL, "stats.kit_evicted", "kitgate_stats_kit_evicted_total", B_COUNTER, "Streams evicted at stats_max_streams_per_kit.",
		b_stats_kit_evicted, NULL, NULL, 0, false, NULL},
	{NULL, "stats.samples_dropped", "kitgate_stats_samples_dropped_total", B_COUNTER, "Samples dropped at stats_max_samples.",
		b_stats_samples_dropped, NULL, NULL, 0, false, NULL},
	{NULL, "stats.clear_dropped", "kitgate_stats_clear_dropped_total", B_COUNTER,
		"Evicted streams whose retained statistics were not cleared (clear queue full).", b_stats_clear_dropped,
		NULL, NULL, 0, false, NULL},
	{NULL, "stats.too_old", NULL, B_COUNTER, NULL, b_stats_too_old, NULL, NULL, 0, false, NULL},
	{NULL, "stats.ignored", "kitgate_stats_ignored_total", B_COUNTER, "Non-numeric payloads on stats topics.",
		b_stats_ignored, NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_stats_published_total", B_COUNTER, "Statistics messages published.", b_stats_published,
		NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_stats_flushes_total", B_COUNTER, "Statistics flushes (every 250 ms).", b_stats_flushes,
		NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_stats_flush_visits_total", B_COUNTER,
		"Streams the statistics flushes visited (changed or due ones only, not every stream).", b_stats_flush_visits,
		NULL, NULL, 0, false, NULL},
	{NULL, "test_measurements", NULL, B_COUNTER, NULL, b_test_measurements, NULL, NULL, 0, false, NULL},
	/* the broker thread's time per message: ns with one decimal in $SYS, seconds in /metrics */
	{"broker_thread_ns_per_msg", NULL, "kitgate_broker_thread_seconds_per_message", B_GAUGE,
		"Mean broker-thread time per message in the MESSAGE callback.", b_ns_per_msg, NULL, NULL, 1e9, true, NULL},
	{NULL, NULL, "kitgate_http_snapshot_seconds_total", B_COUNTER, "Broker-thread CPU time spent building HTTP snapshots.",
		b_snapshot_ns, NULL, NULL, 1e9, false, NULL},
	{NULL, NULL, "kitgate_http_snapshots_total", B_COUNTER, "HTTP snapshots built.", b_snapshots, NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_live_tick_kits_max", B_GAUGE,
		"Most changed kits the broker thread visited in one tick (bounded by design).", b_tick_kits_max,
		NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_live_kit_visits_total", B_COUNTER,
		"Changed kits visited by the broker thread (HTTP entry and retained status).", b_kit_visits, NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_live_kits_queued", B_GAUGE, "Changed kits waiting for their visit.", b_kits_queued,
		NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_live_status_cleared_total", B_COUNTER,
		"Retained kit status messages cleared when their kit was evicted.", b_status_cleared, NULL, NULL, 0, false, NULL},
	{NULL, NULL, "kitgate_http_sse_events_total", B_COUNTER, "Server-sent events sent.", b_sse_events,
		NULL, b_has_http, 0, false, NULL},
	{NULL, NULL, "kitgate_http_sse_event_bytes_max", B_GAUGE, "The largest server-sent event so far, in bytes.",
		b_sse_event_bytes_max, NULL, b_has_http, 0, false, NULL},
	{NULL, NULL, "kitgate_http_responses_total", B_COUNTER, "HTTP responses by status class.", NULL, &by_code,
		NULL, 0, false, NULL},
};

/* Contract in statusmodel.h. */
int kg_statusmodel__broker_json(cJSON *obj, const struct kg_broker_status *s, enum kg_status_doc doc)
{
	size_t i, k;

	for(i = 0; i < sizeof(broker_fields) / sizeof(broker_fields[0]); i++){
		const struct bfield *f = &broker_fields[i];
		const char *path = doc == KG_STATUS_SYS ? f->sys : f->api, *key;
		cJSON *parent, *item = NULL, *o;
		double v;

		if(!path || (f->shown && !f->shown(s))) continue;
		if(f->type == B_STREAM){
			if(kg_statusmodel__json(obj, &s->streams[0], doc)) return -1;
			continue;
		}
		parent = parent_of(obj, path, &key);
		if(!parent) return -1;
		if(f->type == B_STREAMS){
			if(!(item = cJSON_AddObjectToObject(parent, key))
					|| !(o = cJSON_AddObjectToObject(item, "measurements")) || kg_statusmodel__json(o, &s->streams[0], doc)
					|| !(o = cJSON_AddObjectToObject(item, "bridge")) || kg_statusmodel__json(o, &s->streams[1], doc)) return -1;
			continue;
		}
		if(f->type == B_TEXT){
			item = cJSON_AddStringToObject(parent, key, f->text(s));
		}else if(f->labels){
			item = cJSON_GetObjectItemCaseSensitive(parent, key);
			if(!item) item = cJSON_AddObjectToObject(parent, key);
			for(k = 0; item && k < f->labels->n; k++){
				if(!cJSON_AddNumberToObject(item, f->labels->value(k), f->labels->num(s, k))) return -1;
			}
		}else{
			v = f->num(s);
			if(doc == KG_STATUS_SYS && f->sys_round1) v = round(v * 10.0) / 10.0;
			item = cJSON_AddNumberToObject(parent, key, v);
		}
		if(!item) return -1;
	}
	return 0;
}

/* Contract in statusmodel.h. */
void kg_statusmodel__broker_metrics(const struct kg_broker_status *s, void (*put)(void *arg, const char *text), void *arg)
{
	char line[512];
	size_t i, k;

	for(i = 0; i < sizeof(broker_fields) / sizeof(broker_fields[0]); i++){
		const struct bfield *f = &broker_fields[i];
		const char *type = f->type == B_COUNTER ? "counter" : "gauge";

		if(!f->metric || (f->shown && !f->shown(s))) continue;
		if(f->type == B_STREAMS){
			kg_statusmodel__metrics(&s->streams[0], "kitgate_", put, arg);
			kg_statusmodel__metrics(&s->streams[1], "kitgate_bridge_", put, arg);
			continue;
		}
		snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", f->metric, f->help, f->metric, type);
		put(arg, line);
		if(f->labels){
			for(k = 0; k < f->labels->n; k++){
				snprintf(line, sizeof(line), "%s{%s=\"%s\"} %.17g\n", f->metric, f->labels->name, f->labels->value(k),
						f->labels->num(s, k));
				put(arg, line);
			}
		}else{
			double v = f->num(s);

			if(f->metric_div != 0) v /= f->metric_div;
			snprintf(line, sizeof(line), "%s %.17g\n", f->metric, v);
			put(arg, line);
		}
	}
}
