/* rdkconf.c -- the one librdkafka configuration builder (bootstrap, SASL, kafka.<property>), its
 * validation for configuration parsing, and client creation with signals blocked. */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "kitgate/rdkconf.h"

const struct kg_rdkconf_prop kg_rdkconf__producer_defaults[] = {
	{"client.id", "kitgate"},
	{"acks", "all"},
	{"enable.idempotence", "true"},
	{"message.timeout.ms", "0"},
	{"linger.ms", "5"},
	{"batch.num.messages", "1000"},
	{"socket.keepalive.enable", "true"},
};
const size_t kg_rdkconf__nproducer_defaults =
	sizeof(kg_rdkconf__producer_defaults) / sizeof(kg_rdkconf__producer_defaults[0]);

/* librdkafka's reasons may span lines; an error here is always one line. */
static void one_line(char *s)
{
	for(; *s; s++){
		if(*s == '\n' || *s == '\r') *s = ' ';
	}
}

/* Set one property; on failure writes "<prefix><name>: <reason>" into err. 0 or -1. */
static int conf_set_as(rd_kafka_conf_t *conf, const char *prefix, const char *name, const char *value,
		char *err, size_t errlen)
{
	char why[256];

	if(rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK) return 0;
	one_line(why);
	if(err && errlen) snprintf(err, errlen, "%s%s: %s", prefix, name, why);
	return -1;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err, size_t errlen)
{
	return conf_set_as(conf, "kafka property ", name, value, err, errlen);
}

/* Contract in rdkconf.h. */
rd_kafka_conf_t *kg_rdkconf__new(const struct kg_config *cfg, const struct kg_rdkconf_prop *defaults,
		size_t ndefaults, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf;
	size_t i;

	assert(cfg);
	assert(defaults || ndefaults == 0);
	if(err && errlen) err[0] = '\0';
	conf = rd_kafka_conf_new();
	if(!conf){
		if(err && errlen) snprintf(err, errlen, "kafka: out of memory");
		return NULL;
	}
	if(conf_set(conf, "bootstrap.servers", cfg->kafka_brokers ? cfg->kafka_brokers : "localhost:9092", err, errlen)) goto fail;
	for(i = 0; i < ndefaults; i++){
		if(conf_set(conf, defaults[i].name, defaults[i].value, err, errlen)) goto fail;
	}
	if(cfg->kafka_username){
		if(conf_set(conf, "security.protocol", "SASL_PLAINTEXT", err, errlen)) goto fail;
		if(conf_set(conf, "sasl.mechanisms", "PLAIN", err, errlen)) goto fail;
		if(conf_set(conf, "sasl.username", cfg->kafka_username, err, errlen)) goto fail;
		if(conf_set(conf, "sasl.password", cfg->kafka_password ? cfg->kafka_password : "", err, errlen)) goto fail;
	}
	for(i = 0; i < cfg->nkafka_props; i++){
		if(conf_set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, err, errlen)) goto fail;
	}
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Contract in rdkconf.h. rd_kafka_conf_set checks the name and the value's syntax and range; a
 * consumer-only property on this producer configuration is accepted here (librdkafka warns about
 * it when a producer is created). */
int kg_rdkconf__validate(const struct kg_config *cfg, char *err, size_t errlen)
{
	struct kg_config base = *cfg;
	rd_kafka_conf_t *conf;
	size_t i;
	int rc = 0;

	base.kafka_props = NULL;
	base.nkafka_props = 0;
	conf = kg_rdkconf__new(&base, kg_rdkconf__producer_defaults, kg_rdkconf__nproducer_defaults, err, errlen);
	if(!conf) return -1;
	for(i = 0; i < cfg->nkafka_props && rc == 0; i++){
		rc = conf_set_as(conf, "kitgate: librdkafka refuses option kafka.", cfg->kafka_props[i].key,
				cfg->kafka_props[i].value, err, errlen);
	}
	rd_kafka_conf_destroy(conf);
	return rc;
}

/* Contract in rdkconf.h. */
rd_kafka_t *kg_rdkconf__create(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err, size_t errlen)
{
	sigset_t all, old;
	char why[512];
	rd_kafka_t *rk;

	assert(conf);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rk = rd_kafka_new(type, conf, why, sizeof(why));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(!rk && err && errlen){
		snprintf(err, errlen, "cannot create %s: %s", type == RD_KAFKA_PRODUCER ? "producer" : "consumer", why);
	}
	return rk;
}
