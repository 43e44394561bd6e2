/* http.c -- the HTTP endpoint: libmicrohttpd with an internal polling thread and one thread per
 * connection (bounded in number, per IP and in time), so neither a slow client nor an event stream
 * ever touches the broker thread. Every handler reads an immutable kg_view_snapshot; test measurements
 * are validated here (kg_payload__validate, as the broker does) and handed to the broker
 * thread through the kg_view. Never calls mosquitto_*. Contract in http.h. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "kitgate/clock.h"
#include "kitgate/base64.h"
#include "kitgate/http.h"
#include "kitgate/kitdir.h"
#include "kitgate/log.h"
#include "kitgate/payload.h"
#include "kitgate/pwfile.h"
#include "kitgate/access.h"
#include "kitgate/topic.h"
#include "kitgate/uuid.h"

/* Slow clients: each address may hold PER_IP_LIMIT connections, all together CONNECTION_LIMIT (one
 * thread each, THREAD_STACK bytes of stack), and a connection that sends nothing for
 * CONNECTION_TIMEOUT_S is closed. So 64 slow connections from as many addresses leave room for
 * the dashboard, the API and /metrics. */
#define CONNECTION_LIMIT 512
#define PER_IP_LIMIT 16
#define CONNECTION_TIMEOUT_S 10
#define THREAD_STACK (256 * 1024)
#define SSE_KEEPALIVE_MS 5000    /* below CONNECTION_TIMEOUT_S */
#define BASIC_MAX 512            /* longest Basic credentials accepted (decoded) */
#define TEST_TIMEOUT_MS 5000
#define SNAPSHOT_MAX_AGE_MS 600  /* an API answer is at most this old ... */
#define SNAPSHOT_WAIT_MS 500     /* ... unless the broker thread took longer than this to build one */
#define PAGE_DEFAULT 100         /* kits or streams per page when no limit is given */

/* Generated at build time from dashboard/ (dashboard/embed.cmake). */
struct kg_asset {
	const char *path;
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct kg_asset kg_dashboard_assets[];
extern const size_t kg_dashboard_nassets;

struct kg_http {
	struct MHD_Daemon *d;
	const struct kg_config *cfg;
	const struct kg_limits *limits;
	struct kg_view *view;
	struct kg_kitdir *dir;
	atomic_ullong sse_events, sse_bytes_max;
	pthread_mutex_t pw_lock;         /* guards pw and pw_mtime (reloaded when the file changes) */
	struct kg_pwfile *pw;
	struct timespec pw_mtime;
	atomic_bool stopping;
	atomic_ullong counts[3];         /* 2xx, 4xx, 5xx */
	char listen_host[256];           /* http_listen's address, without brackets */
	bool listen_any, listen_loopback;
};

struct conn {
	char *body;
	size_t len;
};

static void count(struct kg_http *h, unsigned status)
{
	if(status >= 200 && status < 300) atomic_fetch_add(&h->counts[0], 1);
	else if(status >= 400 && status < 500) atomic_fetch_add(&h->counts[1], 1);
	else if(status >= 500) atomic_fetch_add(&h->counts[2], 1);
}

void kg_http__sse(const struct kg_http *h, unsigned long long out[2])
{
	out[0] = atomic_load(&((struct kg_http *)h)->sse_events);
	out[1] = atomic_load(&((struct kg_http *)h)->sse_bytes_max);
}

void kg_http__counts(const struct kg_http *h, unsigned long long counts[3])
{
	int i;

	for(i = 0; i < 3; i++) counts[i] = atomic_load(&((struct kg_http *)h)->counts[i]);
}

/* The headers of every answer: its type, never cached, never sniffed, never framed. */
static void add_headers(struct MHD_Response *r, const char *type)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Content-Security-Policy", "frame-ancestors 'none'");
}

static enum MHD_Result send_buf(struct kg_http *h, struct MHD_Connection *c, unsigned status,
		const char *type, const void *data, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
	enum MHD_Result ret;

	if(!r) return MHD_NO;
	add_headers(r, type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	count(h, status);
	return ret;
}

/* A cJSON tree (taken) as the response body. */
static enum MHD_Result send_json(struct kg_http *h, struct MHD_Connection *c, unsigned status, cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;

	cJSON_Delete(j);
	if(!s) return send_buf(h, c, 500, "application/json", "{\"error\":\"out of memory\"}", 25, MHD_RESPMEM_PERSISTENT);
	return send_buf(h, c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

/* A read-only subtree of a snapshot, printed (the snapshot is not modified). */
static enum MHD_Result send_tree(struct kg_http *h, struct MHD_Connection *c, unsigned status, const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);

	if(!s) return send_buf(h, c, 500, "application/json", "{\"error\":\"out of memory\"}", 25, MHD_RESPMEM_PERSISTENT);
	return send_buf(h, c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(struct kg_http *h, struct MHD_Connection *c, unsigned status,
		const char *error, const char *message)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "error", error);
	if(message) cJSON_AddStringToObject(j, "message", message);
	return send_json(h, c, status, j);
}

static enum MHD_Result send_405(struct kg_http *h, struct MHD_Connection *c, const char *allow)
{
	struct MHD_Response *r;
	static const char body[] = "{\"error\":\"method_not_allowed\"}";
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	if(!r) return MHD_NO;
	add_headers(r, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, 405, r);
	MHD_destroy_response(r);
	count(h, 405);
	return ret;
}

/* ---- authentication ------------------------------------------------------------------------ */

/* Reload the password file when it changed. Called with pw_lock held. */
static void pw_refresh(struct kg_http *h)
{
	struct stat sb;
	struct kg_pwfile *pw;
	char err[256];

	if(stat(h->cfg->http_password_file, &sb) != 0) return; /* keep the last good table */
	if(h->pw && sb.st_mtim.tv_sec == h->pw_mtime.tv_sec && sb.st_mtim.tv_nsec == h->pw_mtime.tv_nsec) return;
	pw = kg_pwfile__load(h->cfg->http_password_file, NULL, err, sizeof(err));
	if(!pw) return;
	kg_pwfile__free(h->pw);
	h->pw = pw;
	h->pw_mtime = sb.st_mtim;
}

/* The Basic credentials of the request (the scheme name is case-insensitive, RFC 7617/7235), as
 * "user\0pass" in buf; *pass points into it. False when absent or malformed, and when either part
 * holds a NUL (no password is "secret\0junk"). */
static bool basic_credentials(struct MHD_Connection *c, char *buf, size_t cap, const char **pass)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char *colon;
	long n;

	if(!v || strncasecmp(v, "basic", 5) != 0 || (v[5] != ' ' && v[5] != '\t')) return false;
	for(v += 5; *v == ' ' || *v == '\t'; v++);
	n = kg_base64__decode(v, strlen(v), (unsigned char *)buf, cap - 1, KG_BASE64_PAD_OPTIONAL);
	if(n < 0 || memchr(buf, '\0', (size_t)n)) return false;
	buf[n] = '\0';
	colon = strchr(buf, ':');
	if(!colon) return false;
	*colon = '\0';
	*pass = colon + 1;
	return true;
}

/* 0 = allowed; otherwise the response was queued (401/403) and its result is in *ret. */
static int authenticate(struct kg_http *h, struct MHD_Connection *c, enum MHD_Result *ret)
{
	char cred[BASIC_MAX + 1];
	const char *pass = NULL, *user = NULL;
	int ok;

	if(!h->cfg->http_password_file) return 0;
	if(basic_credentials(c, cred, sizeof(cred), &pass)) user = cred;
	if(user && pass){
		pthread_mutex_lock(&h->pw_lock);
		pw_refresh(h);
		ok = kg_pwfile__check(h->pw, user, pass);
		pthread_mutex_unlock(&h->pw_lock);
	}else{
		ok = 0;
	}
	if(ok && kg_config__is_service(h->cfg, user)) return 0;
	if(ok){
		*ret = send_error(h, c, 403, "forbidden", "only service users may use the HTTP endpoint");
	}else{
		static const char body[] = "{\"error\":\"unauthorized\",\"message\":\"Basic credentials of a service user required\"}";
		struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);

		*ret = MHD_NO;
		if(r){
			add_headers(r, "application/json");
			*ret = MHD_queue_basic_auth_fail_response(c, "kitgate", r);
			MHD_destroy_response(r);
			count(h, 401);
		}
	}
	return -1;
}

/* ---- server-sent events --------------------------------------------------------------------- */

struct sse {
	struct kg_http *h;
	uint64_t seq;
	char *buf;
	size_t len, off;
};

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sse *s = cls;
	struct kg_view_snapshot *snap;
	char *json;
	size_t n;

	(void)pos;
	if(s->off == s->len){
		free(s->buf);
		s->buf = NULL;
		s->len = s->off = 0;
		if(atomic_load(&s->h->stopping)) return MHD_CONTENT_READER_END_OF_STREAM;
		snap = kg_view__wait_newer(s->h->view, s->seq, SSE_KEEPALIVE_MS);
		if(atomic_load(&s->h->stopping)){
			kg_view__release(s->h->view, snap);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if(!snap){
			s->buf = strdup(": keepalive\n\n");
		}else{
			json = cJSON_PrintUnformatted(snap->state); /* bounded: status and recent rejections */
			s->seq = snap->seq;
			kg_view__release(s->h->view, snap);
			if(json && asprintf(&s->buf, "event: state\ndata: %s\n\n", json) < 0) s->buf = NULL;
			free(json);
		}
		if(!s->buf) return MHD_CONTENT_READER_END_WITH_ERROR;
		s->len = strlen(s->buf);
		if(snap){
			unsigned long long m = atomic_load(&s->h->sse_bytes_max);

			atomic_fetch_add(&s->h->sse_events, 1);
			while(s->len > m && !atomic_compare_exchange_weak(&s->h->sse_bytes_max, &m, s->len));
		}
	}
	n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(out, s->buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	free(s->buf);
	free(s);
}

static enum MHD_Result serve_events(struct kg_http *h, struct MHD_Connection *c)
{
	struct sse *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;
	enum MHD_Result ret;

	if(!s) return MHD_NO;
	s->h = h;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, s, sse_free);
	if(!r){
		free(s);
		return MHD_NO;
	}
	add_headers(r, "text/event-stream");
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	count(h, 200);
	return ret;
}

/* ---- the API -------------------------------------------------------------------------------- */

/* A non-negative integer query argument (def when absent); false when malformed. */
static bool arg_size(struct MHD_Connection *c, const char *name, size_t def, size_t *out)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	char *end;
	unsigned long long n;

	*out = def;
	if(!v) return true;
	if(!v[0] || v[0] == '-' || v[0] == '+') return false;
	n = strtoull(v, &end, 10);
	if(*end || n > 100000000ULL) return false;
	*out = (size_t)n;
	return true;
}

/* JSON text (taken) as a 200 answer, with paging headers when total is not NULL. */
static enum MHD_Result send_text(struct kg_http *h, struct MHD_Connection *c, char *text,
		const size_t *total, const char *next)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char num[32];

	if(!text) return send_error(h, c, 500, "out_of_memory", NULL);
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if(!r){
		free(text);
		return MHD_NO;
	}
	add_headers(r, "application/json");
	if(total){
		snprintf(num, sizeof(num), "%zu", *total);
		MHD_add_response_header(r, "X-Total-Count", num);
	}
	if(next && next[0]) MHD_add_response_header(r, "X-Next-After", next);
	ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	count(h, 200);
	return ret;
}

/* GET /api/v1/kits?prefix=&after=&offset=&limit=: a page of kits sorted by serial. */
static enum MHD_Result serve_kits(struct kg_http *h, struct MHD_Connection *c)
{
	const char *prefix = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "prefix");
	const char *after = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
	char next[KG_SERIAL_MAX + 1];
	size_t offset, limit, total;
	char *text;

	if(!arg_size(c, "offset", 0, &offset) || !arg_size(c, "limit", PAGE_DEFAULT, &limit)){
		return send_error(h, c, 400, "bad_paging", "offset and limit are non-negative integers");
	}
	text = kg_kitdir__kits(h->dir, prefix, after, offset, limit, &total, next);
	return send_text(h, c, text, &total, next);
}

static enum MHD_Result serve_streams(struct kg_http *h, struct MHD_Connection *c)
{
	size_t offset, limit, total;
	char *text;

	if(!arg_size(c, "offset", 0, &offset) || !arg_size(c, "limit", PAGE_DEFAULT, &limit)){
		return send_error(h, c, 400, "bad_paging", "offset and limit are non-negative integers");
	}
	text = kg_kitdir__streams(h->dir, offset, limit, &total);
	return send_text(h, c, text, &total, NULL);
}

/* The summary snapshot with the first page of kits and of generic streams (the old whole state). */
static enum MHD_Result serve_state(struct kg_http *h, struct MHD_Connection *c, const struct kg_view_snapshot *snap)
{
	cJSON *j = cJSON_Duplicate(snap->state, 1);
	char next[KG_SERIAL_MAX + 1], *kits, *streams;
	size_t total;

	kits = kg_kitdir__kits(h->dir, NULL, NULL, 0, PAGE_DEFAULT, &total, next);
	streams = kg_kitdir__streams(h->dir, 0, PAGE_DEFAULT, &total);
	if(j){
		cJSON_AddItemToObject(j, "kits", kits ? cJSON_Parse(kits) : cJSON_CreateArray());
		cJSON_AddItemToObject(j, "streams", streams ? cJSON_Parse(streams) : cJSON_CreateArray());
	}
	free(kits);
	free(streams);
	return send_json(h, c, 200, j);
}

/* A serial as a kit may use it in a topic and in JSON: 1..KG_SERIAL_MAX bytes of printable ASCII
 * (0x21-0x7e: no controls, no space, no bytes >= 0x80, which MHD decodes from %XX in the URL),
 * none of '+', '#' or '/'. */
static bool serial_ok(const char *serial)
{
	size_t n = 0;

	for(; serial[n]; n++){
		unsigned char ch = (unsigned char)serial[n];

		if(ch <= 0x20 || ch >= 0x7f || ch == '+' || ch == '#' || ch == '/') return false;
	}
	return n > 0 && n <= KG_SERIAL_MAX;
}

/* "application/json", any case, optionally followed by parameters (";charset=utf-8"). */
static bool json_content_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if(!ct) return false;
	while(*ct == ' ' || *ct == '\t') ct++;
	if(strncasecmp(ct, want, n) != 0) return false;
	ct += n;
	while(*ct == ' ' || *ct == '\t') ct++;
	return *ct == '\0' || *ct == ';';
}

/* True when a browser says the request comes from another site: Sec-Fetch-Site is "cross-site",
 * or an Origin header is present whose host[:port] is not the Host the request was sent to
 * ("null" origins included). A request without either header (curl, scripts) is not cross-site:
 * it is authenticated like any other. Blocks CSRF with a simple (no-preflight) POST, also one
 * that rides on cached Basic credentials. */
static bool cross_site(struct MHD_Connection *c)
{
	const char *sfs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	const char *p;

	if(sfs && !strcasecmp(sfs, "cross-site")) return true;
	if(!origin) return false;
	if(!host || !host[0]) return true;
	p = strstr(origin, "://");
	if(!p) return true; /* "null" or garbage */
	p += 3;
	return strcasecmp(p, host) != 0;
}

/* ---- the Host header (DNS rebinding) -------------------------------------------------------- */

static bool ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Whether name (a host without port) is in the comma-separated list (case-insensitive; "*" = any). */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	while(list && *list){
		const char *e = strchr(list, ',');
		size_t len = e ? (size_t)(e - list) : strlen(list);

		while(len && (*list == ' ' || *list == '\t')){ list++; len--; }
		while(len && (list[len - 1] == ' ' || list[len - 1] == '\t')) len--;
		if((len == 1 && *list == '*') || (len == n && !strncasecmp(list, name, n))) return true;
		list = e ? e + 1 : NULL;
	}
	return false;
}

/* A browser sends the name it resolved in Host, so a page of another site whose name was made to
 * resolve to this address (DNS rebinding) is told apart here: the host part of Host must be the
 * listen address, "localhost" when listening on loopback (or every address), any IP address when
 * listening on every address, or a name in http_allowed_hosts. A request without Host (HTTP/1.0)
 * passes: browsers always send it. */
static bool host_ok(const struct kg_http *h, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char name[256];
	const char *e;
	size_t n;

	if(!v) return true;
	if(v[0] == '['){
		e = strchr(v, ']');
		if(!e || (e[1] && e[1] != ':')) return false;
		v++;
		n = (size_t)(e - v);
	}else{
		e = strchr(v, ':');
		if(e && strchr(e + 1, ':')) return false; /* an IPv6 address must be bracketed */
		n = e ? (size_t)(e - v) : strlen(v);
	}
	if(n == 0 || n >= sizeof(name)) return false;
	memcpy(name, v, n);
	name[n] = '\0';
	if(n > 1 && name[n - 1] == '.') name[--n] = '\0'; /* "localhost." is localhost */
	if(!strcasecmp(name, h->listen_host)) return true;
	if(h->listen_any && ip_literal(name)) return true;
	if((h->listen_any || h->listen_loopback) && !strcasecmp(name, "localhost")) return true;
	return in_list(h->cfg->http_allowed_hosts, name);
}

static enum MHD_Result test_measurement(struct kg_http *h, struct MHD_Connection *c, const char *serial,
		struct conn *cn)
{
	const char *kind_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
	struct kg_test_req *req;
	const char *detail = NULL;
	enum kg_reason r;
	enum MHD_Result ret;
	char uuid[37];
	cJSON *j;
	int kind;

	if(!h->cfg->http_password_file){
		return send_error(h, c, 403, "auth_required", "posting test measurements needs authentication: "
				"set plugin_opt_http_password_file (Basic credentials of a service user)");
	}
	if(cross_site(c)){
		return send_error(h, c, 403, "cross_site", "cross-site requests may not post measurements");
	}
	if(!json_content_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))){
		return send_error(h, c, 415, "unsupported_media_type", "Content-Type must be application/json");
	}
	if(!serial_ok(serial)){
		return send_error(h, c, 400, "bad_serial",
				"a kit serial: 1-64 printable ASCII bytes without '+', '#' or '/'");
	}
	if(!kind_s || !strcmp(kind_s, "raw")){
		kind = KG_KIND_RAW;
	}else if(!strcmp(kind_s, "aggregate")){
		kind = KG_KIND_AGGREGATE;
	}else{
		return send_error(h, c, 400, "bad_kind", "kind must be raw or aggregate");
	}
	req = calloc(1, sizeof(*req));
	if(!req) return MHD_NO;
	r = kg_payload__validate(h->cfg->payload_format, kind, serial, strlen(serial), cn->body, cn->len,
			kg_clock__wall_ms(), h->limits, &req->rec, &detail);
	if(r != KG_OK){
		free(req);
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "error", "rejected");
		cJSON_AddStringToObject(j, "reason", kg_reason__name(r));
		if(detail) cJSON_AddStringToObject(j, "detail", detail);
		return send_json(h, c, 422, j);
	}
	snprintf(req->topic, sizeof(req->topic), "kit/%s/measurement/%s", serial, kind == KG_KIND_RAW ? "raw" : "aggregate");
	req->payload = malloc(cn->len ? cn->len : 1);
	if(!req->payload){
		free(req);
		return MHD_NO;
	}
	memcpy(req->payload, cn->body, cn->len);
	req->len = cn->len;
	req->refs = 1;
	if(kg_view__submit(h->view, req, TEST_TIMEOUT_MS) != 0){
		kg_view__req_release(h->view, req);
		return send_error(h, c, 504, "timeout", "the broker did not take the measurement in time");
	}
	j = cJSON_CreateObject();
	if(req->status == 202){
		kg_uuid__format(req->rec.id, uuid);
		cJSON_AddBoolToObject(j, "accepted", 1);
		cJSON_AddStringToObject(j, "id", uuid);
		cJSON_AddStringToObject(j, "topic", req->topic);
	}else{
		cJSON_AddStringToObject(j, "error", "rejected");
		cJSON_AddStringToObject(j, "reason", kg_reason__name(req->reason));
	}
	cJSON_AddStringToObject(j, "message", req->message);
	ret = send_json(h, c, (unsigned)req->status, j);
	kg_view__req_release(h->view, req);
	return ret;
}

static const struct kg_asset *find_asset(const char *url)
{
	size_t i;

	if(!strcmp(url, "/")) url = "/index.html";
	for(i = 0; i < kg_dashboard_nassets; i++){
		if(!strcmp(kg_dashboard_assets[i].path, url + 1)) return &kg_dashboard_assets[i];
	}
	return NULL;
}

static enum MHD_Result route(struct kg_http *h, struct MHD_Connection *c, const char *url, const char *method,
		struct conn *cn)
{
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	bool post = !strcmp(method, "POST");
	const struct kg_asset *a;
	struct kg_view_snapshot *snap;
	enum MHD_Result ret;
	const char *rest;
	size_t n;

	if(!strncmp(url, "/api/v1/kits/", 13) && (rest = strchr(url + 13, '/')) != NULL
			&& !strcmp(rest, "/test-measurement")){
		char serial[KG_SERIAL_MAX + 2];

		if(!post) return send_405(h, c, "POST");
		n = (size_t)(rest - (url + 13));
		if(n == 0 || n > KG_SERIAL_MAX) return send_error(h, c, 400, "bad_serial", NULL);
		memcpy(serial, url + 13, n);
		serial[n] = '\0';
		return test_measurement(h, c, serial, cn);
	}
	if(!strcmp(url, "/api/v1/events")){
		if(!get) return send_405(h, c, "GET");
		return serve_events(h, c);
	}
	if(!strncmp(url, "/api/", 5) || !strcmp(url, "/metrics")){
		if(!get) return send_405(h, c, "GET");
		/* the kit directory: always current, no snapshot needed */
		if(!strcmp(url, "/api/v1/kits")) return serve_kits(h, c);
		if(!strcmp(url, "/api/v1/streams")) return serve_streams(h, c);
		if(!strncmp(url, "/api/v1/kits/", 13) && url[13] && !strchr(url + 13, '/')){
			char *k = kg_kitdir__kit(h->dir, url + 13);

			return k ? send_text(h, c, k, NULL, NULL) : send_error(h, c, 404, "unknown_kit", "no such kit has been seen");
		}
		if(!strncmp(url, "/api/v1/clients/", 16) && url[16]){
			char *k = kg_kitdir__client(h->dir, url + 16);
			cJSON *j;

			if(!k) return send_error(h, c, 404, "unknown_client", "no kit has used this client id since the broker started");
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "client_id", url + 16);
			cJSON_AddItemToObject(j, "kit", cJSON_Parse(k));
			free(k);
			return send_json(h, c, 200, j);
		}
		snap = kg_view__acquire_fresh(h->view, SNAPSHOT_MAX_AGE_MS, SNAPSHOT_WAIT_MS);
		if(!snap) return send_error(h, c, 503, "starting", "no snapshot yet; retry in a second");
		if(!strcmp(url, "/metrics")){
			ret = snap->metrics ? send_buf(h, c, 200, "text/plain; version=0.0.4; charset=utf-8",
					snap->metrics, strlen(snap->metrics), MHD_RESPMEM_MUST_COPY)
				: send_error(h, c, 500, "metrics_unavailable", NULL);
		}else if(!strcmp(url, "/api/v1/state")){
			ret = serve_state(h, c, snap);
		}else if(!strcmp(url, "/api/v1/status")){
			ret = send_tree(h, c, 200, cJSON_GetObjectItemCaseSensitive(snap->state, "status"));
		}else if(!strcmp(url, "/api/v1/rejections")){
			ret = send_tree(h, c, 200, cJSON_GetObjectItemCaseSensitive(snap->state, "rejections"));
		}else{
			ret = send_error(h, c, 404, "not_found", NULL);
		}
		kg_view__release(h->view, snap);
		return ret;
	}
	if((a = find_asset(url)) != NULL){
		if(!get) return send_405(h, c, "GET");
		return send_buf(h, c, 200, a->type, a->data, a->len, MHD_RESPMEM_PERSISTENT);
	}
	return send_error(h, c, 404, "not_found", NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
		const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct kg_http *h = cls;
	struct conn *cn = *con_cls;
	enum MHD_Result ret;
	size_t room;

	(void)version;
	if(!cn){
		cn = calloc(1, sizeof(*cn));
		if(!cn) return MHD_NO;
		*con_cls = cn;
		return MHD_YES;
	}
	if(*upload_data_size){
		/* Keep at most max_payload + 1 bytes: enough for the validator to say too_large. */
		room = h->limits->max_payload + 1 > cn->len ? h->limits->max_payload + 1 - cn->len : 0;
		if(room){
			size_t take = *upload_data_size < room ? *upload_data_size : room;
			char *nb = realloc(cn->body, cn->len + take + 1);

			if(!nb) return MHD_NO;
			cn->body = nb;
			memcpy(cn->body + cn->len, upload_data, take);
			cn->len += take;
			cn->body[cn->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if(!host_ok(h, c)){
		return send_error(h, c, 421, "misdirected_request", "this Host is not served here: "
				"add it to plugin_opt_http_allowed_hosts");
	}
	if(strstr(url, "%00")) return send_error(h, c, 404, "not_found", NULL); /* see unescape */
	if(authenticate(h, c, &ret) != 0) return ret;
	return route(h, c, url, method, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if(!cn) return;
	free(cn->body);
	free(cn);
	*con_cls = NULL;
}

static int hex_value(char ch)
{
	if(ch >= '0' && ch <= '9') return ch - '0';
	if(ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if(ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* MHD's URL and argument decoding, except that %00 stays "%00": a decoded NUL would end the path
 * early ("/app.js%00.txt" would be "/app.js"); on_request refuses a path holding "%00". */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *r = s, *w = s;
	int hi, lo;

	(void)cls;
	(void)c;
	while(*r){
		if(r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0){
			*w++ = (char)(hi * 16 + lo);
			r += 3;
		}else{
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[300];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	kg_log(KG_LOG_WARNING, "http: %s", line);
}

struct kg_http *kg_http__start(const struct kg_config *cfg, const struct kg_limits *limits,
		struct kg_view *view, struct kg_kitdir *dir, char *err, size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct kg_http *h;
	char host[256], *colon;
	const char *port;
	sigset_t all, old;
	unsigned flags;
	int rc;

	snprintf(host, sizeof(host), "%s", cfg->http_listen);
	colon = strrchr(host, ':');
	if(!colon){
		snprintf(err, errlen, "expected <address>:<port>");
		return NULL;
	}
	*colon = '\0';
	port = colon + 1;
	if(host[0] == '[' && host[strlen(host) - 1] == ']'){
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if(rc != 0){
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if(!h){
		freeaddrinfo(ai);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->cfg = cfg;
	h->limits = limits;
	snprintf(h->listen_host, sizeof(h->listen_host), "%s", host);
	h->listen_any = !host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
	h->listen_loopback = !strcasecmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
	h->view = view;
	h->dir = dir;
	pthread_mutex_init(&h->pw_lock, NULL);
	if(cfg->http_password_file){
		struct stat sb;

		h->pw = kg_pwfile__load(cfg->http_password_file, NULL, err, errlen);
		if(!h->pw){
			freeaddrinfo(ai);
			pthread_mutex_destroy(&h->pw_lock);
			free(h);
			return NULL;
		}
		if(stat(cfg->http_password_file, &sb) == 0) h->pw_mtime = sb.st_mtim;
	}
	flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	if(ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
	/* The server's threads must not take the broker's signals (SIGTERM/SIGHUP). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first, or MHD logs its own way before it */
			MHD_OPTION_SOCK_ADDR, ai->ai_addr,
			MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
			MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_LIMIT,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK,
			MHD_OPTION_UNESCAPE_CALLBACK, unescape, h,
			MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
			MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	freeaddrinfo(ai);
	if(!h->d){
		snprintf(err, errlen, "cannot listen on %s (address in use or not local?)", cfg->http_listen);
		kg_pwfile__free(h->pw);
		pthread_mutex_destroy(&h->pw_lock);
		free(h);
		return NULL;
	}
	return h;
}

void kg_http__stop(struct kg_http *h)
{
	if(!h) return;
	atomic_store(&h->stopping, true);
	MHD_stop_daemon(h->d);
	kg_pwfile__free(h->pw);
	pthread_mutex_destroy(&h->pw_lock);
	free(h);
}
