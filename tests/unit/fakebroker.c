/* fakebroker.c -- the fake mosquitto broker API for test_plugin (contract in fakebroker.h): the
 * mosquitto_* functions the files in plugin/broker/ call, a callback registry per event, records of logs,
 * publishes, kicks and delayed-auth completions, and the event drivers. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fakebroker.h"

#ifndef FB_BROKER21_SO
#error "FB_BROKER21_SO: the path of fakebroker21.so (tests/CMakeLists.txt)"
#endif

#define FB_EVENTS 64
#define FB_EVT_MAX_20 MOSQ_EVT_DISCONNECT   /* 2.0 refuses any later event */

struct mosquitto {
	char *id, *username, *address;
	int protocol_version;
	bool clean_session;
	struct mosquitto *next;
};

struct cb {
	MOSQ_FUNC_generic_callback fn;
	void *userdata;
};

static struct {
	int api;
	bool loaded;                 /* mosquitto_plugin_init succeeded */
	void *userdata;
	void *so21;                  /* fakebroker21.so while playing 2.1 */
	pthread_t broker_thread;
	int wrong_thread;            /* mosquitto_* calls from another thread */
	struct cb cbs[FB_EVENTS][16];
	int ncbs[FB_EVENTS];
	struct mosquitto *clients;
	struct fb_log *logs;
	size_t nlogs, caplogs;
	struct fb_pub *pubs;
	size_t npubs, cappubs;
	char **kicks;
	size_t nkicks, capkicks;
	struct fb_completion *done;
	size_t ndone, capdone;
} fb;

static char plugin_id;   /* the mosquitto_plugin_id_t handed to the plugin: only its address */

static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	void *na;

	if(n < *cap) return arr;
	*cap = *cap ? *cap * 2 : 16;
	na = realloc(arr, *cap * elem);
	if(!na){
		fprintf(stderr, "fakebroker: out of memory\n");
		abort();
	}
	return na;
}

static char *dup_or_null(const char *s)
{
	char *d;

	if(!s) return NULL;
	d = strdup(s);
	if(!d) abort();
	return d;
}

static void on_broker_thread(const char *fn)
{
	if(!pthread_equal(pthread_self(), fb.broker_thread)){
		fb.wrong_thread++;
		fprintf(stderr, "fakebroker: %s called from a thread that is not the broker thread\n", fn);
	}
}

/* ---- clients ------------------------------------------------------------------------------- */

struct mosquitto *fb_client_new(const char *id, const char *username, const char *address,
		int protocol_version, bool clean_session)
{
	struct mosquitto *c = calloc(1, sizeof(*c));

	if(!c) abort();
	c->id = dup_or_null(id);
	c->username = dup_or_null(username);
	c->address = dup_or_null(address);
	c->protocol_version = protocol_version;
	c->clean_session = clean_session;
	c->next = fb.clients;
	fb.clients = c;
	return c;
}

void fb_client_free(struct mosquitto *c)
{
	struct mosquitto **pp;

	if(!c) return;
	for(pp = &fb.clients; *pp; pp = &(*pp)->next){
		if(*pp == c){
			*pp = c->next;
			break;
		}
	}
	free(c->id);
	free(c->username);
	free(c->address);
	free(c);
}

static struct mosquitto *client_by_id(const char *id)
{
	struct mosquitto *c;

	for(c = fb.clients; c; c = c->next){
		if(c->id && id && !strcmp(c->id, id)) return c;
	}
	return NULL;
}

/* ---- the broker API the plugin calls --------------------------------------------------------- */

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data, void *userdata)
{
	int i;

	(void)event_data;
	on_broker_thread(__func__);
	if(identifier != (mosquitto_plugin_id_t *)&plugin_id || !cb_func) return MOSQ_ERR_INVAL;
	if(event <= 0 || event >= FB_EVENTS || (fb.api == FB_API20 && event > FB_EVT_MAX_20)) return MOSQ_ERR_NOT_SUPPORTED;
	for(i = 0; i < fb.ncbs[event]; i++){
		if(fb.cbs[event][i].fn == cb_func) return MOSQ_ERR_ALREADY_EXISTS;
	}
	if(fb.ncbs[event] == (int)(sizeof(fb.cbs[0]) / sizeof(fb.cbs[0][0]))) return MOSQ_ERR_NOMEM;
	fb.cbs[event][fb.ncbs[event]].fn = cb_func;
	fb.cbs[event][fb.ncbs[event]].userdata = userdata;
	fb.ncbs[event]++;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
		MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	int i;

	(void)event_data;
	on_broker_thread(__func__);
	if(identifier != (mosquitto_plugin_id_t *)&plugin_id) return MOSQ_ERR_INVAL;
	if(event <= 0 || event >= FB_EVENTS || (fb.api == FB_API20 && event > FB_EVT_MAX_20)) return MOSQ_ERR_NOT_SUPPORTED;
	for(i = 0; i < fb.ncbs[event]; i++){
		if(fb.cbs[event][i].fn != cb_func) continue;
		memmove(&fb.cbs[event][i], &fb.cbs[event][i + 1], (size_t)(fb.ncbs[event] - i - 1) * sizeof(struct cb));
		fb.ncbs[event]--;
		return MOSQ_ERR_SUCCESS;
	}
	return MOSQ_ERR_NOT_FOUND;
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;
	int n;

	on_broker_thread(__func__);
	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if(n < 0) abort();
	fb.logs = grow(fb.logs, &fb.caplogs, fb.nlogs, sizeof(*fb.logs));
	fb.logs[fb.nlogs].level = level;
	fb.logs[fb.nlogs].text = text;
	fb.nlogs++;
	if(getenv("FB_VERBOSE")) fprintf(stderr, "fakebroker log %d: %s\n", level, text);
}

const char *mosquitto_client_address(const struct mosquitto *client)
{
	on_broker_thread(__func__);
	return client->address;
}

bool mosquitto_client_clean_session(const struct mosquitto *client)
{
	on_broker_thread(__func__);
	return client->clean_session;
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
	on_broker_thread(__func__);
	return client->id;
}

int mosquitto_client_protocol_version(const struct mosquitto *client)
{
	on_broker_thread(__func__);
	return client->protocol_version;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
	on_broker_thread(__func__);
	return client->username;
}

int mosquitto_kick_client_by_username(const char *username, bool with_will)
{
	(void)with_will;
	on_broker_thread(__func__);
	fb.kicks = grow(fb.kicks, &fb.capkicks, fb.nkicks, sizeof(*fb.kicks));
	fb.kicks[fb.nkicks++] = dup_or_null(username);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen,
		const void *payload, int qos, bool retain, mosquitto_property *properties)
{
	struct fb_pub *p;

	(void)clientid;
	(void)properties;
	on_broker_thread(__func__);
	if(!topic || payloadlen < 0 || (payloadlen > 0 && !payload) || qos < 0 || qos > 2) return MOSQ_ERR_INVAL;
	fb.pubs = grow(fb.pubs, &fb.cappubs, fb.npubs, sizeof(*fb.pubs));
	p = &fb.pubs[fb.npubs++];
	p->topic = dup_or_null(topic);
	p->len = payloadlen;
	p->payload = NULL;
	if(payloadlen > 0){
		p->payload = malloc((size_t)payloadlen + 1);
		if(!p->payload) abort();
		memcpy(p->payload, payload, (size_t)payloadlen);
		p->payload[payloadlen] = '\0';
	}
	p->qos = qos;
	p->retain = retain;
	return MOSQ_ERR_SUCCESS;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

enum chain { UNTIL_NOT_DEFER, UNTIL_ERROR, ALL };

static int dispatch(int event, void *data, enum chain how)
{
	struct cb list[16];
	int n = fb.ncbs[event], i, rc = how == UNTIL_NOT_DEFER ? MOSQ_ERR_PLUGIN_DEFER : MOSQ_ERR_SUCCESS;

	memcpy(list, fb.cbs[event], (size_t)n * sizeof(list[0]));   /* a callback may unregister */
	for(i = 0; i < n; i++){
		int r = list[i].fn(event, data, list[i].userdata);

		if(how == UNTIL_NOT_DEFER && r != MOSQ_ERR_PLUGIN_DEFER) return r;
		if(how == UNTIL_ERROR && r != MOSQ_ERR_SUCCESS) return r;
	}
	return rc;
}

/* 2.1's mosquitto_complete_basic_auth (fakebroker21.so calls this): record it; success raises
 * CONNECT for the client, refusal disconnects it (DISCONNECT inside the call), as 2.1 does. */
static void complete_basic_auth(const char *clientid, int result)
{
	struct mosquitto *c;

	on_broker_thread("mosquitto_complete_basic_auth");
	fb.done = grow(fb.done, &fb.capdone, fb.ndone, sizeof(*fb.done));
	fb.done[fb.ndone].client_id = dup_or_null(clientid);
	fb.done[fb.ndone].result = result;
	fb.ndone++;
	c = client_by_id(clientid);
	if(!c) return;        /* gone meanwhile: 2.1 does nothing */
	if(result == MOSQ_ERR_SUCCESS) fb_connect(c);
	else fb_disconnect(c, MOSQ_ERR_AUTH);
}

int fb_basic_auth(struct mosquitto *c, const char *password)
{
	struct mosquitto_evt_basic_auth ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.username = c->username;
	ed.password = (char *)password;
	return dispatch(MOSQ_EVT_BASIC_AUTH, &ed, UNTIL_NOT_DEFER);
}

static int acl(struct mosquitto *c, int access, const char *topic, const void *payload, size_t len,
		int qos, bool retain)
{
	struct mosquitto_evt_acl_check ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.access = access;
	ed.topic = topic;
	ed.payload = payload;
	ed.payloadlen = (uint32_t)len;
	ed.qos = (uint8_t)qos;
	ed.retain = retain;
	return dispatch(MOSQ_EVT_ACL_CHECK, &ed, UNTIL_NOT_DEFER);
}

int fb_acl(struct mosquitto *c, int access, const char *topic, const void *payload, size_t len,
		int qos, bool retain)
{
	char *t = dup_or_null(topic);
	void *pl = len ? malloc(len) : NULL;
	int rc;

	if(len){
		if(!pl) abort();
		memcpy(pl, payload, len);
	}
	rc = acl(c, access, t, pl, len, qos, retain);
	free(pl);
	free(t);
	return rc;
}

static int message(struct mosquitto *c, char *topic, void *payload, size_t len, int qos, bool retain)
{
	struct mosquitto_evt_message ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.topic = topic;
	ed.payload = payload;
	ed.payloadlen = (uint32_t)len;
	ed.qos = (uint8_t)qos;
	ed.retain = retain;
	return dispatch(MOSQ_EVT_MESSAGE_IN, &ed, UNTIL_ERROR);
}

/* The broker's stored copy of a message: exact length, no NUL. */
static void *payload_copy(const char *payload, size_t *len)
{
	void *p;

	*len = payload ? strlen(payload) : 0;
	if(!*len) return NULL;
	p = malloc(*len);
	if(!p) abort();
	memcpy(p, payload, *len);
	return p;
}

int fb_publish(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain, int *acl_rc)
{
	char *t = dup_or_null(topic);
	size_t len;
	void *pl = payload_copy(payload, &len);
	int rc = acl(c, MOSQ_ACL_WRITE, t, pl, len, qos, retain);

	if(acl_rc) *acl_rc = rc;
	if(rc == MOSQ_ERR_SUCCESS) rc = message(c, t, pl, len, qos, retain);
	free(pl);
	free(t);
	return rc;
}

int fb_message(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain)
{
	char *t = dup_or_null(topic);
	size_t len;
	void *pl = payload_copy(payload, &len);
	int rc = message(c, t, pl, len, qos, retain);

	free(pl);
	free(t);
	return rc;
}

int fb_will(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain)
{
	char *t = dup_or_null(topic);
	size_t len;
	void *pl = payload_copy(payload, &len);
	int rc = acl(c, MOSQ_ACL_WRITE, t, pl, len, qos, retain);

	free(pl);
	free(t);
	return rc;
}

void fb_disconnect(struct mosquitto *c, int reason)
{
	struct mosquitto_evt_disconnect ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.reason = reason;
	(void)dispatch(MOSQ_EVT_DISCONNECT, &ed, ALL);
}

void fb_client_offline(struct mosquitto *c, int reason)
{
	struct mosquitto_evt_disconnect ed;   /* same leading layout as 2.1's evt_client_offline */

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	ed.reason = reason;
	(void)dispatch(KG_MOSQ_EVT_CLIENT_OFFLINE, &ed, ALL);
}

void fb_connect(struct mosquitto *c)
{
	kg_evt_connect ed;

	memset(&ed, 0, sizeof(ed));
	ed.client = c;
	(void)dispatch(KG_MOSQ_EVT_CONNECT, &ed, ALL);
}

long fb_tick(void)
{
	struct mosquitto_evt_tick ed;
	struct timespec ts;

	memset(&ed, 0, sizeof(ed));
	clock_gettime(CLOCK_REALTIME, &ts);
	ed.now_s = ts.tv_sec;
	ed.now_ns = ts.tv_nsec;
	(void)dispatch(MOSQ_EVT_TICK, &ed, ALL);
	/* the third member is next_ns in 2.0's headers, next_ms in 2.1's (broker_api.h) */
#ifdef KG_MOSQ_HEADERS_21
	return (long)ed.next_s * 1000 + ed.next_ms;
#else
	return (long)ed.next_s * 1000 + ed.next_ns;
#endif
}

int fb_reload(void)
{
	struct mosquitto_evt_reload ed;

	memset(&ed, 0, sizeof(ed));
	return dispatch(MOSQ_EVT_RELOAD, &ed, UNTIL_NOT_DEFER);
}

/* ---- life ------------------------------------------------------------------------------------- */

int fb_start(int api, const char *const *opts)
{
	static const int versions[] = { 5, 4, 3, 2 };
	struct mosquitto_opt o[64];
	int n = 0, rc;

	fb_clear();
	fb.api = api;
	fb.broker_thread = pthread_self();
	fb.wrong_thread = 0;
	if(api == FB_API20 && dlsym(RTLD_DEFAULT, "mosquitto_complete_basic_auth")){
		/* glibc pins an object once the main program looked a symbol up in it */
		fprintf(stderr, "fakebroker: cannot play 2.0 after 2.1 in one process: run the 2.0 tests first\n");
		return -1;
	}
	if(api == FB_API21){
		void (**hook)(const char *, int);

		fb.so21 = dlopen(FB_BROKER21_SO, RTLD_NOW | RTLD_GLOBAL);
		if(!fb.so21){
			fprintf(stderr, "fakebroker: %s\n", dlerror());
			return -1;
		}
		hook = (void (**)(const char *, int))dlsym(fb.so21, "fb21_complete");
		if(!hook) return -1;
		*hook = complete_basic_auth;
	}
	for(; opts && opts[0] && n < 64; opts += 2, n++){
		o[n].key = (char *)opts[0];
		o[n].value = (char *)opts[1];
	}
	if(mosquitto_plugin_version(4, versions) != 5) return -1;
	fb.userdata = NULL;
	rc = mosquitto_plugin_init((mosquitto_plugin_id_t *)&plugin_id, &fb.userdata, o, n);
	fb.loaded = rc == MOSQ_ERR_SUCCESS;
	if(!fb.loaded && fb.so21){
		dlclose(fb.so21);
		fb.so21 = NULL;
	}
	return rc;
}

int fb_callbacks(int event)
{
	return event > 0 && event < FB_EVENTS ? fb.ncbs[event] : 0;
}

int fb_stop(void)
{
	int left = 0, e;

	if(fb.loaded) (void)mosquitto_plugin_cleanup(fb.userdata, NULL, 0);
	fb.loaded = false;
	fb.userdata = NULL;
	for(e = 0; e < FB_EVENTS; e++){
		if(fb.ncbs[e]) fprintf(stderr, "fakebroker: %d callback(s) for event %d still registered\n", fb.ncbs[e], e);
		left += fb.ncbs[e];
		fb.ncbs[e] = 0;
	}
	if(fb.so21){
		dlclose(fb.so21);   /* stays mapped once the plugin looked it up (fakebroker.h) */
		fb.so21 = NULL;
	}
	return left + fb.wrong_thread;
}

/* ---- records ---------------------------------------------------------------------------------- */

size_t fb_nlogs(void) { return fb.nlogs; }
const struct fb_log *fb_log_at(size_t i) { return i < fb.nlogs ? &fb.logs[i] : NULL; }
size_t fb_npubs(void) { return fb.npubs; }
const struct fb_pub *fb_pub_at(size_t i) { return i < fb.npubs ? &fb.pubs[i] : NULL; }
size_t fb_nkicks(void) { return fb.nkicks; }
const char *fb_kick_at(size_t i) { return i < fb.nkicks ? fb.kicks[i] : NULL; }
size_t fb_ncompletions(void) { return fb.ndone; }
const struct fb_completion *fb_completion_at(size_t i) { return i < fb.ndone ? &fb.done[i] : NULL; }

size_t fb_log_count(const char *needle)
{
	size_t i, n = 0;

	for(i = 0; i < fb.nlogs; i++){
		if(!needle || strstr(fb.logs[i].text, needle)) n++;
	}
	return n;
}

const char *fb_log_find(const char *needle)
{
	size_t i;

	for(i = 0; i < fb.nlogs; i++){
		if(!needle || strstr(fb.logs[i].text, needle)) return fb.logs[i].text;
	}
	return NULL;
}

const struct fb_pub *fb_pub_last(const char *topic)
{
	size_t i;

	for(i = fb.npubs; i-- > 0;){
		if(!strcmp(fb.pubs[i].topic, topic)) return &fb.pubs[i];
	}
	return NULL;
}

void fb_dump_logs(void)
{
	size_t i;

	for(i = 0; i < fb.nlogs; i++) fprintf(stderr, "  log[%zu] %d: %s\n", i, fb.logs[i].level, fb.logs[i].text);
}

void fb_clear(void)
{
	size_t i;

	for(i = 0; i < fb.nlogs; i++) free(fb.logs[i].text);
	for(i = 0; i < fb.npubs; i++){
		free(fb.pubs[i].topic);
		free(fb.pubs[i].payload);
	}
	for(i = 0; i < fb.nkicks; i++) free(fb.kicks[i]);
	for(i = 0; i < fb.ndone; i++) free(fb.done[i].client_id);
	free(fb.logs);
	free(fb.pubs);
	free(fb.kicks);
	free(fb.done);
	fb.logs = NULL;
	fb.pubs = NULL;
	fb.kicks = NULL;
	fb.done = NULL;
	fb.nlogs = fb.caplogs = fb.npubs = fb.cappubs = fb.nkicks = fb.capkicks = fb.ndone = fb.capdone = 0;
}
