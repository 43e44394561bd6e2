/* statusmodel.h -- the one status model of a stream (hand-off, spool, worker and sink): a table of
 * fields (name in the $SYS status JSON, name in the HTTP API snapshot, Prometheus metric, type,
 * help, where the number comes from) that feeds all three writers. Pure; the caller gathers the
 * numbers (struct kg_stream_status) on its own thread and owns the cJSON tree it passes in.
 *
 * To add a stream status field: one row in `fields` (plugin/live/statusmodel.c) with its getter;
 * a NULL name leaves it out of that output. */
#ifndef KITGATE_STATUSMODEL_H
#define KITGATE_STATUSMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "kitgate/spool.h"
#include "kitgate/worker.h"

/* One stream's numbers, as gathered from its hand-off, spool and worker (zero where absent). */
struct kg_stream_status {
	const char *kind;            /* the sink's name: "postgres", "kafka", "none" */
	bool spool_enabled;
	size_t depth;                /* hand-off queue depth */
	bool spilling;
	uint64_t spilled;
	uint64_t handed;             /* records handed to the stream since start (the lag's base) */
	struct kg_spool_stats spool;
	struct kg_worker_stats worker;
};

/* Which JSON document a stream object is written for. */
enum kg_status_doc {
	KG_STATUS_SYS = 0,           /* $SYS/broker/kitgate/status (status.c) */
	KG_STATUS_API,               /* the HTTP API's "status" (live.c snapshot) */
};

/* Adds the stream's fields of doc to obj (nested objects such as "spool" and "sink" created as
 * needed, in table order). 0, or -1 on out of memory (obj then holds a prefix). */
int kg_statusmodel__json(cJSON *obj, const struct kg_stream_status *s, enum kg_status_doc doc);

/* Appends the stream's Prometheus metrics (# HELP, # TYPE, sample) through put, each name being
 * prefix + the table's metric name ("kitgate_" for the measurement stream, "kitgate_bridge_" for
 * the bridge stream). */
void kg_statusmodel__metrics(const struct kg_stream_status *s, const char *prefix,
		void (*put)(void *arg, const char *text), void *arg);

#endif
