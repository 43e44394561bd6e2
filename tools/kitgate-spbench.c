/* kitgate-spbench.c -- Sparkplug B benchmark: decoder alone, kg_bridge__transform alone, and end to
 * end through a running broker + kitgate bridge route to Kafka (see --help). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <mosquitto.h>

#include "sparkplug_b.pb-c.h"
#include "kitgate/bridge.h"
#include "kitgate/config.h"
#include "kitgate/sparkplug.h"

typedef Org__Eclipse__Tahu__Protobuf__Payload SpPayload;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Metric SpMetric;
#define MV(x) ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_##x
#define NMETRICS 10

static void usage(FILE *f)
{
	fprintf(f,
"usage: kitgate-spbench decode|transform [--seconds S]\n"
"       kitgate-spbench e2e -p PORT -b BOOTSTRAP [--messages N] [--json] [--qos Q]\n"
"\n"
"The message is a DDATA of %d metrics (Double, Int32 < 0, Boolean, String, Int64, Float, UInt32,\n"
"DateTime, Int16Array, Bytes; each with name, alias and timestamp): %s bytes of protobuf.\n"
"  decode      kg_sparkplug__to_json in a loop on one thread for S seconds (default 3)\n"
"  transform   kg_bridge__transform (bridge_topics spBv1.0/#): decode + timestamp + serialise,\n"
"              the worker thread's share of a bridged Sparkplug message\n"
"  e2e         publish N messages (default 20000, QoS 1, window 1000) to a running broker with\n"
"              kitgate bridging spBv1.0/# to Kafka, consume them from Kafka, report messages/s\n"
"              from the first publish to the last message consumed; --json publishes the\n"
"              decoded JSON text on uns/bench/... instead (plain JSON through the same bridge)\n"
"Numbers are wall clock on a possibly busy machine.\n", NMETRICS, "~330");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The benchmark payload, packed into *len malloc'd bytes. */
static uint8_t *bench_payload(size_t *len, uint64_t seq)
{
	static const char *const names[NMETRICS] = {"line/pressure", "line/temp_offset", "line/running",
		"line/state", "line/counter", "line/flow", "line/rpm", "line/last_service", "line/vibration",
		"line/blob"};
	static const uint32_t dts[NMETRICS] = {10, 3, 11, 12, 4, 9, 7, 13, 23, 17};
	static const uint8_t arr[] = {0x18, 0xFC, 0x10, 0x27, 0x00, 0x80, 0xFF, 0x7F};
	SpPayload pl = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__INIT;
	SpMetric m[NMETRICS];
	SpMetric *mp[NMETRICS];
	uint8_t *buf;
	int i;

	for(i = 0; i < NMETRICS; i++){
		SpMetric init = ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__INIT;

		m[i] = init;
		m[i].name = (char *)names[i];
		m[i].has_alias = 1;
		m[i].alias = (uint64_t)i;
		m[i].has_timestamp = 1;
		m[i].timestamp = 1700000000000ull + seq;
		m[i].has_datatype = 1;
		m[i].datatype = dts[i];
		mp[i] = &m[i];
	}
	m[0].value_case = MV(DOUBLE_VALUE); m[0].double_value = 1013.25;
	m[1].value_case = MV(INT_VALUE); m[1].int_value = (uint32_t)-42;
	m[2].value_case = MV(BOOLEAN_VALUE); m[2].boolean_value = 1;
	m[3].value_case = MV(STRING_VALUE); m[3].string_value = "RUNNING";
	m[4].value_case = MV(LONG_VALUE); m[4].long_value = 123456789012ull + seq;
	m[5].value_case = MV(FLOAT_VALUE); m[5].float_value = 12.5f;
	m[6].value_case = MV(INT_VALUE); m[6].int_value = 1450;
	m[7].value_case = MV(LONG_VALUE); m[7].long_value = 1690000000000ull;
	m[8].value_case = MV(BYTES_VALUE); m[8].bytes_value.data = (uint8_t *)arr; m[8].bytes_value.len = sizeof arr;
	m[9].value_case = MV(BYTES_VALUE); m[9].bytes_value.data = (uint8_t *)"\x01\x02\x03\x04\x05\x06"; m[9].bytes_value.len = 6;
	pl.has_timestamp = 1;
	pl.timestamp = 1700000000000ull + seq;
	pl.has_seq = 1;
	pl.seq = seq % 256;
	pl.n_metrics = NMETRICS;
	pl.metrics = mp;
	*len = org__eclipse__tahu__protobuf__payload__get_packed_size(&pl);
	buf = malloc(*len);
	if(!buf) abort();
	org__eclipse__tahu__protobuf__payload__pack(&pl, buf);
	return buf;
}

static int run_local(int transform, double seconds)
{
	size_t len, jl = 0;
	uint8_t *p = bench_payload(&len, 1);
	uint64_t n = 0;
	double t0 = now_s(), t;
	struct kg_config cfg;
	struct kg_opt opts[2] = {{"bridge_topics", "spBv1.0/#"}, {"sink", "none"}};
	char err[256];

	if(kg_config__parse(&cfg, opts, 2, err, sizeof err)){
		fprintf(stderr, "spbench: %s\n", err);
		return 1;
	}
	do{
		for(int i = 0; i < 1000; i++){
			if(transform){
				const uint8_t *v;
				size_t vl;
				int owned;
				int64_t ts;

				if(kg_bridge__transform(&cfg, "spBv1.0/bench/DDATA/edge/dev", p, len, &v, &vl, &owned, &ts)
						|| !owned || ts != 1700000000001){
					fprintf(stderr, "spbench: transform failed\n");
					return 1;
				}
				jl = vl;
				free((void *)v);
			}else{
				char *json;

				if(kg_sparkplug__to_json(p, len, &json, &jl)){
					fprintf(stderr, "spbench: decode failed\n");
					return 1;
				}
				free(json);
			}
		}
		n += 1000;
		t = now_s() - t0;
	}while(t < seconds);
	printf("%s: %" PRIu64 " messages in %.2f s: %.0f msg/s (%zu bytes protobuf -> %zu bytes JSON, %.1f us/msg)\n",
			transform ? "kg_bridge__transform" : "kg_sparkplug__to_json", n, t, (double)n / t, len, jl,
			t / (double)n * 1e6);
	kg_config__free(&cfg);
	free(p);
	return 0;
}

/* ---- end to end ---- */

static atomic_uint_fast64_t acked;

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
	(void)m;
	(void)ud;
	(void)mid;
	atomic_fetch_add(&acked, 1);
}

static rd_kafka_t *consumer(const char *bootstrap, const char *topic)
{
	char err[256], gid[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_t *rk;

	snprintf(gid, sizeof gid, "spbench-%ld", (long)getpid());
	if(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err)
			|| rd_kafka_conf_set(conf, "group.id", gid, err, sizeof err)
			|| rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err)
			|| rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)
			|| rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", err, sizeof err)
			|| rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err)){
		fprintf(stderr, "spbench: kafka: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
	if(!rk){
		fprintf(stderr, "spbench: kafka: %s\n", err);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	return rk;
}

/* Consume until want messages arrived or timeout_s passed; returns how many. */
static uint64_t consume(rd_kafka_t *rk, uint64_t want, double timeout_s, size_t *last_len)
{
	uint64_t got = 0;
	double end = now_s() + timeout_s;

	while(got < want && now_s() < end){
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);

		if(!msg) continue;
		if(!msg->err){
			got++;
			*last_len = msg->len;
		}
		rd_kafka_message_destroy(msg);
	}
	return got;
}

static int run_e2e(int port, const char *bootstrap, uint64_t n, int json, int qos)
{
	const char *mqtt_topic = json ? "uns/bench/line/edge/dev" : "spBv1.0/bench/DDATA/edge/dev";
	char ktopic[250];
	struct mosquitto *mq;
	rd_kafka_t *rk;
	uint8_t *p;
	size_t len, klen = 0;
	char *text = NULL;
	double t0, t_pub, t1;
	uint64_t i, got;

	if(kg_bridge__kafka_topic(mqtt_topic, "_", ktopic) < 0) return 1;
	p = bench_payload(&len, 1);
	if(json){
		size_t tl;

		if(kg_sparkplug__to_json(p, len, &text, &tl)) return 1;
		free(p);
		p = (uint8_t *)text;
		len = tl;
	}
	mosquitto_lib_init();
	mq = mosquitto_new(NULL, true, NULL);
	if(!mq) return 1;
	mosquitto_int_option(mq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_max_inflight_messages_set(mq, 1000);
	mosquitto_username_pw_set(mq, "server", "pw");
	mosquitto_publish_callback_set(mq, on_publish);
	if(mosquitto_connect(mq, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "spbench: cannot connect to 127.0.0.1:%d\n", port);
		return 1;
	}
	mosquitto_loop_start(mq);
	/* warm-up: the Kafka topic exists and the consumer is positioned before the clock starts */
	mosquitto_publish(mq, NULL, mqtt_topic, (int)len, p, 1, false);
	rk = consumer(bootstrap, ktopic);
	if(!rk || consume(rk, 1, 60, &klen) != 1){
		fprintf(stderr, "spbench: warm-up message did not arrive in Kafka topic %s\n", ktopic);
		return 1;
	}
	atomic_store(&acked, 0);
	t0 = now_s();
	for(i = 0; i < n; i++){
		int rc;

		while((rc = mosquitto_publish(mq, NULL, mqtt_topic, (int)len, p, qos, false)) == MOSQ_ERR_NOMEM) usleep(1000);
		if(rc){
			fprintf(stderr, "spbench: publish: %s\n", mosquitto_strerror(rc));
			return 1;
		}
		/* keep the client's own queue bounded (i + 1 published, acked may already count them
		 * all); give up when the broker stops answering */
		if(qos > 0 && i + 1 > atomic_load(&acked) + 5000){
			double give_up = now_s() + 60;

			while(i + 1 > atomic_load(&acked) + 5000){
				if(now_s() > give_up){
					fprintf(stderr, "spbench: no PUBACK for 60 s\n");
					return 1;
				}
				usleep(200);
			}
		}
	}
	t_pub = now_s() - t0;
	got = consume(rk, n, 120, &klen);
	t1 = now_s() - t0;
	printf("e2e %s: %" PRIu64 "/%" PRIu64 " messages from MQTT (QoS %d) to Kafka %s in %.2f s: %.0f msg/s "
			"(publishing took %.2f s; %zu bytes in, %zu bytes in Kafka)\n",
			json ? "plain JSON" : "Sparkplug B", got, n, qos, ktopic, t1, (double)got / t1, t_pub, len, klen);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	mosquitto_disconnect(mq);
	mosquitto_loop_stop(mq, false);
	mosquitto_destroy(mq);
	mosquitto_lib_cleanup();
	free(p);
	return got == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"seconds", required_argument, NULL, 's'}, {"port", required_argument, NULL, 'p'},
		{"bootstrap", required_argument, NULL, 'b'}, {"messages", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'}, {"qos", required_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
	};
	double seconds = 3;
	int port = 0, json = 0, qos = 1, c;
	const char *bootstrap = NULL;
	uint64_t n = 20000;

	while((c = getopt_long(argc, argv, "p:b:", lo, NULL)) != -1){
		switch(c){
		case 's': seconds = atof(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'b': bootstrap = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		case 'q': qos = atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if(optind + 1 != argc){
		usage(stderr);
		return 2;
	}
	if(!strcmp(argv[optind], "decode")) return run_local(0, seconds);
	if(!strcmp(argv[optind], "transform")) return run_local(1, seconds);
	if(!strcmp(argv[optind], "e2e") && port > 0 && bootstrap && n > 0 && qos >= 0 && qos <= 1)
		return run_e2e(port, bootstrap, n, json, qos);
	usage(stderr);
	return 2;
}
