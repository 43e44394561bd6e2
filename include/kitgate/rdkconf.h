/* rdkconf.h -- the one librdkafka configuration builder: bootstrap servers, SASL and the
 * kafka.<property> options of a kg_config, shared by the plugin's producer (kafka.c) and the
 * Kafka connector's consumer. Pure configuration work: no client, no network. */
#ifndef KITGATE_RDKCONF_H
#define KITGATE_RDKCONF_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "kitgate/config.h"

/* One librdkafka property with its value. */
struct kg_rdkconf_prop {
	const char *name;
	const char *value;
};

/* The defaults kitgate's producer runs with (acks=all, idempotence, retry forever, ...). */
extern const struct kg_rdkconf_prop kg_rdkconf__producer_defaults[];
extern const size_t kg_rdkconf__nproducer_defaults;

/* A new librdkafka configuration for cfg, set in this order so that a later setting wins:
 * bootstrap.servers (cfg->kafka_brokers, default "localhost:9092"); the caller's role defaults
 * (may be NULL/0); SASL PLAIN over plaintext when cfg->kafka_username is set; every
 * kafka.<property> verbatim. Returns the configuration (the caller owns it: rd_kafka_new takes
 * it, or rd_kafka_conf_destroy), or NULL with one line "kafka property <name>: <reason>" (or
 * out of memory) in err. Any thread. */
rd_kafka_conf_t *kg_rdkconf__new(const struct kg_config *cfg, const struct kg_rdkconf_prop *defaults,
		size_t ndefaults, char *err, size_t errlen);

/* Whether every kafka.<property> of cfg is a property librdkafka knows, with a value it accepts
 * (e.g. refuses kafka.acks=banana), checked with the producer defaults in place, without creating
 * a client. Returns 0, or -1 with one line naming the option and the reason in err. Any thread. */
int kg_rdkconf__validate(const struct kg_config *cfg, char *err, size_t errlen);

/* rd_kafka_new with every signal blocked while librdkafka starts its threads, so that the
 * process's SIGTERM/SIGINT/SIGHUP are never delivered to them. Takes conf on success; on failure
 * conf is still the caller's and err holds "cannot create <producer|consumer>: <reason>".
 * Call on the thread that will serve the client's callbacks. */
rd_kafka_t *kg_rdkconf__create(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err, size_t errlen);

#endif
