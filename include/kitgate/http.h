/* http.h -- the plugin's HTTP endpoint (libmicrohttpd): dashboard, JSON API, server-sent events,
 * Prometheus metrics. It runs on libmicrohttpd's threads, never calls mosquitto_*, reads only the
 * snapshots published in a kg_view and hands test measurements back through it. */
#ifndef KITGATE_HTTP_H
#define KITGATE_HTTP_H

#include <stddef.h>

#include "kitgate/config.h"
#include "kitgate/kitdir.h"
#include "kitgate/validate.h"
#include "kitgate/view.h"

struct kg_http;

/* Start listening on cfg->http_listen. cfg, limits, view and dir must outlive the server (cfg is
 * only read). The kit list, one kit, the client-id lookup and the streams are read from dir; the
 * status, rejections, metrics and server-sent events from the view's (bounded) snapshot. Returns NULL with a one-line reason in err when the address cannot be used or the
 * password file cannot be read. Main thread. */
struct kg_http *kg_http__start(const struct kg_config *cfg, const struct kg_limits *limits,
		struct kg_view *view, struct kg_kitdir *dir, char *err, size_t errlen);

/* Stop accepting, end event streams, wait for the server's threads, free. Main thread. The view
 * must be stopped first (kg_view__stop) so that blocked event streams return. */
void kg_http__stop(struct kg_http *h);

/* Requests served so far, by class (2xx, 4xx, 5xx), for /metrics. Any thread. */
void kg_http__counts(const struct kg_http *h, unsigned long long counts[3]);
/* Server-sent events sent, and the largest one in bytes. Any thread. */
void kg_http__sse(const struct kg_http *h, unsigned long long out[2]);

#endif
