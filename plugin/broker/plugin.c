/* plugin.c -- mosquitto entry points: version negotiation, init (config, the two streams --
 * measurements and bridge routes, each with its spool, hand-off, sink and worker -- callbacks)
 * and cleanup (drain with a deadline, join, free). Main thread only. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker_api.h"

#include "kitgate/brokerinfo.h"
#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/handoff.h"
#include "kitgate/sink.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"
#include "kitgate_internal.h"

#define EXPORT __attribute__((visibility("default")))
#define KG_STR2(x) #x
#define KG_STR(x) KG_STR2(x)

/* The tick cadence asked of 2.1 (2.0 ticks every 100 ms by itself and ignores the wish): the
 * outbox, the live view, the status and the kits snapshot all assume about 2.0's 100 ms. */
#define KG_TICK_MS 100

/* The plugin API versions the broker offered in mosquitto_plugin_version (for the start line). */
static char offered_versions[64];

static int on_tick(int event, void *event_data, void *userdata)
{
	long wish;

	(void)event;
	kg_outbox__drain(0);
	kg_acl__tick(userdata);    /* the events module: a pending will, client-id owner, kit logins */
	kg_auth__tick(userdata);   /* completes delayed logins whose check came back (2.1) */
	kg_status__tick(userdata);
	kg_live__tick(userdata);
	/* 2.1 ticks only when asked (broker_api.h): every loop iteration and at the latest every
	 * KG_TICK_MS, sooner (a few ms) while delayed logins are pending. 2.0 ignores it. */
	wish = kg_auth__tick_wish_ms(userdata);
	kg_broker__tick_next(event_data, wish > 0 && wish < KG_TICK_MS ? wish : KG_TICK_MS);
	return MOSQ_ERR_SUCCESS;
}

/* Options are not reloadable in 2.0.x; returning anything but DEFER would stop the other
 * plugins' RELOAD callbacks and, on error, the re-registration of password_file/acl_file. */
static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	return MOSQ_ERR_PLUGIN_DEFER;
}

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, kg_acl__on_basic_auth },
	{ MOSQ_EVT_ACL_CHECK, kg_acl__on_check },
	{ MOSQ_EVT_MESSAGE_IN, kg_message__on_message },
	{ MOSQ_EVT_TICK, on_tick },
	{ MOSQ_EVT_RELOAD, on_reload },
	{ MOSQ_EVT_DISCONNECT, kg_acl__on_disconnect },
};
#define NCALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

static void plugin_free(struct kg_plugin *p)
{
	size_t i;

	for(i = 0; i < NCALLBACKS; i++){
		mosquitto_callback_unregister(p->pid, callbacks[i].event, callbacks[i].cb, NULL);
	}
	if(p->broker.api21) mosquitto_callback_unregister(p->pid, KG_MOSQ_EVT_CONNECT, kg_acl__on_connect, NULL);
	if(p->broker.api21) mosquitto_callback_unregister(p->pid, KG_MOSQ_EVT_CLIENT_OFFLINE, kg_acl__on_disconnect, NULL);
	kg_acl__cleanup(p); /* first: a will sent at shutdown still goes into its stream */
	kg_live__cleanup(p);
	/* Stop both workers first (each drains within shutdown_timeout_ms, concurrently), then free. */
	for(i = 0; i < KG_STREAM_COUNT; i++){
		if(p->streams[i].worker && p->streams[i].h) kg_handoff__stop(p->streams[i].h);
	}
	for(i = 0; i < KG_STREAM_COUNT; i++){
		struct kg_stream *st = &p->streams[i];
		kg_worker__free(st->worker);
		kg_handoff__free(st->h);
		if(st->spool) kg_spool__close(st->spool);
	}
	kg_auth__cleanup(p);
	kg_outbox__cleanup();
	kg_config__free(&p->cfg);
	free(p);
}

static bool spool_enabled(const struct kg_config *cfg)
{
	return strcmp(cfg->spool_dir, "off") != 0;
}

/* The single-stream layout kept segments and the checkpoint directly in spool_dir: move them
 * into spool_dir/measurements (unless that already holds a spool), so the measurement stream
 * replays them. A bridge record among them is settled there with a counted warning (worker.c).
 * Returns 0 or -errno. Main thread, before the spools are opened. */
static int adopt_old_layout(const char *dir, const char *sub, const char **what)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct dirent *de;
	DIR *d, *dsub;
	size_t moved = 0;
	int rc = 0;

	snprintf(to, sizeof(to), "%s/%s", dir, sub);
	dsub = opendir(to);
	if(dsub){
		while((de = readdir(dsub))){
			size_t n = strlen(de->d_name);
			if(n > 4 && !strcmp(de->d_name + n - 4, ".kgs")){
				closedir(dsub);
				return 0; /* the new layout is in use already */
			}
		}
		closedir(dsub);
	}
	*what = "";
	d = opendir(dir);
	if(!d) return errno == ENOENT ? 0 : -errno;
	*what = " (moving the single-stream layout into its measurements directory)";
	while((de = readdir(d))){
		size_t n = strlen(de->d_name);
		if(!(n > 4 && !strcmp(de->d_name + n - 4, ".kgs")) && strcmp(de->d_name, "checkpoint")) continue;
		if(mkdir(to, 0700) != 0 && errno != EEXIST){
			rc = -errno;
			break;
		}
		snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
		snprintf(to, sizeof(to), "%s/%s/%s", dir, sub, de->d_name);
		if(rename(from, to) != 0){
			rc = -errno;
			break;
		}
		snprintf(to, sizeof(to), "%s/%s", dir, sub);
		moved++;
	}
	closedir(d);
	if(moved) kg_log(KG_LOG_INFO, "spool_dir %s: adopted %zu file(s) of the single-stream layout into "
			"%s/%s (replayed by the measurement stream)", dir, moved, dir, sub);
	return rc;
}

/* Open one stream: its spool (spool_dir/<name>), hand-off, sink and worker, and start it.
 * Returns MOSQ_ERR_SUCCESS, or an error after logging ONE line naming the problem. */
static int stream_open(struct kg_plugin *p, enum kg_stream_id id)
{
	struct kg_stream *st = &p->streams[id];
	const struct kg_config *cfg = &p->cfg;
	struct kg_worker_config wc;
	struct kg_sink sink = { 0 };
	char path[PATH_MAX], err[512];
	const char *what = "";
	int rc;

	st->name = id == KG_STREAM_MEASUREMENTS ? "measurements" : "bridge";
	if(spool_enabled(cfg)){
		if((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, st->name) >= sizeof(path)){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: spool_dir %s is unusable: path too long", cfg->spool_dir);
			return MOSQ_ERR_INVAL;
		}
		if(mkdir(cfg->spool_dir, 0700) != 0 && errno != EEXIST){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: spool_dir %s is unusable: %s", cfg->spool_dir, strerror(errno));
			return MOSQ_ERR_INVAL;
		}
		if(id == KG_STREAM_MEASUREMENTS && (rc = adopt_old_layout(cfg->spool_dir, st->name, &what)) != 0){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: spool_dir %s is unusable: %s%s",
					cfg->spool_dir, strerror(-rc), what);
			return MOSQ_ERR_INVAL;
		}
		rc = kg_spool__open(&st->spool, path, cfg->spool_segment_bytes);
		if(rc != 0){
			st->spool = NULL;
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: spool_dir %s is unusable (%s stream, %s): %s; "
					"not starting (set plugin_opt_spool_dir off to run memory-only)", cfg->spool_dir,
					st->name, path, strerror(-rc));
			return MOSQ_ERR_INVAL;
		}
	}
	st->h = kg_handoff__new(cfg->queue_limit, st->spool);
	if(!st->h) return MOSQ_ERR_NOMEM;
	if(id == KG_STREAM_BRIDGE || cfg->sink == KG_SINK_KAFKA) rc = kg_sink_kafka__new(&sink, cfg, err, sizeof(err));
	else if(cfg->sink == KG_SINK_POSTGRES) rc = kg_sink_pg__new(&sink, cfg, err, sizeof(err));
	else rc = kg_sink_none__new(&sink, err, sizeof(err));
	if(rc != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: %s stream: %s", st->name, err);
		return MOSQ_ERR_INVAL;
	}
	memset(&wc, 0, sizeof(wc));
	wc.name = st->name;
	wc.kinds = id == KG_STREAM_BRIDGE ? KG_WORKER_KIND(KG_KIND_BRIDGE)
			: KG_WORKER_KIND(KG_KIND_RAW) | KG_WORKER_KIND(KG_KIND_AGGREGATE);
	wc.batch_size = cfg->batch_size;
	wc.batch_ms = cfg->batch_ms;
	wc.shutdown_timeout_ms = cfg->shutdown_timeout_ms;
	st->worker = kg_worker__new(&wc, st->spool, st->h, &sink);
	if(!st->worker || kg_worker__start(st->worker) != 0) return MOSQ_ERR_NOMEM;
	return MOSQ_ERR_SUCCESS;
}

EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	size_t used = 0;
	bool has5 = false;
	int i;

	offered_versions[0] = '\0';
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) has5 = true;
		if(used < sizeof(offered_versions)){
			int n = snprintf(offered_versions + used, sizeof(offered_versions) - used, "%s%d",
					i ? "," : "", supported_versions[i]);
			if(n > 0) used += (size_t)n;
		}
	}
	if(has5) return 5;
	/* Before any callback exists, and mosquitto_log_printf may not be there in such a broker:
	 * stderr, which mosquitto (run in the foreground or by systemd) passes on. */
	fprintf(stderr, "kitgate: this broker offers plugin API version(s) %s, kitgate needs version 5 "
			"(mosquitto 2.0 or later): upgrade mosquitto to 2.0.x or 2.1.x to load kitgate\n",
			offered_versions[0] ? offered_versions : "(none)");
	return -1;
}

/* One line at start: which broker this is and what kitgate uses of it. */
static void log_broker(const struct kg_plugin *p)
{
	struct kg_brokerinfo bi = p->broker;
	char delayed[160];

	if(p->auth.pool){
		snprintf(delayed, sizeof(delayed), "used: PBKDF2 on %d auth thread(s), logins completed in TICK", p->auth.threads);
	}else{
		snprintf(delayed, sizeof(delayed), "%s (logins hashed on the broker thread under the cold-login budget)",
				bi.delayed_auth ? (p->cfg.auth == KG_AUTH_POSTGRES ? "available, not used" : "available, not needed (auth none)")
				: "not available");
	}

	kg_log(KG_LOG_INFO, "broker: mosquitto %s (plugin API 5 of offered %s; %s plugin functions; kitgate "
			"built against %s headers %s): ticks %s; delayed basic auth %s; connect/offline events %s",
			bi.version, offered_versions[0] ? offered_versions : "?", bi.api21 ? "2.1" : "2.0",
#ifdef KG_MOSQ_HEADERS_21
			"2.1",
#else
			"2.0",
#endif
			KG_MOSQ_HEADERS_VERSION,
			bi.api21 ? "every loop iteration and at the latest every " KG_STR(KG_TICK_MS) " ms (asked of 2.1 with next_s/next_ms)" : "every loop iteration and at least every 100 ms (the broker's own cadence)",
			delayed,
			bi.api21 ? "CONNECT brings kits online and records client-id owners, CLIENT_OFFLINE handled like DISCONNECT (persistent sessions)"
					: "not available (inferred from callbacks)");
}

/* Fails (stopping the broker) on a malformed option, an unusable spool_dir (including one locked
 * by another broker) or out of memory, never because PostgreSQL or Kafka is unreachable: the
 * workers keep retrying those. */
EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	struct kg_plugin *p;
	char err[512];
	size_t i;
	int rc;

	p = calloc(1, sizeof(*p));
	if(!p) return MOSQ_ERR_NOMEM;
	p->pid = identifier;
	p->main_thread = pthread_self();
	kg_brokerinfo__detect(&p->broker);
	/* 2.1 (found at run time: the Debian package is built against 2.0 headers) drops a publish with
	 * MOSQ_ERR_QUOTA_EXCEEDED (v5 0x97); 2.0 would disconnect on it, so there 0x87. */
	p->quota_rc = p->broker.delayed_auth ? KG_MOSQ_ERR_QUOTA_EXCEEDED : MOSQ_ERR_ACL_DENIED;
	/* struct mosquitto_opt and struct kg_opt have the same layout (char *key, char *value). */
	if(kg_config__parse(&p->cfg, (const struct kg_opt *)options, option_count, err, sizeof(err)) != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "%s", err);
		free(p);
		return MOSQ_ERR_INVAL;
	}
	if(kg_outbox__init(p->cfg.log_level) != 0){
		kg_config__free(&p->cfg);
		free(p);
		return MOSQ_ERR_NOMEM;
	}
	/* Measurements are handed off unless sink none; bridge routes have their own stream. */
	if(p->cfg.sink != KG_SINK_NONE && (rc = stream_open(p, KG_STREAM_MEASUREMENTS)) != MOSQ_ERR_SUCCESS){
		plugin_free(p);
		return rc;
	}
	if(p->cfg.nbridge_topics > 0 && (rc = stream_open(p, KG_STREAM_BRIDGE)) != MOSQ_ERR_SUCCESS){
		plugin_free(p);
		return rc;
	}
	kg_ingest__init(&p->ingest, &p->cfg, p->streams[KG_STREAM_MEASUREMENTS].h, p->streams[KG_STREAM_BRIDGE].h);
	p->ingest.check = kg_message__check; /* auth postgres: the kits snapshot's ownership rules */
	p->ingest.check_ud = p;
	if(kg_acl__init(p) != 0 || (rc = kg_auth__init(p)) == -1){
		plugin_free(p);
		return MOSQ_ERR_NOMEM;
	}
	if(rc == -2){      /* an option this broker cannot honour (auth_threads on 2.0), logged */
		plugin_free(p);
		return MOSQ_ERR_INVAL;
	}
	if(kg_live__init(p) != 0){
		plugin_free(p);
		return MOSQ_ERR_NOMEM;
	}
	for(i = 0; i <= NCALLBACKS; i++){
		/* the extra round: on 2.1, a persistent session going offline is CLIENT_OFFLINE, not
		 * DISCONNECT (broker_api.h); 2.0 sends DISCONNECT for it */
		int event = i < NCALLBACKS ? callbacks[i].event : KG_MOSQ_EVT_CLIENT_OFFLINE;
		if(i == NCALLBACKS && !p->broker.api21) break;
		rc = mosquitto_callback_register(p->pid, event, i < NCALLBACKS ? callbacks[i].cb : kg_acl__on_disconnect, NULL, p);
		if(rc != MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: cannot register callback for event %d", event);
			plugin_free(p);
			return rc;
		}
	}
	/* 2.1: a successful login (a delayed one too) raises CONNECT, which records the client id's
	 * owner and brings a kit online (acl.c, events.h); 2.0 has no such event. */
	if(p->broker.api21 && (rc = mosquitto_callback_register(p->pid, KG_MOSQ_EVT_CONNECT, kg_acl__on_connect,
			NULL, p)) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: cannot register the CONNECT callback (mosquitto 2.1)");
		plugin_free(p);
		return rc;
	}
	log_broker(p);
	kg_log(KG_LOG_INFO, "kitgate %s loaded: sink %s (%d connection(s)), bridge routes %zu, %zu service "
			"user(s), other topics %s, queue_limit %zu per stream, spool %s", "0.2.0",
			kg_config__sink_name(p->cfg.sink), p->cfg.sink == KG_SINK_POSTGRES ? p->cfg.pg_connections : 1,
			p->cfg.nbridge_topics, p->cfg.nservice_users,
			p->cfg.other_topics == KG_OTHER_ALLOW ? "allowed" :
			p->cfg.other_topics == KG_OTHER_DENY ? "denied" : "deferred",
			p->cfg.queue_limit, spool_enabled(&p->cfg) ? p->cfg.spool_dir : "off (memory only)");
	*userdata = p;
	return MOSQ_ERR_SUCCESS;
}

/* Runs after every client is gone: drains within shutdown_timeout_ms, leaves the rest in the
 * spool (replayed at the next start), joins the worker. */
EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	struct kg_plugin *p = userdata;

	(void)options;
	(void)option_count;
	if(!p) return MOSQ_ERR_SUCCESS;
	kg_log(KG_LOG_INFO, "stopping: draining for up to %d ms", p->cfg.shutdown_timeout_ms);
	plugin_free(p);
	return MOSQ_ERR_SUCCESS;
}
