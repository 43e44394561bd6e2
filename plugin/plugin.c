/* plugin.c -- mosquitto entry points: version negotiation, init (config, spool, worker,
 * callbacks) and cleanup (drain with a deadline, join, free). Main thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/spool.h"
#include "kitgate_internal.h"

#define EXPORT __attribute__((visibility("default")))

static int on_tick(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	kg_outbox__drain(0);
	kg_auth__tick(userdata);
	kg_status__tick(userdata);
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
	{ MOSQ_EVT_MESSAGE, kg_message__on_message },
	{ MOSQ_EVT_TICK, on_tick },
	{ MOSQ_EVT_RELOAD, on_reload },
};
#define NCALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

static void plugin_free(struct kg_plugin *p)
{
	size_t i;

	for(i = 0; i < NCALLBACKS; i++){
		mosquitto_callback_unregister(p->pid, callbacks[i].event, callbacks[i].cb, NULL);
	}
	kg_worker__stop(p);
	kg_auth__cleanup(p);
	kg_handoff__destroy(&p->handoff);
	if(p->spool) kg_spool__close(p->spool);
	kg_outbox__cleanup();
	kg_config__free(&p->cfg);
	free(p);
}

EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

/* Fails (stopping the broker) only on a malformed option or out of memory, never because
 * PostgreSQL or Kafka is unreachable: the worker keeps retrying those. An unusable or locked
 * spool_dir (another broker uses it) stops the broker too, with one line naming it. */
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
	p->limits.max_payload = p->cfg.max_payload;
	p->limits.max_clock_skew_ms = p->cfg.max_clock_skew_s * 1000;
	p->handing_off = p->cfg.sink != KG_SINK_NONE || p->cfg.nbridge_topics > 0;

	if(p->handing_off){
		rc = kg_spool__open(&p->spool, p->cfg.spool_dir, p->cfg.spool_segment_bytes);
		if(rc != 0){
			/* kg_spool__open logged one line naming the directory and why (locked by pid N,
			 * not a directory, not writable): refuse to start rather than run without durability */
			kg_outbox__cleanup();
			kg_config__free(&p->cfg);
			free(p);
			return MOSQ_ERR_UNKNOWN;
		}
	}
	if(kg_handoff__init(&p->handoff, p->cfg.queue_limit, p->spool) != 0){
		if(p->spool) kg_spool__close(p->spool);
		kg_outbox__cleanup();
		kg_config__free(&p->cfg);
		free(p);
		return MOSQ_ERR_NOMEM;
	}
	if(p->handing_off && kg_worker__start(p) != 0){
		plugin_free(p);
		return MOSQ_ERR_NOMEM;
	}
	if(kg_auth__init(p) != 0){
		plugin_free(p);
		return MOSQ_ERR_NOMEM;
	}
	for(i = 0; i < NCALLBACKS; i++){
		rc = mosquitto_callback_register(p->pid, callbacks[i].event, callbacks[i].cb, NULL, p);
		if(rc != MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: cannot register callback for event %d",
					callbacks[i].event);
			plugin_free(p);
			return rc;
		}
	}
	kg_log(KG_LOG_INFO, "kitgate %s loaded: sink %s, %zu service user(s), other topics %s, "
			"queue_limit %zu, spool %s", "0.1.0",
			p->cfg.sink == KG_SINK_POSTGRES ? "postgres" : p->cfg.sink == KG_SINK_KAFKA ? "kafka" : "none",
			p->cfg.nservice_users,
			p->cfg.other_topics == KG_OTHER_ALLOW ? "allowed" :
			p->cfg.other_topics == KG_OTHER_DENY ? "denied" : "deferred",
			p->cfg.queue_limit, p->spool ? p->cfg.spool_dir : "disabled");
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
