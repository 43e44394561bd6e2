/* statusmodel.c -- one table of a stream's status fields feeding the $SYS status JSON, the HTTP API
 * snapshot and /metrics (see statusmodel.h). Pure, any thread. */
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
