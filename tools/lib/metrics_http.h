/* metrics_http.h -- a tiny Prometheus /metrics endpoint for the tools (libmicrohttpd, its own thread).
 *
 * The owner thread renders the exposition text whenever it likes and hands it over with
 * kg_metrics_http__set; the HTTP thread only ever serves the latest copy under a lock, so a slow
 * or hostile scraper can never touch the owner's state or stall it (connection limit 8, 10 s
 * timeout). Paths other than /metrics get 404, methods other than GET/HEAD 405. */
#ifndef KITGATE_METRICS_HTTP_H
#define KITGATE_METRICS_HTTP_H

#include <stddef.h>

struct kg_metrics_http;

/* Listen on "<address>:<port>" (IPv4 address or "*" for all). Returns NULL and fills err on a bad
 * address or when the port cannot be bound. Any thread. */
struct kg_metrics_http *kg_metrics_http__start(const char *listen, char *err, size_t errlen);

/* Replace the served text (copied). Returns 0, or -1 on out-of-memory (the old text stays).
 * Owner thread. */
int kg_metrics_http__set(struct kg_metrics_http *m, const char *text, size_t len);

/* Stop the HTTP thread and free. NULL is a no-op. Owner thread. */
void kg_metrics_http__stop(struct kg_metrics_http *m);

#endif
