/* kafka.h -- the Kafka producer used by the plugin's worker (kit measurements and bridge routes).
 *
 * Threads: a kg_kafka belongs to the worker thread; delivery reports are delivered from
 * kg_kafka__poll on that thread. librdkafka's own threads are started with all signals blocked. */
#ifndef KITGATE_KAFKA_H
#define KITGATE_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/config.h"

struct kg_kafka;

/* Called from kg_kafka__poll/flush for every produced message: err is 0 on success, else a
 * librdkafka error code (rd_kafka_resp_err_t) and errstr its text. */
typedef void (*kg_kafka_dr_fn)(void *opaque, int err, const char *errstr, void *ud);

/* Build a producer from cfg: bootstrap servers, SASL PLAIN when kafka_username is set, defaults
 * acks=all, enable.idempotence=true, message.timeout.ms=0 (retry until delivered), then every
 * kafka.<property> verbatim (overriding the defaults). Does not wait for a broker.
 * Returns NULL and fills err on a bad property. */
struct kg_kafka *kg_kafka__new(const struct kg_config *cfg, kg_kafka_dr_fn dr, void *ud, char *err, size_t errlen);

/* Enqueue one message (copied). timestamp_ms 0 = now. header_mqtt_topic may be NULL (no header).
 * Returns 0; 1 when librdkafka's local queue is full (poll and try again); -1 when librdkafka
 * refuses this message (e.g. larger than message.max.bytes: it will never be accepted); -2 when
 * the producer itself is unusable (a fatal error, e.g. broken idempotence state): nothing more
 * can be produced until it is freed and created again. Errors are logged. Owning thread. */
int kg_kafka__produce(struct kg_kafka *k, const char *topic, const void *key, size_t keylen,
		const void *value, size_t valuelen, int64_t timestamp_ms, const char *header_mqtt_topic,
		void *opaque);

/* Whether the producer has hit a fatal error (see kg_kafka__produce's -2). */
int kg_kafka__fatal(struct kg_kafka *k);

/* Serve delivery reports, waiting up to timeout_ms. Returns the number served. */
int kg_kafka__poll(struct kg_kafka *k, int timeout_ms);

/* Messages produced but not yet reported. */
int kg_kafka__outq_len(struct kg_kafka *k);

/* Drop every message not yet delivered; each gets a delivery report with an error during the
 * following polls. Used to rewind to the spool after a failure. */
void kg_kafka__purge(struct kg_kafka *k);

/* Wait up to timeout_ms for outstanding deliveries. Returns 0 when none remain. */
int kg_kafka__flush(struct kg_kafka *k, int timeout_ms);

void kg_kafka__free(struct kg_kafka *k);

#endif
