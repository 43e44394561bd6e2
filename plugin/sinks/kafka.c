/* kafka.c -- the worker's Kafka producer (librdkafka): configuration, produce, delivery reports, purge. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <librdkafka/rdkafka.h>

#include "kitgate/kafka.h"
#include "kitgate/log.h"
#include "kitgate/rdkconf.h"

struct kg_kafka {
	rd_kafka_t *rk;
	kg_kafka_dr_fn dr;
	void *ud;
};

/* librdkafka log callback: runs on librdkafka's threads; forwards WARNING and worse to kg_log
 * (which any thread may call). Never calls mosquitto_*. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if(level > LOG_WARNING) return;
	kg_log(level <= LOG_ERR ? KG_LOG_ERROR : KG_LOG_WARNING, "kafka: %s: %s", fac, buf);
}

/* Error events, served by rd_kafka_poll on the owning thread. Transient errors (all brokers
 * down, ...) are warnings: librdkafka keeps retrying; transport errors are skipped because
 * log_cb already shows them (facility FAIL). A fatal error (idempotence state broken)
 * makes every later produce fail; it is logged as an error. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)opaque;
	if(err == RD_KAFKA_RESP_ERR__FATAL){
		char why[256];
		rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));

		kg_log(KG_LOG_ERROR, "kafka: fatal error %s: %s", rd_kafka_err2name(orig), why);
		return;
	}
	if(err == RD_KAFKA_RESP_ERR__TRANSPORT) return;
	kg_log(KG_LOG_WARNING, "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Delivery report: one per produced message, served by rd_kafka_poll/flush on the owning
 * thread. Passes the per-message opaque given to kg_kafka__produce to the user's callback. */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kg_kafka *k = opaque;

	(void)rk;
	assert(k);
	if(!k->dr) return;
	k->dr(m->_private, (int)m->err, m->err ? rd_kafka_err2str(m->err) : "", k->ud);
}

/* Contract in kafka.h. The configuration comes from kg_rdkconf__new (rdkconf.c): the defaults
 * first and every kafka.<property> after them, so a property given in the configuration always
 * wins (e.g. kafka.security.protocol SASL_SSL). Call on the thread that will own the producer (it
 * serves the callbacks); librdkafka's threads are created with every signal blocked
 * (kg_rdkconf__create) so the broker's SIGTERM/SIGHUP/SIGINT are never delivered to them. */
struct kg_kafka *kg_kafka__new(const struct kg_config *cfg, kg_kafka_dr_fn dr, void *ud, char *err, size_t errlen)
{
	struct kg_kafka *k;
	rd_kafka_conf_t *conf;
	char why[512];

	assert(cfg);
	if(err && errlen) err[0] = '\0';
	k = calloc(1, sizeof(*k));
	if(!k){
		if(err && errlen) snprintf(err, errlen, "kafka: out of memory");
		return NULL;
	}
	k->dr = dr;
	k->ud = ud;

	conf = kg_rdkconf__new(cfg, kg_rdkconf__producer_defaults, kg_rdkconf__nproducer_defaults, err, errlen);
	if(!conf){
		free(k);
		return NULL;
	}
	rd_kafka_conf_set_opaque(conf, k);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);

	k->rk = kg_rdkconf__create(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if(!k->rk){
		/* conf is still ours on failure */
		if(err && errlen) snprintf(err, errlen, "kafka: %s", why);
		rd_kafka_conf_destroy(conf);
		free(k);
		return NULL;
	}
	return k;
}

/* Contract in kafka.h. The value, key and header are copied by librdkafka. */
int kg_kafka__produce(struct kg_kafka *k, const char *topic, const void *key, size_t keylen,
		const void *value, size_t valuelen, int64_t timestamp_ms, const char *header_mqtt_topic,
		void *opaque)
{
	rd_kafka_vu_t vu[7];
	size_t n = 0;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t code;

	assert(k && k->rk && topic);
	vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[n++].u.cstr = topic;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n].u.mem.ptr = (void *)key;
	vu[n++].u.mem.size = key ? keylen : 0;
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n].u.mem.ptr = (void *)value;
	vu[n++].u.mem.size = value ? valuelen : 0;
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
	vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
	vu[n++].u.i64 = timestamp_ms > 0 ? timestamp_ms : 0;
	if(header_mqtt_topic){
		vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
		vu[n].u.header.name = "mqtt_topic";
		vu[n].u.header.val = header_mqtt_topic;
		vu[n++].u.header.size = (ssize_t)strlen(header_mqtt_topic);
	}
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = opaque;
	assert(n <= sizeof(vu) / sizeof(vu[0]));

	error = rd_kafka_produceva(k->rk, vu, n);
	if(!error) return 0;
	code = rd_kafka_error_code(error);
	if(code == RD_KAFKA_RESP_ERR__QUEUE_FULL){
		rd_kafka_error_destroy(error);
		return 1;
	}
	kg_log(KG_LOG_ERROR, "kafka: produce to %s failed: %s", topic, rd_kafka_error_string(error));
	rd_kafka_error_destroy(error);
	return kg_kafka__fatal(k) ? -2 : -1;
}

/* Contract in kafka.h. */
int kg_kafka__fatal(struct kg_kafka *k)
{
	assert(k && k->rk);
	return rd_kafka_fatal_error(k->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Test-only (declared by the tests themselves, not in kafka.h): put the producer into the fatal
 * state an idempotence failure would leave it in. */
void kg_kafka__test_fatal(struct kg_kafka *k);
void kg_kafka__test_fatal(struct kg_kafka *k)
{
	rd_kafka_test_fatal_error(k->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "kitgate test");
}

/* Contract in kafka.h. */
int kg_kafka__poll(struct kg_kafka *k, int timeout_ms)
{
	assert(k && k->rk);
	return rd_kafka_poll(k->rk, timeout_ms);
}

/* Contract in kafka.h. Counts queued, in-flight and reported-but-unserved messages (and the
 * few other events librdkafka queues). */
int kg_kafka__outq_len(struct kg_kafka *k)
{
	assert(k && k->rk);
	return rd_kafka_outq_len(k->rk);
}

/* Contract in kafka.h. */
void kg_kafka__purge(struct kg_kafka *k)
{
	rd_kafka_resp_err_t rc;

	assert(k && k->rk);
	rc = rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	if(rc) kg_log(KG_LOG_WARNING, "kafka: purge: %s", rd_kafka_err2str(rc));
}

/* Contract in kafka.h. Returns 0 when nothing is outstanding, else the number still
 * outstanding. */
int kg_kafka__flush(struct kg_kafka *k, int timeout_ms)
{
	assert(k && k->rk);
	rd_kafka_flush(k->rk, timeout_ms);
	return rd_kafka_outq_len(k->rk);
}

/* Contract in kafka.h. Messages still undelivered are purged and dropped WITHOUT delivery
 * reports: flush, or purge and poll, first if their fate matters. Owning thread; NULL is a
 * no-op. */
void kg_kafka__free(struct kg_kafka *k)
{
	if(!k) return;
	if(k->rk){
		k->dr = NULL; /* no callbacks into a caller that is tearing down */
		rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(k->rk, 0); /* serve (and ignore) the purge reports already queued */
		rd_kafka_destroy(k->rk);
	}
	free(k);
}
