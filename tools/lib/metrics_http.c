/* metrics_http.c -- the tools' Prometheus /metrics endpoint: libmicrohttpd serving a text snapshot. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "metrics_http.h"

/* Shared between the owner thread (set) and the MHD thread (serve): text/len, under lock. */
struct kg_metrics_http {
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	char *text;
	size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *ctype,
		const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if(!r) return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	rc = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* MHD thread. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct kg_metrics_http *m = cls;
	enum MHD_Result rc;
	char *copy;
	size_t len;

	(void)version;
	(void)upload;
	(void)state;
	if(*upload_size) return MHD_NO; /* no bodies expected: close the connection */
	if(strcmp(method, "GET") && strcmp(method, "HEAD")){
		static const char e[] = "{\"error\":\"method not allowed\"}\n";
		return reply(conn, 405, "application/json", e, sizeof(e) - 1);
	}
	if(strcmp(url, "/metrics")){
		static const char e[] = "{\"error\":\"not found; try /metrics\"}\n";
		return reply(conn, 404, "application/json", e, sizeof(e) - 1);
	}
	pthread_mutex_lock(&m->lock);
	len = m->len;
	copy = malloc(len ? len : 1);
	if(copy) memcpy(copy, m->text ? m->text : "", len);
	pthread_mutex_unlock(&m->lock);
	if(!copy) return MHD_NO;
	rc = reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", copy, len);
	free(copy);
	return rc;
}

struct kg_metrics_http *kg_metrics_http__start(const char *listen, char *err, size_t errlen)
{
	struct kg_metrics_http *m;
	struct sockaddr_in sa;
	const char *colon = strrchr(listen, ':');
	char host[64];
	char *end;
	long port;

	if(!colon || (size_t)(colon - listen) >= sizeof(host)){
		snprintf(err, errlen, "metrics listen address \"%s\": expected <address>:<port>", listen);
		return NULL;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if(errno || *end || end == colon + 1 || port < 1 || port > 65535
			|| (strcmp(host, "*") && inet_pton(AF_INET, host, &sa.sin_addr) != 1)){
		snprintf(err, errlen, "metrics listen address \"%s\": expected <IPv4 address or *>:<port 1-65535>", listen);
		return NULL;
	}
	if(!strcmp(host, "*")) sa.sin_addr.s_addr = htonl(INADDR_ANY);
	m = calloc(1, sizeof(*m));
	if(!m){
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
			on_request, m,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)8,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
			MHD_OPTION_END);
	if(!m->d){
		snprintf(err, errlen, "metrics listen address \"%s\": cannot listen (port in use?)", listen);
		pthread_mutex_destroy(&m->lock);
		free(m);
		return NULL;
	}
	return m;
}

int kg_metrics_http__set(struct kg_metrics_http *m, const char *text, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if(!copy) return -1;
	memcpy(copy, text, len);
	pthread_mutex_lock(&m->lock);
	free(m->text);
	m->text = copy;
	m->len = len;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void kg_metrics_http__stop(struct kg_metrics_http *m)
{
	if(!m) return;
	MHD_stop_daemon(m->d);
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	free(m);
}
