/* statusdoc.h -- the three status documents built from the status model (statusmodel.h): the
 * $SYS/broker/kitgate/status JSON, the HTTP API snapshot and the Prometheus /metrics text. Pure:
 * the caller gathers struct kg_broker_status on the broker thread and passes it in; any thread. */
#ifndef KITGATE_STATUSDOC_H
#define KITGATE_STATUSDOC_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "kitgate/kits.h"
#include "kitgate/statusmodel.h"

/* The $SYS status JSON (unformatted), or NULL on out of memory. Free with cJSON_free. */
char *kg_statusdoc__sys(const struct kg_broker_status *s);

/* The HTTP API snapshot: {"now": now_ms, "status": {...}, "rejections": [recent rejections of kits,
 * newest first]}; kits may be NULL (no rejections). NULL on out of memory; the caller owns the tree.
 * kits is only read (the caller's thread must own it: the broker thread). */
cJSON *kg_statusdoc__api(const struct kg_broker_status *s, const struct kg_kits *kits, int64_t now_ms);

/* The /metrics text (Prometheus exposition format 0.0.4), malloc'ed, or NULL on out of memory. */
char *kg_statusdoc__metrics(const struct kg_broker_status *s);

#endif
